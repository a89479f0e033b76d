//go:build linux

package tracer

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestLoopbackReachedAtHopOne(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	open := ln.Addr().(*net.TCPAddr).AddrPort()
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"udp4", Options{Method: UDP, Dst: netip.MustParseAddrPort("127.0.0.1:33434")}},
		{"udp6", Options{Method: UDP, Dst: netip.MustParseAddrPort("[::1]:33434")}},
		{"tcp4 open", Options{Method: TCP, Dst: open}},
		{"tcp4 closed", Options{Method: TCP, Dst: netip.MustParseAddrPort("127.0.0.1:1")}},
		{"tcp6 closed", Options{Method: TCP, Dst: netip.MustParseAddrPort("[::1]:1")}},
		{"icmp4", Options{Method: ICMP, Dst: netip.MustParseAddrPort("127.0.0.1:0")}},
		{"icmp6", Options{Method: ICMP, Dst: netip.MustParseAddrPort("[::1]:0")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.FirstHop, o.MaxHops, o.ProbesPerHop, o.HopTimeout = 1, 5, 3, 2*time.Second
			tr, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if !tr.Reached || len(tr.Hops) != 1 || tr.Hops[0].Addr != o.Dst.Addr() || len(tr.Hops[0].RTTs) != 3 {
				t.Fatalf("trace %+v", tr)
			}
			t.Logf("src %s hops %+v mtu %d in %s", tr.Src, tr.Hops, tr.MTU, tr.Duration)
		})
	}
}
