package prober

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
)

// checkTLSPhases checks the result of a successful probe over TLS, of
// either kind: it timed its connect and tls phases, and its TLS expiry is
// expiry.
func checkTLSPhases(t *testing.T, r Result, expiry time.Time) {
	t.Helper()
	if d := phaseOf(t, r, PhaseConnect); d <= 0 {
		t.Errorf("connect phase %v, want > 0", d)
	}
	if d := phaseOf(t, r, PhaseTLS); d <= 0 {
		t.Errorf("tls phase %v, want > 0", d)
	}
	if !r.TLSExpiry.Equal(expiry) {
		t.Errorf("TLS expiry %v, want %v", r.TLSExpiry, expiry)
	}
}

// TestTLSSettings: a module's TLS settings (server_name,
// insecure_skip_verify, a client certificate), probed with the http kind.
func TestTLSSettings(t *testing.T) {
	t.Parallel()
	fx := newTLSFixture(t)
	stranger := testutil.NewCA(t, "Stranger CA").Client(t, "oxcross-leaf") // another authority's client certificate
	trusted := TLSSettings{CAFile: fx.ca.CertFile}
	withClient := TLSSettings{CAFile: fx.ca.CertFile, CertFile: fx.client.CertFile, KeyFile: fx.client.KeyFile}
	runHTTPCases(t, fx, []httpCase{
		{
			name:   "TLS, unknown CA, insecure_skip_verify",
			server: tlsServer,
			mod:    httpModule(HTTPSettings{TLS: TLSSettings{InsecureSkipVerify: true}}),
			want:   ReasonOK,
			check: func(t *testing.T, r Result, _ []*http.Request) {
				if !r.TLSExpiry.Equal(fx.server.Leaf.NotAfter) {
					t.Errorf("TLS expiry %v, want %v", r.TLSExpiry, fx.server.Leaf.NotAfter)
				}
			},
		},
		{
			name:   "TLS, server_name mismatch",
			server: tlsServer,
			mod:    httpModule(HTTPSettings{TLS: TLSSettings{CAFile: fx.ca.CertFile, ServerName: "oxcross.test"}}),
			want:   ReasonTLS,
		},
		{
			name:   "TLS, certificate for another name",
			server: otherNameServer,
			mod:    httpModule(HTTPSettings{TLS: trusted}),
			want:   ReasonTLS,
		},
		{
			name:   "TLS, server_name for the certificate",
			server: otherNameServer,
			mod:    httpModule(HTTPSettings{TLS: TLSSettings{CAFile: fx.ca.CertFile, ServerName: "oxcross.test"}}),
			want:   ReasonOK,
		},
		{
			name:   "TLS, client certificate required, none sent",
			server: clientAuthServer,
			mod:    httpModule(HTTPSettings{TLS: trusted}),
			want:   ReasonTLS,
		},
		{
			name:   "TLS, client certificate required and sent",
			server: clientAuthServer,
			mod:    httpModule(HTTPSettings{TLS: withClient}),
			want:   ReasonOK,
			check: func(t *testing.T, _ Result, seen []*http.Request) {
				if len(seen) != 1 || seen[0].TLS == nil || len(seen[0].TLS.PeerCertificates) == 0 ||
					seen[0].TLS.PeerCertificates[0].Subject.CommonName != "oxcross-leaf" {
					t.Errorf("server did not see the client certificate")
				}
			},
		},
		{
			name:   "TLS, client certificate from another authority",
			server: clientAuthServer,
			mod: httpModule(HTTPSettings{TLS: TLSSettings{
				CAFile: fx.ca.CertFile, CertFile: stranger.CertFile, KeyFile: stranger.KeyFile,
			}}),
			want: ReasonTLS,
		},
		{
			name:   "TLS, HTTP/2, client certificate required, none sent",
			server: h2ClientAuthServer,
			mod:    httpModule(HTTPSettings{TLS: trusted}),
			want:   ReasonTLS,
		},
		{
			name:   "TLS, HTTP/2, client certificate required and sent",
			server: h2ClientAuthServer,
			mod:    httpModule(HTTPSettings{TLS: withClient}),
			want:   ReasonOK,
			check: func(t *testing.T, r Result, _ []*http.Request) {
				if r.HTTPVersion != 2 {
					t.Errorf("HTTP version %v, want 2", r.HTTPVersion)
				}
			},
		},
	})
}

