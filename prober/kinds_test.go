package prober

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/origin"
)

// probeTimeout bounds the probes of these tests that are expected to end
// by themselves.
const probeTimeout = 5 * time.Second

// probeModule probes tg once with module m within timeout.
func probeModule(t testing.TB, m discovery.Module, tg discovery.Target, timeout time.Duration) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return NewProber(testAgent).ProbeModule(ctx, tg, &m, nil)
}

func urlTarget(url string) discovery.Target {
	return discovery.Target{ID: "target", URL: url, Mode: "test", Interval: 10 * time.Second, Timeout: probeTimeout}
}

func addrTarget(addr string) discovery.Target {
	return discovery.Target{ID: "target", Address: addr, Mode: "test", Interval: 10 * time.Second, Timeout: probeTimeout}
}

// checkReason fails t unless r ended with reason want.
func checkReason(t *testing.T, r Result, want Reason) {
	t.Helper()
	if r.Reason != want || r.Success != (want == ReasonOK) {
		t.Fatalf("probe = {Success: %v, Reason: %q, Err: %v}, want reason %q", r.Success, r.Reason, r.Err, want)
	}
	if want != ReasonOK && r.Err == nil {
		t.Errorf("failed probe has no Err")
	}
}

// phaseOf returns phase p of r, failing t when the probe lacks it.
func phaseOf(t *testing.T, r Result, p Phase) time.Duration {
	t.Helper()
	d, ok := r.Phases.Get(p)
	if !ok {
		t.Errorf("phase %s not set", p)
	}
	return d
}

// seenRequests records what a test server was asked.
type seenRequests struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (s *seenRequests) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (s *seenRequests) all() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

// serverKind is how a test's HTTP server listens.
type serverKind int

const (
	plainServer        serverKind = iota
	tlsServer                     // HTTP/1.1 with a certificate for the loopback names
	h2Server                      // like tlsServer, negotiating h2
	clientAuthServer              // like tlsServer, requiring a client certificate
	h2ClientAuthServer            // like h2Server, requiring a client certificate
	otherNameServer               // a certificate only for oxcross.test
	chainServer                   // sends its certificate and the CA, which expires first
)

// startHTTPServer serves h on 127.0.0.1 as kind asks.
func startHTTPServer(t *testing.T, pki *testPKI, kind serverKind, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(ts.Close)
	if kind == plainServer {
		ts.Start()
		return ts
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pki.Server}}
	switch kind {
	case h2Server:
		ts.EnableHTTP2 = true
	case clientAuthServer:
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, pki.Pool()
	case h2ClientAuthServer:
		ts.EnableHTTP2 = true
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, pki.Pool()
	case otherNameServer:
		c, _ := pki.ServerCert(10*24*time.Hour, "oxcross.test")
		cfg.Certificates = []tls.Certificate{c}
	case chainServer:
		// The leaf outlives its CA (30 days): the chain's earliest
		// expiry is the CA's.
		c, _ := pki.ServerCert(60*24*time.Hour, loopbackNames...)
		c.Certificate = append(c.Certificate, pki.CA().Raw)
		cfg.Certificates = []tls.Certificate{c}
	}
	ts.TLS = cfg
	ts.StartTLS()
	return ts
}

