package prober

import (
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
)

// skipWithoutICMP skips t when r failed for want of an ICMP socket: the
// kernel refuses unprivileged ICMP sockets (net.ipv4.ping_group_range) and
// the test lacks CAP_NET_RAW for raw ones.
func skipWithoutICMP(t *testing.T, r Result) {
	t.Helper()
	if r.Reason == ReasonICMP && r.Err != nil && strings.Contains(r.Err.Error(), "no ICMP socket") {
		t.Skipf("no ICMP socket: this machine allows neither unprivileged ICMP sockets (sysctl net.ipv4.ping_group_range) nor raw ones (CAP_NET_RAW): %v", r.Err)
	}
}

func TestICMPKind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, host string
		v6         bool
	}{
		{"IPv4 loopback", "127.0.0.1", false},
		{"IPv6 loopback", "::1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.v6 {
				_ = listenLoopback(t, true) // skips without ::1
			}
			start := time.Now()
			r := probeModule(t, builtinModules["icmp"], addrTarget(tc.host), 2*time.Second)
			skipWithoutICMP(t, r)
			checkReason(t, r, ReasonOK)
			phaseOf(t, r, PhaseResolve)
			if d := phaseOf(t, r, PhaseProcessing); d <= 0 || d > r.Duration {
				t.Errorf("processing (round trip) %v, want in (0, %v]", d, r.Duration)
			}
			if r.Duration > time.Since(start) {
				t.Errorf("duration %v longer than the probe", r.Duration)
			}
			if r.HTTP || r.StatusCode != 0 {
				t.Errorf("an ICMP probe's result speaks HTTP (%v) or has a status code (%d)", r.HTTP, r.StatusCode)
			}
		})
	}
}

// TestICMPIPFamily resolves made-up names with a fake DNS server as
// TestIPFamily does, for the icmp kind: it needs no server, so only the
// name decides. It replaces net.DefaultResolver, so it must not run in
// parallel with other tests (its subtests run in parallel with each
// other).
func TestICMPIPFamily(t *testing.T) {
	skipWithoutIPv6(t)
	useDNS(t, ipFamilyHosts)
	for _, tc := range []struct {
		name       string
		host       string
		family     config.IPFamily
		noFallback bool
		want       Reason
	}{
		{"both families, ip4", "dual.oxcross.test", config.IP4, true, ReasonOK},
		{"both families, ip6", "dual.oxcross.test", config.IP6, true, ReasonOK},
		{"IPv4 only, ip6", "v4.oxcross.test", config.IP6, true, ReasonDNS},
		{"IPv4 only, ip6 with fallback", "v4.oxcross.test", config.IP6, false, ReasonOK},
		{"IPv6 only, ip4", "v6.oxcross.test", config.IP4, true, ReasonDNS},
		{"no such name", "none.oxcross.test", config.IPAny, false, ReasonDNS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := config.Module{Kind: "icmp", IPFamily: tc.family, NoIPFallback: tc.noFallback}
			r := probeModule(t, m, addrTarget(tc.host), 2*time.Second)
			if tc.want == ReasonOK {
				skipWithoutICMP(t, r)
			}
			checkReason(t, r, tc.want)
			phaseOf(t, r, PhaseResolve)
		})
	}
}