// TestTLSSettingsBadFiles checks that a module whose files cannot be read
// fails its probes with reason error rather than probing without them.
func TestTLSSettingsBadFiles(t *testing.T) {
	t.Parallel()
	fx := newTLSFixture(t)
	var seen seenRequests
	ts := startHTTPServer(t, fx, tlsServer, seen.wrap(http.NotFoundHandler()))
	for _, tc := range []struct {
		name string
		tls  TLSSettings
	}{
		{"missing ca_file", TLSSettings{CAFile: fx.ca.CertFile + ".missing"}},
		{"ca_file without certificates", TLSSettings{CAFile: fx.client.KeyFile}},
		{"key_file not matching", TLSSettings{CertFile: fx.client.CertFile, KeyFile: fx.ca.CertFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := httpModule(HTTPSettings{TLS: tc.tls})
			checkReason(t, probeModule(t, m, urlTarget(ts.URL+"/"), probeTimeout), ReasonError)
		})
	}
	t.Cleanup(func() {
		// After the subtests, which run in parallel once this function
		// has returned.
		if n := len(seen.all()); n != 0 {
			t.Errorf("probes with broken TLS settings reached the server %d times", n)
		}
	})
}

// TestLocalhostIPFamily probes the name localhost, whatever the machine
// resolves it to, with a server listening only on 127.0.0.1. A preference
// falls back to the other family only when the preferred one has no
// address (as blackbox_exporter's ip_protocol_fallback does).
func TestLocalhostIPFamily(t *testing.T) {
	t.Parallel()
	ts := startHTTPServer(t, nil, plainServer, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())

	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, "localhost")
	if err != nil {
		t.Skipf("localhost does not resolve here: %v", err)
	}
	var has4, has6 bool
	for _, a := range addrs {
		if a.IP.To4() != nil {
			has4 = true
		} else {
			has6 = true
		}
	}
	if !has4 {
		t.Skipf("localhost resolves to %v, without an IPv4 address", addrs)
	}
	// Without an IPv6 address, ip6 has nothing to connect to: dns, or with
	// fallback IPv4. With one, nothing listens on [::1]:port: connect,
	// fallback or not.
	want6, want6Fallback := ReasonDNS, ReasonOK
	if has6 {
		want6, want6Fallback = ReasonConnect, ReasonConnect
		if l, err := net.Listen("tcp6", net.JoinHostPort("::1", port)); err != nil {
			t.Skipf("[::1]:%s is in use: %v", port, err)
		} else {
			_ = l.Close()
		}
	}
	t.Logf("localhost resolves to %v", addrs)
	url := "http://" + net.JoinHostPort("localhost", port) + "/"
	for _, tc := range []struct {
		name       string
		family     config.IPFamily
		noFallback bool
		want       Reason
	}{
		{"ip4", config.IP4, true, ReasonOK},
		{"ip6 without fallback", config.IP6, true, want6},
		{"ip6 with fallback", config.IP6, false, want6Fallback},
		{"any", config.IPAny, false, ReasonOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := config.Module{Kind: "http", IPFamily: tc.family, NoIPFallback: tc.noFallback}
			checkReason(t, probeModule(t, m, urlTarget(url), probeTimeout), tc.want)
		})
	}
}

// useDNS makes net.DefaultResolver, which the probes use, ask only a fake
// DNS server answering for hosts (NXDOMAIN for any other name) until the
// end of the test. A test calling it must not run in parallel with other
// tests; its subtests may run in parallel with each other.
func useDNS(t *testing.T, hosts map[string][]string) *testutil.DNSServer {
	t.Helper()
	table := make(map[string][]netip.Addr, len(hosts))
	for name, ips := range hosts {
		for _, ip := range ips {
			table[name] = append(table[name], netip.MustParseAddr(ip))
		}
	}
	dns := testutil.NewDNSServer(t, table)
	old := net.DefaultResolver
	net.DefaultResolver = dns.Resolver()
	t.Cleanup(func() { net.DefaultResolver = old })
	return dns
}