func TestHTTPKind(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	stranger := newTestPKI(t) // another authority's client certificate
	hello := func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello oxcross") }
	trusted := discovery.TLSSettings{CAFile: pki.CAFile}
	for _, tc := range []struct {
		name    string
		server  serverKind
		handler http.HandlerFunc // hello when nil
		path    string
		mod     discovery.Module // its kind is http
		want    Reason
		check   func(t *testing.T, r Result, seen []*http.Request)
	}{
		{
			name: "GET by default, plain HTTP phases",
			want: ReasonOK,
			check: func(t *testing.T, r Result, seen []*http.Request) {
				if len(seen) != 1 || seen[0].Method != http.MethodGet {
					t.Errorf("server saw %d requests, want one GET", len(seen))
				}
				if got := seen[0].Header.Get("User-Agent"); got != testAgent {
					t.Errorf("User-Agent %q, want %q", got, testAgent)
				}
				for p := range numPhases {
					phaseOf(t, r, p)
				}
				if d := phaseOf(t, r, PhaseTLS); d != 0 {
					t.Errorf("plain HTTP: tls phase %v, want 0", d)
				}
				if d := phaseOf(t, r, PhaseConnect); d <= 0 {
					t.Errorf("connect phase %v, want > 0", d)
				}
				if r.StatusCode != http.StatusOK || r.HTTPVersion != 1.1 {
					t.Errorf("status %d, version %v; want 200, 1.1", r.StatusCode, r.HTTPVersion)
				}
				if !r.TLSExpiry.IsZero() {
					t.Errorf("plain HTTP: TLS expiry %v", r.TLSExpiry)
				}
			},
		},
		{
			name: "HEAD",
			mod:  discovery.Module{HTTP: discovery.HTTPSettings{Method: http.MethodHead}},
			want: ReasonOK,
			check: func(t *testing.T, _ Result, seen []*http.Request) {
				if len(seen) != 1 || seen[0].Method != http.MethodHead {
					t.Errorf("server saw %v, want one HEAD", methods(seen))
				}
			},
		},
		{
			name: "POST",
			mod:  discovery.Module{HTTP: discovery.HTTPSettings{Method: http.MethodPost}},
			want: ReasonOK,
			check: func(t *testing.T, _ Result, seen []*http.Request) {
				if len(seen) != 1 || seen[0].Method != http.MethodPost {
					t.Errorf("server saw %v, want one POST", methods(seen))
				}
			},
		},
		{
			name: "headers and Host override",
			mod: discovery.Module{HTTP: discovery.HTTPSettings{Headers: map[string]string{
				"X-Oxcross-Test": "yes",
				"host":           "origin.oxcross.test",
			}}},
			want: ReasonOK,
			check: func(t *testing.T, _ Result, seen []*http.Request) {
				if len(seen) != 1 {
					t.Fatalf("server saw %d requests, want 1", len(seen))
				}
				if got := seen[0].Header.Get("X-Oxcross-Test"); got != "yes" {
					t.Errorf("X-Oxcross-Test %q, want yes", got)
				}
				if seen[0].Host != "origin.oxcross.test" {
					t.Errorf("Host %q, want origin.oxcross.test", seen[0].Host)
				}
				if _, ok := seen[0].Header["Host"]; ok {
					t.Errorf("Host sent as a header field too: %q", seen[0].Header["Host"])
				}
			},
		},
		{
			name:    "204 listed",
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) },
			mod:     discovery.Module{HTTP: discovery.HTTPSettings{ValidStatusCodes: []int{204}}},
			want:    ReasonOK,
			check: func(t *testing.T, r Result, _ []*http.Request) {
				if r.StatusCode != http.StatusNoContent {
					t.Errorf("status %d, want 204", r.StatusCode)
				}
			},
		},
		{
			name: "200 not listed",
			mod:  discovery.Module{HTTP: discovery.HTTPSettings{ValidStatusCodes: []int{204, 301}}},
			want: ReasonHTTPStatus,
			check: func(t *testing.T, r Result, _ []*http.Request) {
				if r.StatusCode != http.StatusOK {
					t.Errorf("status %d, want 200", r.StatusCode)
				}
			},
		},
		{
			name: "body matches",
			mod:  discovery.Module{HTTP: discovery.HTTPSettings{BodyRegexp: `^hello \w+$`}},
			want: ReasonOK,
		},
		{
			name: "body does not match",
			mod:  discovery.Module{HTTP: discovery.HTTPSettings{BodyRegexp: `goodbye`}},
			want: ReasonBodyMismatch,
		},
		{
			name:    "redirect not followed",
			handler: redirectOnce,
			want:    ReasonHTTPStatus,
			check: func(t *testing.T, r Result, seen []*http.Request) {
				if r.StatusCode != http.StatusMovedPermanently || len(seen) != 1 {
					t.Errorf("status %d after %d requests, want 301 after 1", r.StatusCode, len(seen))
				}
			},
		},
		{
			name:    "redirect followed",
			handler: redirectOnce,
			mod:     discovery.Module{HTTP: discovery.HTTPSettings{FollowRedirects: true}},
			want:    ReasonOK,
			check: func(t *testing.T, r Result, seen []*http.Request) {
				if r.StatusCode != http.StatusOK || len(seen) != 2 || seen[1].URL.Path != "/moved" {
					t.Errorf("status %d after requests %v, want 200 from /moved", r.StatusCode, paths(seen))
				}
			},
		},
		{
			name:    "body over max_body_bytes",
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "0123456789a") },
			mod:     discovery.Module{MaxBodyBytes: 10},
			want:    ReasonBodyTooLarge,
		},
		{
			name:    "body at max_body_bytes",
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "0123456789") },
			mod:     discovery.Module{MaxBodyBytes: 10},
			want:    ReasonOK,
		},
		{
			name:   "TLS, CA trusted",
			server: tlsServer,
			mod:    discovery.Module{HTTP: discovery.HTTPSettings{TLS: trusted}},
			want:   ReasonOK,
			check: func(t *testing.T, r Result, _ []*http.Request) {
				for p := range numPhases {
					phaseOf(t, r, p)
				}
				if d := phaseOf(t, r, PhaseConnect); d <= 0 {
					t.Errorf("connect phase %v, want > 0", d)
				}
				if d := phaseOf(t, r, PhaseTLS); d <= 0 {
					t.Errorf("tls phase %v, want > 0", d)
				}
				if !r.TLSExpiry.Equal(pki.ServerLeaf.NotAfter) {
					t.Errorf("TLS expiry %v, want the server certificate's %v", r.TLSExpiry, pki.ServerLeaf.NotAfter)
				}
				if r.StatusCode != http.StatusOK || r.HTTPVersion != 1.1 {
					t.Errorf("status %d, version %v; want 200, 1.1", r.StatusCode, r.HTTPVersion)
				}
				var sum time.Duration
				for p := range numPhases {
					d, _ := r.Phases.Get(p)
					sum += d
				}
				if sum > r.Duration {
					t.Errorf("phases add up to %v, more than the duration %v", sum, r.Duration)
				}
			},
		},
		{
			name:   "TLS, HTTP/2",
			server: h2Server,
			mod:    discovery.Module{HTTP: discovery.HTTPSettings{TLS: trusted}},
			want:   ReasonOK,
			check: func(t *testing.T, r Result, seen []*http.Request) {
				if r.HTTPVersion != 2 || len(seen) != 1 || seen[0].ProtoMajor != 2 {
					t.Errorf("HTTP version %v (server saw %v), want 2", r.HTTPVersion, protos(seen))
				}
				if d := phaseOf(t, r, PhaseTLS); d <= 0 {
					t.Errorf("tls phase %v, want > 0", d)
				}
			},
		},
		{
			name:   "TLS, earliest expiry of the chain",
			server: chainServer,
			mod:    discovery.Module{HTTP: discovery.HTTPSettings{TLS: trusted}},
			want:   ReasonOK,
			check: func(t *testing.T, r Result, _ []*http.Request) {
				if !r.TLSExpiry.Equal(pki.CA().NotAfter) {
					t.Errorf("TLS expiry %v, want the CA's %v", r.TLSExpiry, pki.CA().NotAfter)
				}
			},
		},
		{
			name:   "TLS, unknown CA",
			server: tlsServer,
			want:   ReasonTLS,
		},
		{
			name:   "TLS, unknown CA, insecure_skip_verify",
			server: tlsServer,
			mod:    discovery.Module{HTTP: discovery.HTTPSettings{TLS: discovery.TLSSettings{InsecureSkipVerify: true}}},
			want:   ReasonOK,
			check: func(t *testing.T, r Result, _ []*http.Request) {
				if !r.TLSExpiry.Equal(pki.ServerLeaf.NotAfter) {
					t.Errorf("TLS expiry %v, want %v", r.TLSExpiry, pki.ServerLeaf.NotAfter)
				}
			},
		},
		{
			name:   "TLS, server_name mismatch",
			server: tlsServer,
			mod:    discovery.Module{HTTP: discovery.HTTPSettings{TLS: discovery.TLSSettings{CAFile: pki.CAFile, ServerName: "oxcross.test"}}},
			want:   ReasonTLS,
		},
		{
			name:   "TLS, certificate for another name",
			server: otherNameServer,
			mod:    discovery.Module{HTTP: discovery.HTTPSettings{TLS: trusted}},
			want:   ReasonTLS,
		},
		{
			name:   "TLS, server_name for the certificate",
			server: otherNameServer,
			mod:    discovery.Module{HTTP: discovery.HTTPSettings{TLS: discovery.TLSSettings{CAFile: pki.CAFile, ServerName: "oxcross.test"}}},
			want:   ReasonOK,
		},
		{
			name:   "TLS, client certificate required, none sent",
			server: clientAuthServer,
			mod:    discovery.Module{HTTP: discovery.HTTPSettings{TLS: trusted}},
			want:   ReasonTLS,
		},
		{
			name:   "TLS, client certificate required and sent",
			server: clientAuthServer,
			mod: discovery.Module{HTTP: discovery.HTTPSettings{TLS: discovery.TLSSettings{
				CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile,
			}}},
			want: ReasonOK,
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
			mod: discovery.Module{HTTP: discovery.HTTPSettings{TLS: discovery.TLSSettings{
				CAFile: pki.CAFile, CertFile: stranger.ClientCertFile, KeyFile: stranger.ClientKeyFile,
			}}},
			want: ReasonTLS,
		},
		{
			name:   "TLS, HTTP/2, client certificate required, none sent",
			server: h2ClientAuthServer,
			mod:    discovery.Module{HTTP: discovery.HTTPSettings{TLS: trusted}},
			want:   ReasonTLS,
		},
		{
			name:   "TLS, HTTP/2, client certificate required and sent",
			server: h2ClientAuthServer,
			mod: discovery.Module{HTTP: discovery.HTTPSettings{TLS: discovery.TLSSettings{
				CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile,
			}}},
			want: ReasonOK,
			check: func(t *testing.T, r Result, _ []*http.Request) {
				if r.HTTPVersion != 2 {
					t.Errorf("HTTP version %v, want 2", r.HTTPVersion)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Handler(tc.handler)
			if tc.handler == nil {
				h = http.HandlerFunc(hello)
			}
			var seen seenRequests
			ts := startHTTPServer(t, pki, tc.server, seen.wrap(h))
			path := tc.path
			if path == "" {
				path = "/"
			}
			m := tc.mod
			m.Kind = discovery.KindHTTP
			r := probeModule(t, m, urlTarget(ts.URL+path), probeTimeout)
			checkReason(t, r, tc.want)
			if r.Duration <= 0 {
				t.Errorf("duration %v", r.Duration)
			}
			if tc.check != nil {
				tc.check(t, r, seen.all())
			}
		})
	}
}

