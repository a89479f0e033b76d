package testutil

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func lookup(t *testing.T, r *net.Resolver, network, host string) ([]netip.Addr, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := r.LookupNetIP(ctx, network, host)
	slices.SortFunc(addrs, netip.Addr.Compare)
	return addrs, err
}

func TestDNSServer(t *testing.T) {
	a4 := netip.MustParseAddr("127.0.0.2")
	a6 := netip.MustParseAddr("::1")
	s := NewDNSServer(t, map[string][]netip.Addr{
		"both.oxcross.test":   {a4, a6},
		"Only4.oxcross.test.": {a4},
		"none.oxcross.test":   nil,
	})
	r := s.Resolver()

	if got, err := lookup(t, r, "ip", "both.oxcross.test"); err != nil || !slices.Equal(got, []netip.Addr{a4, a6}) {
		t.Errorf("both: %v, %v; want [%v %v]", got, err, a4, a6)
	}
	if got, err := lookup(t, r, "ip6", "both.oxcross.test"); err != nil || !slices.Equal(got, []netip.Addr{a6}) {
		t.Errorf("both, ip6: %v, %v; want [%v]", got, err, a6)
	}
	if got, err := lookup(t, r, "ip", "ONLY4.oxcross.test"); err != nil || !slices.Equal(got, []netip.Addr{a4}) {
		t.Errorf("only4, any case: %v, %v; want [%v]", got, err, a4)
	}
	_, err := lookup(t, r, "ip", "unknown.oxcross.test")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("unknown name: %v, want not found", err)
	}
	if got, err := lookup(t, r, "ip", "none.oxcross.test"); err == nil {
		t.Errorf("a name without addresses: %v, want an error", got)
	}

	// Rebinding: the same name, another address.
	before := s.QueriesFor("both.oxcross.test")
	s.Set("both.oxcross.test", netip.MustParseAddr("127.0.0.3"))
	if got, err := lookup(t, r, "ip4", "both.oxcross.test"); err != nil || len(got) != 1 || got[0] != netip.MustParseAddr("127.0.0.3") {
		t.Errorf("after Set: %v, %v; want [127.0.0.3]", got, err)
	}
	if n := s.QueriesFor("both.oxcross.test."); n != before+1 {
		t.Errorf("queries for the name: %d, want %d (one ip4 lookup more)", n, before+1)
	}
	s.Delete("both.oxcross.test")
	if _, err := lookup(t, r, "ip", "both.oxcross.test"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("after Delete: %v, want not found", err)
	}
	if s.Queries() < 10 {
		t.Errorf("%d queries in all, want at least 10", s.Queries())
	}
}

// TestDNSServerTCP gives a name too many addresses for a UDP answer: the
// resolver gets a truncated answer and asks again over TCP.
func TestDNSServerTCP(t *testing.T) {
	var many []netip.Addr
	for i := range 200 {
		many = append(many, netip.AddrFrom4([4]byte{127, 1, byte(i / 256), byte(i)}))
	}
	s := NewDNSServer(t, map[string][]netip.Addr{"many.oxcross.test": many})
	got, err := lookup(t, s.Resolver(), "ip4", "many.oxcross.test")
	if err != nil || len(got) != len(many) {
		t.Fatalf("got %d addresses, %v; want %d", len(got), err, len(many))
	}
	// A truncated answer over UDP, then the same query over TCP.
	if n := s.QueriesFor("many.oxcross.test"); n != 2 {
		t.Errorf("%d queries, want 2 (UDP, then TCP)", n)
	}
}

// TestDNSServerPTR: reverse lookups get the names set for IPv4 and IPv6
// addresses, and nothing for others.
func TestDNSServerPTR(t *testing.T) {
	s := NewDNSServer(t, nil)
	s.SetPTR(netip.MustParseAddr("10.14.0.1"), "router-a.test")
	s.SetPTR(netip.MustParseAddr("fd14::1"), "router-a6.test.")
	r := s.Resolver()
	for addr, want := range map[string]string{"10.14.0.1": "router-a.test.", "fd14::1": "router-a6.test."} {
		names, err := r.LookupAddr(context.Background(), addr)
		if err != nil || len(names) != 1 || names[0] != want {
			t.Errorf("LookupAddr(%s) = %v, %v; want [%s]", addr, names, err, want)
		}
	}
	if names, err := r.LookupAddr(context.Background(), "10.14.0.2"); err == nil {
		t.Errorf("LookupAddr(10.14.0.2) = %v, want NXDOMAIN", names)
	}
}