// ipFamilyHosts are made-up names: one with both families, one with each.
var ipFamilyHosts = map[string][]string{
	"dual.oxcross.test": {"127.0.0.1", "::1"},
	"v4.oxcross.test":   {"127.0.0.1"},
	"v6.oxcross.test":   {"::1"},
}

// skipWithoutIPv6 skips t on a machine without an IPv6 loopback.
func skipWithoutIPv6(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	_ = l.Close()
}

// TestIPFamily resolves made-up names with a fake DNS server and probes
// them with the http and tcp kinds (icmp: TestICMPIPFamily). It replaces
// net.DefaultResolver, so it must not run in parallel with other tests
// (its subtests run in parallel with each other).
func TestIPFamily(t *testing.T) {
	skipWithoutIPv6(t)
	useDNS(t, ipFamilyHosts)

	okHandler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	serve := func(v6 bool) string {
		_, port, _ := net.SplitHostPort(startLoopbackHTTP(t, okHandler, v6))
		return port
	}
	port4, port6 := serve(false), serve(true)
	// Nothing may listen on the other family's loopback at these ports.
	for _, a := range []string{net.JoinHostPort("::1", port4), net.JoinHostPort("127.0.0.1", port6)} {
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Skipf("%s is in use: %v", a, err)
		}
		_ = l.Close()
	}

	for _, tc := range []struct {
		name       string
		host       string
		v6server   bool // the server listens on ::1, else on 127.0.0.1
		family     config.IPFamily
		noFallback bool
		want       Reason
	}{
		{"both families, ip4", "dual.oxcross.test", false, config.IP4, true, ReasonOK},
		{"both families, ip6", "dual.oxcross.test", true, config.IP6, true, ReasonOK},
		{"both families, any, server on IPv4", "dual.oxcross.test", false, config.IPAny, false, ReasonOK},
		{"both families, any, server on IPv6", "dual.oxcross.test", true, config.IPAny, false, ReasonOK},
		// The preferred family has an address: the probe measures it, and
		// does not fall back when it refuses connections.
		{"both families, ip6, server on IPv4", "dual.oxcross.test", false, config.IP6, true, ReasonConnect},
		{"both families, ip6 with fallback, server on IPv4", "dual.oxcross.test", false, config.IP6, false, ReasonConnect},
		{"both families, ip4, server on IPv6", "dual.oxcross.test", true, config.IP4, true, ReasonConnect},
		{"IPv4 only, ip6", "v4.oxcross.test", false, config.IP6, true, ReasonDNS},
		{"IPv4 only, ip6 with fallback", "v4.oxcross.test", false, config.IP6, false, ReasonOK},
		{"IPv6 only, ip4", "v6.oxcross.test", true, config.IP4, true, ReasonDNS},
		{"IPv6 only, ip4 with fallback", "v6.oxcross.test", true, config.IP4, false, ReasonOK},
		{"no such name", "none.oxcross.test", false, config.IP4, false, ReasonDNS},
	} {
		port := port4
		if tc.v6server {
			port = port6
		}
		addr := net.JoinHostPort(tc.host, port)
		t.Run("http/"+tc.name, func(t *testing.T) {
			t.Parallel()
			m := config.Module{Kind: "http", IPFamily: tc.family, NoIPFallback: tc.noFallback}
			r := probeModule(t, m, urlTarget("http://"+addr+"/"), probeTimeout)
			checkReason(t, r, tc.want)
			if tc.want == ReasonDNS {
				if _, ok := r.Phases.Get(PhaseConnect); ok {
					t.Error("connect phase set after a DNS failure")
				}
			}
		})
		t.Run("tcp/"+tc.name, func(t *testing.T) {
			t.Parallel()
			m := config.Module{Kind: "tcp", IPFamily: tc.family, NoIPFallback: tc.noFallback}
			checkReason(t, probeModule(t, m, addrTarget(addr), probeTimeout), tc.want)
		})
	}
}