// redirectOnce redirects / to /moved, which answers 200.
func redirectOnce(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/moved" {
		_, _ = io.WriteString(w, "moved here")
		return
	}
	http.Redirect(w, r, "/moved", http.StatusMovedPermanently)
}

func methods(reqs []*http.Request) []string {
	var s []string
	for _, r := range reqs {
		s = append(s, r.Method)
	}
	return s
}

func paths(reqs []*http.Request) []string {
	var s []string
	for _, r := range reqs {
		s = append(s, r.URL.Path)
	}
	return s
}

func protos(reqs []*http.Request) []string {
	var s []string
	for _, r := range reqs {
		s = append(s, r.Proto)
	}
	return s
}

// TestHTTPKindBadSettings checks that a module whose files cannot be read
// fails its probes with reason error rather than probing without them.
func TestHTTPKindBadSettings(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	var seen seenRequests
	ts := startHTTPServer(t, pki, tlsServer, seen.wrap(http.NotFoundHandler()))
	for _, tc := range []struct {
		name string
		tls  discovery.TLSSettings
	}{
		{"missing ca_file", discovery.TLSSettings{CAFile: pki.CAFile + ".missing"}},
		{"ca_file without certificates", discovery.TLSSettings{CAFile: pki.ClientKeyFile}},
		{"key_file not matching", discovery.TLSSettings{CertFile: pki.ClientCertFile, KeyFile: pki.CAFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := discovery.Module{Kind: discovery.KindHTTP, HTTP: discovery.HTTPSettings{TLS: tc.tls}}
			checkReason(t, probeModule(t, m, urlTarget(ts.URL+"/"), probeTimeout), ReasonError)
		})
	}
	if n := len(seen.all()); n != 0 {
		t.Errorf("probes with broken TLS settings reached the server %d times", n)
	}
}

