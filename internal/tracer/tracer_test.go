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

// TestICMPChecksumConstant: every icmp probe of a trace has the same
// checksum, which load balancers may hash as part of the flow, whatever
// its sequence number.
func TestICMPChecksumConstant(t *testing.T) {
	for _, ping := range []bool{false, true} {
		s := &session{o: &Options{Method: ICMP}, ping: ping, id: 0x1234, hdr: 28, mtu: 100, buf: make([]byte, 1500)}
		var first uint16
		for ttl := 1; ttl <= MaxHops; ttl++ {
			for i := range MaxProbesPerHop {
				b := s.packet(seqOf(ttl, i))
				sum := checksum(b) // 0 when the checksum field is right
				if !ping && sum != 0 {
					t.Fatalf("raw: probe %d/%d has a wrong checksum", ttl, i)
				}
				if ping {
					// The kernel fills it in: compute what it will be.
					sum = checksum(b)
				} else {
					sum = uint16(b[2])<<8 | uint16(b[3])
				}
				if ttl == 1 && i == 0 {
					first = sum
				} else if sum != first {
					t.Fatalf("ping %v: probe %d/%d has checksum %#x, the first %#x", ping, ttl, i, sum, first)
				}
			}
		}
	}
}

// TestUDPPayloadSumConstant: udp probes of one size differ only in
// payload words whose ones' complement sum is constant, so their UDP
// checksum is the same too.
func TestUDPPayloadSumConstant(t *testing.T) {
	s := &session{o: &Options{Method: UDP}, hdr: 28, mtu: 100, buf: make([]byte, 1500)}
	want := checksum(s.packet(seqOf(1, 0)))
	for ttl := 1; ttl <= MaxHops; ttl++ {
		for i := range MaxProbesPerHop {
			b := s.packet(seqOf(ttl, i))
			if got := checksum(b); got != want || s.seqInPayload(b) != seqOf(ttl, i) {
				t.Fatalf("probe %d/%d: payload sum %#x, want %#x; seq %d", ttl, i, got, want, s.seqInPayload(b))
			}
		}
	}
}
