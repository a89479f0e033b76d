package prober

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
	"github.com/oxcross/oxcross/origin"
)

// The classification of failures into reasons, by error and by the phase
// the probe had reached. The hostile origins (hostile_test.go) cover the
// answers; these the network.

func TestProbeConnectionRefused(t *testing.T) {
	t.Parallel()
	addr := testutil.ClosedAddr(t)
	checkReason(t, probe(t, newTestProber(), advanced("http://"+addr+origin.Path), nil), ReasonConnect)
	checkReason(t, probe(t, newTestProber(), simple("http://"+addr+"/"), nil), ReasonConnect)
}

// TestUnresolvableName probes a name that does not resolve, with a fake
// DNS server that answers NXDOMAIN to everything, so that the result does
// not depend on the machine's resolver, with every kind. It replaces
// net.DefaultResolver, so it must not run in parallel with other tests.
func TestUnresolvableName(t *testing.T) {
	dns := useDNS(t, nil)
	t.Run("kinds", func(t *testing.T) {
		for _, tc := range []struct {
			kind string
			tg   config.Target
		}{
			{"http", urlTarget("http://none.oxcross.test:9301/")},
			{"oxcross", urlTarget("http://none.oxcross.test:9301" + origin.Path)},
			{"tcp", addrTarget("none.oxcross.test:9301")},
			{"icmp", addrTarget("none.oxcross.test")},
		} {
			t.Run(tc.kind, func(t *testing.T) {
				t.Parallel()
				r := probeModule(t, config.Module{Kind: tc.kind}, tc.tg, 2*time.Second)
				checkReason(t, r, ReasonDNS)
				phaseOf(t, r, PhaseResolve)
				if _, ok := r.Phases.Get(PhaseConnect); ok {
					t.Error("connect phase set after a DNS failure")
				}
			})
		}
	})
	// The built-in module advanced, as a scheduled origin of it probes.
	checkReason(t, probe(t, newTestProber(), advanced("http://nonexistent.invalid:9301"+origin.Path), &oxcrossState{}), ReasonDNS)
	for _, name := range []string{"none.oxcross.test", "nonexistent.invalid"} {
		if dns.QueriesFor(name) == 0 {
			t.Errorf("the fake DNS server got no query for %s", name)
		}
	}
}

// TestProbeDNSSystem uses the machine's resolver, which may not answer.
func TestProbeDNSSystem(t *testing.T) {
	t.Parallel()
	r := probe(t, newTestProber(), advanced("http://nonexistent.invalid"+origin.Path), nil)
	if r.Reason != ReasonDNS {
		t.Skipf("the system resolver gives reason %q (%v), not dns", r.Reason, r.Err)
	}
	checkReason(t, r, ReasonDNS)
}

func TestProbeTLS(t *testing.T) {
	t.Parallel()
	h, err := origin.NewHandler(origin.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fx := newTLSFixture(t)
	ts := startHTTPServer(t, fx, tlsServer, h)

	// The default client does not know the test's authority.
	checkReason(t, probe(t, newTestProber(), advanced(ts.URL+origin.Path), nil), ReasonTLS)
	checkReason(t, probe(t, newTestProber(), simple(ts.URL+"/"), nil), ReasonTLS)

	// Plain HTTP to the TLS port is not a TLS failure of the origin: the
	// server answers 400.
	checkReason(t, probe(t, newTestProber(), advanced(strings.Replace(ts.URL, "https:", "http:", 1)+origin.Path), nil), ReasonHTTPStatus)

	// With the authority trusted, the probe succeeds over TLS, with drift.
	m := config.Module{Kind: "oxcross", Settings: &HTTPSettings{TLS: TLSSettings{CAFile: fx.ca.CertFile}}}
	r := probeModule(t, m, advanced(ts.URL+origin.Path), probeTimeout)
	checkReason(t, r, ReasonOK)
	if r.Drift == nil || abs(r.Drift.Offset) > 50*time.Millisecond {
		t.Errorf("drift %+v, want |offset| < 50ms", r.Drift)
	}
	if !r.TLSExpiry.Equal(fx.server.Leaf.NotAfter) {
		t.Errorf("TLS expiry %v, want the server certificate's %v", r.TLSExpiry, fx.server.Leaf.NotAfter)
	}
}

func TestProbeTLSToPlainServer(t *testing.T) {
	t.Parallel()
	ts := newServer(t, fakeOrigin(nil))
	url := strings.Replace(ts.URL, "http:", "https:", 1) + origin.Path
	checkReason(t, probe(t, newTestProber(), advanced(url), nil), ReasonTLS)
}

// TestProbeTLSHandshakeClosed probes https on a port that accepts and hangs
// up: the handshake fails, so the reason is tls.
func TestProbeTLSHandshakeClosed(t *testing.T) {
	t.Parallel()
	l := listenLoopback(t, false)
	testutil.ServeConns(t, l, func(c net.Conn) { _ = c.Close() })
	checkReason(t, probe(t, newTestProber(), advanced("https://"+l.Addr().String()+origin.Path), nil), ReasonTLS)
}