func TestOxcrossKindPhases(t *testing.T) {
	t.Parallel()
	ts := newOriginServer(t, origin.Options{})
	r := probeModule(t, discovery.Module{Kind: discovery.KindOxcross}, urlTarget(ts.URL+origin.Path), probeTimeout)
	checkReason(t, r, ReasonOK)
	for p := range numPhases {
		phaseOf(t, r, p)
	}
	if d := phaseOf(t, r, PhaseConnect); d <= 0 {
		t.Errorf("connect phase %v, want > 0", d)
	}
	if d := phaseOf(t, r, PhaseProcessing); d <= 0 {
		t.Errorf("processing phase %v, want > 0", d)
	}
	if r.StatusCode != http.StatusOK || r.HTTPVersion != 1.1 {
		t.Errorf("status %d, version %v; want 200, 1.1", r.StatusCode, r.HTTPVersion)
	}
	if r.Drift == nil {
		t.Error("no drift")
	}
}

// listenLoopback listens on 127.0.0.1 (or ::1 with v6), skipping the test
// when the address is unavailable.
func listenLoopback(t *testing.T, v6 bool) net.Listener {
	t.Helper()
	network, addr := "tcp4", "127.0.0.1:0"
	if v6 {
		network, addr = "tcp6", "[::1]:0"
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		if v6 {
			t.Skipf("no IPv6 loopback here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// serveConns accepts connections on l and hands each to serve until l is
// closed; the connections are closed at the end of the test.
func serveConns(t *testing.T, l net.Listener, serve func(net.Conn)) {
	t.Helper()
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); serve(c) }()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// closedPort returns an address on 127.0.0.1 where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestTCPKind(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	// hold keeps a connection open until the test ends.
	hold := func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }
	handshake := func(c net.Conn) {
		if err := c.(*tls.Conn).Handshake(); err == nil {
			_, _ = io.Copy(io.Discard, c)
		}
		_ = c.Close()
	}
	tlsListen := func(t *testing.T, v6 bool) string {
		l := tls.NewListener(listenLoopback(t, v6), &tls.Config{Certificates: []tls.Certificate{pki.Server}})
		serveConns(t, l, handshake)
		return l.Addr().String()
	}
	plainListen := func(t *testing.T, v6 bool) string {
		ts := httptest.NewUnstartedServer(http.NotFoundHandler())
		ts.Config.ErrorLog = log.New(io.Discard, "", 0)
		ts.Listener = listenLoopback(t, v6)
		ts.Start()
		t.Cleanup(ts.Close)
		return ts.Listener.Addr().String()
	}
	silentListen := func(t *testing.T, v6 bool) string {
		l := listenLoopback(t, v6)
		serveConns(t, l, hold)
		return l.Addr().String()
	}
	trusted := discovery.TCPSettings{TLS: true, TLSConfig: discovery.TLSSettings{CAFile: pki.CAFile}}
	for _, tc := range []struct {
		name    string
		listen  func(t *testing.T, v6 bool) string
		v6      bool
		tcp     discovery.TCPSettings
		timeout time.Duration
		want    Reason
		check   func(t *testing.T, r Result)
	}{
		{
			name:   "connect",
			listen: silentListen,
			want:   ReasonOK,
			check: func(t *testing.T, r Result) {
				if d := phaseOf(t, r, PhaseConnect); d <= 0 {
					t.Errorf("connect phase %v, want > 0", d)
				}
				phaseOf(t, r, PhaseResolve)
				if d, _ := r.Phases.Get(PhaseTLS); d != 0 {
					t.Errorf("tls phase %v without TLS", d)
				}
				if !r.TLSExpiry.IsZero() {
					t.Errorf("TLS expiry %v without TLS", r.TLSExpiry)
				}
			},
		},
		{
			name:   "connect over IPv6",
			listen: silentListen,
			v6:     true,
			want:   ReasonOK,
		},
		{
			name:   "closed port",
			listen: func(t *testing.T, _ bool) string { return closedPort(t) },
			want:   ReasonConnect,
		},
		{
			name:   "TLS handshake",
			listen: tlsListen,
			tcp:    trusted,
			want:   ReasonOK,
			check: func(t *testing.T, r Result) {
				if d := phaseOf(t, r, PhaseTLS); d <= 0 {
					t.Errorf("tls phase %v, want > 0", d)
				}
				if d := phaseOf(t, r, PhaseConnect); d <= 0 {
					t.Errorf("connect phase %v, want > 0", d)
				}
				if !r.TLSExpiry.Equal(pki.ServerLeaf.NotAfter) {
					t.Errorf("TLS expiry %v, want %v", r.TLSExpiry, pki.ServerLeaf.NotAfter)
				}
			},
		},
		{
			name:   "TLS handshake over IPv6",
			listen: tlsListen,
			v6:     true,
			tcp:    trusted,
			want:   ReasonOK,
		},
		{
			name:   "TLS handshake, unknown CA",
			listen: tlsListen,
			tcp:    discovery.TCPSettings{TLS: true},
			want:   ReasonTLS,
		},
		{
			name:   "TLS handshake, server_name mismatch",
			listen: tlsListen,
			tcp:    discovery.TCPSettings{TLS: true, TLSConfig: discovery.TLSSettings{CAFile: pki.CAFile, ServerName: "oxcross.test"}},
			want:   ReasonTLS,
		},
		{
			name:   "TLS handshake, insecure_skip_verify",
			listen: tlsListen,
			tcp:    discovery.TCPSettings{TLS: true, TLSConfig: discovery.TLSSettings{InsecureSkipVerify: true}},
			want:   ReasonOK,
		},
		{
			name:   "TLS handshake with a plain server",
			listen: plainListen,
			tcp:    trusted,
			want:   ReasonTLS,
		},
		{
			name:    "TLS handshake with a silent server",
			listen:  silentListen,
			tcp:     trusted,
			timeout: 300 * time.Millisecond,
			want:    ReasonTimeout,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := tc.listen(t, tc.v6)
			timeout := tc.timeout
			if timeout == 0 {
				timeout = probeTimeout
			}
			start := time.Now()
			r := probeModule(t, discovery.Module{Kind: discovery.KindTCP, TCP: tc.tcp}, addrTarget(addr), timeout)
			elapsed := time.Since(start)
			checkReason(t, r, tc.want)
			if tc.timeout != 0 && elapsed > tc.timeout+200*time.Millisecond {
				t.Errorf("probe returned after %v, want within %v", elapsed, tc.timeout+200*time.Millisecond)
			}
			if r.Duration <= 0 || r.Duration > elapsed {
				t.Errorf("duration %v, want in (0, %v]", r.Duration, elapsed)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// skipWithoutICMP skips t when r failed for want of an ICMP socket.
func skipWithoutICMP(t *testing.T, r Result) {
	t.Helper()
	if r.Reason == ReasonICMP && r.Err != nil && strings.Contains(r.Err.Error(), "no ICMP socket") {
		t.Skipf("ICMP sockets are not permitted here: %v", r.Err)
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
			r := probeModule(t, discovery.Module{Kind: discovery.KindICMP}, addrTarget(tc.host), 2*time.Second)
			skipWithoutICMP(t, r)
			checkReason(t, r, ReasonOK)
			phaseOf(t, r, PhaseResolve)
			if d := phaseOf(t, r, PhaseProcessing); d <= 0 || d > r.Duration {
				t.Errorf("processing (round trip) %v, want in (0, %v]", d, r.Duration)
			}
			if r.Duration > time.Since(start) {
				t.Errorf("duration %v longer than the probe", r.Duration)
			}
		})
	}
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
		family     discovery.IPFamily
		noFallback bool
		want       Reason
	}{
		{"ip4", discovery.IP4, true, ReasonOK},
		{"ip6 without fallback", discovery.IP6, true, want6},
		{"ip6 with fallback", discovery.IP6, false, want6Fallback},
		{"any", discovery.IPAny, false, ReasonOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := discovery.Module{Kind: discovery.KindHTTP, IPFamily: tc.family, NoIPFallback: tc.noFallback}
			checkReason(t, probeModule(t, m, urlTarget(url), probeTimeout), tc.want)
		})
	}
}

// fakeDNS answers A and AAAA queries from its table and NXDOMAIN for other
// names, on UDP.
type fakeDNS struct {
	pc    net.PacketConn
	hosts map[string][]net.IP // by FQDN
}

func newFakeDNS(t *testing.T, hosts map[string][]string) *fakeDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDNS{pc: pc, hosts: make(map[string][]net.IP)}
	for name, ips := range hosts {
		for _, ip := range ips {
			f.hosts[name+"."] = append(f.hosts[name+"."], net.ParseIP(ip))
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); f.serve() }()
	t.Cleanup(func() { _ = pc.Close(); <-done })
	return f
}

func (f *fakeDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, addr, err := f.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, err := f.answer(buf[:n]); err == nil {
			_, _ = f.pc.WriteTo(resp, addr)
		}
	}
}

func (f *fakeDNS) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	ips, known := f.hosts[strings.ToLower(q.Name.String())]
	rh := dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true, Authoritative: true}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	for _, ip := range ips {
		rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
		switch ip4 := ip.To4(); {
		case q.Type == dnsmessage.TypeA && ip4 != nil:
			err = b.AResource(rr, dnsmessage.AResource{A: [4]byte(ip4)})
		case q.Type == dnsmessage.TypeAAAA && ip4 == nil:
			err = b.AAAAResource(rr, dnsmessage.AAAAResource{AAAA: [16]byte(ip.To16())})
		}
		if err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// resolver returns a resolver that asks only f.
func (f *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp4", f.pc.LocalAddr().String())
		},
	}
}

// TestIPFamily resolves made-up names with a fake DNS server: one with both
// families, one with each. It replaces net.DefaultResolver, so it must not
// run in parallel with other tests (its subtests run in parallel with each
// other).
func TestIPFamily(t *testing.T) {
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		_ = l.Close()
	}
	dns := newFakeDNS(t, map[string][]string{
		"dual.oxcross.test": {"127.0.0.1", "::1"},
		"v4.oxcross.test":   {"127.0.0.1"},
		"v6.oxcross.test":   {"::1"},
	})
	old := net.DefaultResolver
	net.DefaultResolver = dns.resolver()
	t.Cleanup(func() { net.DefaultResolver = old })

	okHandler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	serve := func(v6 bool) string {
		ts := httptest.NewUnstartedServer(okHandler)
		ts.Config.ErrorLog = log.New(io.Discard, "", 0)
		ts.Listener = listenLoopback(t, v6)
		ts.Start()
		t.Cleanup(ts.Close)
		_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
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
		family     discovery.IPFamily
		noFallback bool
		want       Reason
	}{
		{"both families, ip4", "dual.oxcross.test", false, discovery.IP4, true, ReasonOK},
		{"both families, ip6", "dual.oxcross.test", true, discovery.IP6, true, ReasonOK},
		{"both families, any, server on IPv4", "dual.oxcross.test", false, discovery.IPAny, false, ReasonOK},
		{"both families, any, server on IPv6", "dual.oxcross.test", true, discovery.IPAny, false, ReasonOK},
		// The preferred family has an address: the probe measures it, and
		// does not fall back when it refuses connections.
		{"both families, ip6, server on IPv4", "dual.oxcross.test", false, discovery.IP6, true, ReasonConnect},
		{"both families, ip6 with fallback, server on IPv4", "dual.oxcross.test", false, discovery.IP6, false, ReasonConnect},
		{"both families, ip4, server on IPv6", "dual.oxcross.test", true, discovery.IP4, true, ReasonConnect},
		{"IPv4 only, ip6", "v4.oxcross.test", false, discovery.IP6, true, ReasonDNS},
		{"IPv4 only, ip6 with fallback", "v4.oxcross.test", false, discovery.IP6, false, ReasonOK},
		{"IPv6 only, ip4", "v6.oxcross.test", true, discovery.IP4, true, ReasonDNS},
		{"IPv6 only, ip4 with fallback", "v6.oxcross.test", true, discovery.IP4, false, ReasonOK},
		{"no such name", "none.oxcross.test", false, discovery.IP4, false, ReasonDNS},
	} {
		port := port4
		if tc.v6server {
			port = port6
		}
		addr := net.JoinHostPort(tc.host, port)
		t.Run("http/"+tc.name, func(t *testing.T) {
			t.Parallel()
			m := discovery.Module{Kind: discovery.KindHTTP, IPFamily: tc.family, NoIPFallback: tc.noFallback}
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
			m := discovery.Module{Kind: discovery.KindTCP, IPFamily: tc.family, NoIPFallback: tc.noFallback}
			checkReason(t, probeModule(t, m, addrTarget(addr), probeTimeout), tc.want)
		})
	}

	// ICMP resolves the same way; it needs no server, so only the name
	// decides.
	for _, tc := range []struct {
		name       string
		host       string
		family     discovery.IPFamily
		noFallback bool
		want       Reason
	}{
		{"both families, ip4", "dual.oxcross.test", discovery.IP4, true, ReasonOK},
		{"both families, ip6", "dual.oxcross.test", discovery.IP6, true, ReasonOK},
		{"IPv4 only, ip6", "v4.oxcross.test", discovery.IP6, true, ReasonDNS},
		{"IPv4 only, ip6 with fallback", "v4.oxcross.test", discovery.IP6, false, ReasonOK},
		{"IPv6 only, ip4", "v6.oxcross.test", discovery.IP4, true, ReasonDNS},
		{"no such name", "none.oxcross.test", discovery.IPAny, false, ReasonDNS},
	} {
		t.Run("icmp/"+tc.name, func(t *testing.T) {
			t.Parallel()
			m := discovery.Module{Kind: discovery.KindICMP, IPFamily: tc.family, NoIPFallback: tc.noFallback}
			r := probeModule(t, m, addrTarget(tc.host), 2*time.Second)
			if tc.want == ReasonOK {
				skipWithoutICMP(t, r)
			}
			checkReason(t, r, tc.want)
			phaseOf(t, r, PhaseResolve)
		})
	}
}

// TestUnresolvableName probes a name that does not resolve, with a fake
// DNS server that answers NXDOMAIN, with every kind. It replaces
// net.DefaultResolver, so it must not run in parallel with other tests.
func TestUnresolvableName(t *testing.T) {
	dns := newFakeDNS(t, nil)
	old := net.DefaultResolver
	net.DefaultResolver = dns.resolver()
	t.Cleanup(func() { net.DefaultResolver = old })
	for _, tc := range []struct {
		kind discovery.Kind
		tg   discovery.Target
	}{
		{discovery.KindHTTP, urlTarget("http://none.oxcross.test:9301/")},
		{discovery.KindOxcross, urlTarget("http://none.oxcross.test:9301" + origin.Path)},
		{discovery.KindTCP, addrTarget("none.oxcross.test:9301")},
		{discovery.KindICMP, addrTarget("none.oxcross.test")},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			t.Parallel()
			r := probeModule(t, discovery.Module{Kind: tc.kind}, tc.tg, 2*time.Second)
			checkReason(t, r, ReasonDNS)
			phaseOf(t, r, PhaseResolve)
			if _, ok := r.Phases.Get(PhaseConnect); ok {
				t.Error("connect phase set after a DNS failure")
			}
		})
	}
}
