package prober

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
	"github.com/oxcross/oxcross/origin"
)

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

// tlsFixture is a test's certificate authority with the certificates its
// servers and the leaf use.
type tlsFixture struct {
	ca *testutil.CA
	// server is for the loopback names; client is the leaf's, with the
	// common name oxcross-leaf.
	server, client *testutil.Cert
}

func newTLSFixture(t *testing.T) *tlsFixture {
	t.Helper()
	ca := testutil.NewCA(t, "Oxcross test CA")
	return &tlsFixture{ca: ca, server: ca.Server(t), client: ca.Client(t, "oxcross-leaf")}
}

// serverKind is how a test's HTTP server listens.
type serverKind int

const (
	plainServer        serverKind = iota
	tlsServer                     // HTTP/1.1 with the fixture's server certificate
	h2Server                      // like tlsServer, negotiating h2
	clientAuthServer              // like tlsServer, requiring a client certificate
	h2ClientAuthServer            // like h2Server, requiring a client certificate
	otherNameServer               // a certificate only for oxcross.test
	chainServer                   // sends its certificate and the CA, which expires first
)

// startHTTPServer serves h on 127.0.0.1 as kind asks, with the
// certificates of fx (nil for a plain server).
func startHTTPServer(t *testing.T, fx *tlsFixture, kind serverKind, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(ts.Close)
	if kind == plainServer {
		ts.Start()
		return ts
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}}
	switch kind {
	case h2Server:
		ts.EnableHTTP2 = true
	case clientAuthServer:
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, fx.ca.Pool
	case h2ClientAuthServer:
		ts.EnableHTTP2 = true
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, fx.ca.Pool
	case otherNameServer:
		cfg.Certificates = []tls.Certificate{fx.ca.Server(t, "oxcross.test").TLS}
	case chainServer:
		// The leaf outlives its CA: the chain's earliest expiry is the
		// CA's.
		c := fx.ca.Issue(t, testutil.CertOptions{
			Hosts: testutil.LoopbackHosts(), NotAfter: fx.ca.Cert.NotAfter.Add(30 * 24 * time.Hour), Chain: true,
		})
		cfg.Certificates = []tls.Certificate{c.TLS}
	}
	ts.TLS = cfg
	ts.StartTLS()
	return ts
}

// startLoopbackHTTP serves h over plain HTTP on 127.0.0.1, or on ::1
// with v6 (see listenLoopback), until the test ends, and returns its
// address, host:port.
func startLoopbackHTTP(t *testing.T, h http.Handler, v6 bool) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.Listener = listenLoopback(t, v6)
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// httpCase is a probe of a test server with a module of the http kind.
type httpCase struct {
	name    string
	server  serverKind
	handler http.HandlerFunc // hello when nil
	path    string
	mod     config.Module // its kind is http
	want    Reason
	check   func(t *testing.T, r Result, seen []*http.Request)
}

// hello answers "hello oxcross".
func hello(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello oxcross") }

// runHTTPCases runs each case in a parallel subtest against its own
// server with the certificates of fx.
func runHTTPCases(t *testing.T, fx *tlsFixture, cases []httpCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Handler(tc.handler)
			if tc.handler == nil {
				h = http.HandlerFunc(hello)
			}
			var seen seenRequests
			ts := startHTTPServer(t, fx, tc.server, seen.wrap(h))
			path := tc.path
			if path == "" {
				path = "/"
			}
			m := tc.mod
			m.Kind = "http"
			r := probeModule(t, m, urlTarget(ts.URL+path), probeTimeout)
			checkReason(t, r, tc.want)
			if r.Duration <= 0 {
				t.Errorf("duration %v", r.Duration)
			}
			if !r.HTTP {
				t.Error("an http probe's result does not say it speaks HTTP")
			}
			if tc.check != nil {
				tc.check(t, r, seen.all())
			}
		})
	}
}

// TestHTTPKind: the http kind's request and answer settings, over plain
// HTTP.
func TestHTTPKind(t *testing.T) {
	t.Parallel()
	runHTTPCases(t, nil, []httpCase{
		{
			name: "GET by default, plain HTTP phases",
			want: ReasonOK,
			check: func(t *testing.T, r Result, seen []*http.Request) {
				if len(seen) != 1 || seen[0].Method != http.MethodGet {
					t.Fatalf("server saw %d requests, want one GET", len(seen))
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
			mod:  httpModule(HTTPSettings{Method: http.MethodHead}),
			want: ReasonOK,
			check: func(t *testing.T, _ Result, seen []*http.Request) {
				if len(seen) != 1 || seen[0].Method != http.MethodHead {
					t.Errorf("server saw %v, want one HEAD", methods(seen))
				}
			},
		},
		{
			name: "POST",
			mod:  httpModule(HTTPSettings{Method: http.MethodPost}),
			want: ReasonOK,
			check: func(t *testing.T, _ Result, seen []*http.Request) {
				if len(seen) != 1 || seen[0].Method != http.MethodPost {
					t.Errorf("server saw %v, want one POST", methods(seen))
				}
			},
		},
		{
			name: "headers and Host override",
			mod: httpModule(HTTPSettings{Headers: map[string]string{
				"X-Oxcross-Test": "yes",
				"host":           "origin.oxcross.test",
			}}),
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
			mod:     httpModule(HTTPSettings{ValidStatusCodes: []int{204}}),
			want:    ReasonOK,
			check: func(t *testing.T, r Result, _ []*http.Request) {
				if r.StatusCode != http.StatusNoContent {
					t.Errorf("status %d, want 204", r.StatusCode)
				}
			},
		},
		{
			name: "200 not listed",
			mod:  httpModule(HTTPSettings{ValidStatusCodes: []int{204, 301}}),
			want: ReasonHTTPStatus,
			check: func(t *testing.T, r Result, _ []*http.Request) {
				if r.StatusCode != http.StatusOK {
					t.Errorf("status %d, want 200", r.StatusCode)
				}
			},
		},
		{
			name: "body matches",
			mod:  httpModule(HTTPSettings{BodyRegexp: `^hello \w+$`}),
			want: ReasonOK,
		},
		{
			name: "body does not match",
			mod:  httpModule(HTTPSettings{BodyRegexp: `goodbye`}),
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
			mod:     httpModule(HTTPSettings{FollowRedirects: true}),
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
			mod:     config.Module{MaxBodyBytes: 10},
			want:    ReasonBodyTooLarge,
		},
		{
			name:    "body at max_body_bytes",
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "0123456789") },
			mod:     config.Module{MaxBodyBytes: 10},
			want:    ReasonOK,
		},
	})
}

// TestHTTPKindTLS: the http kind over TLS: its phases, HTTP/2, the
// certificates' expiry, and an authority it does not trust.
func TestHTTPKindTLS(t *testing.T) {
	t.Parallel()
	fx := newTLSFixture(t)
	trusted := httpModule(HTTPSettings{TLS: TLSSettings{CAFile: fx.ca.CertFile}})
	runHTTPCases(t, fx, []httpCase{
		{
			name:   "TLS, CA trusted",
			server: tlsServer,
			mod:    trusted,
			want:   ReasonOK,
			check: func(t *testing.T, r Result, _ []*http.Request) {
				for p := range numPhases {
					phaseOf(t, r, p)
				}
				checkTLSPhases(t, r, fx.server.Leaf.NotAfter)
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
			mod:    trusted,
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
			mod:    trusted,
			want:   ReasonOK,
			check: func(t *testing.T, r Result, _ []*http.Request) {
				if !r.TLSExpiry.Equal(fx.ca.Cert.NotAfter) {
					t.Errorf("TLS expiry %v, want the CA's %v", r.TLSExpiry, fx.ca.Cert.NotAfter)
				}
			},
		},
		{
			name:   "TLS, unknown CA",
			server: tlsServer,
			want:   ReasonTLS,
		},
	})
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

// TestProbeSimple: the built-in module simple requests the URL as given,
// and its answer need not be an origin's.
func TestProbeSimple(t *testing.T) {
	t.Parallel()
	queries := make(chan string, 1)
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries <- r.URL.RawQuery
		_, _ = io.WriteString(w, "not an origin, just a web page")
	}))
	r := probe(t, newTestProber(), simple(ts.URL+"/"), nil)
	checkReason(t, r, ReasonOK)
	if r.Drift != nil {
		t.Errorf("simple probe has drift %+v", *r.Drift)
	}
	if r.Duration <= 0 {
		t.Errorf("duration %v", r.Duration)
	}
	if q := <-queries; q != "" {
		t.Errorf("simple probe sent query %q, want none", q)
	}
}

// TestProbeFailuresSimple: the built-in module simple fails on a status
// other than 200 and on a body over the default limit.
func TestProbeFailuresSimple(t *testing.T) {
	t.Parallel()
	p := newTestProber()
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    Reason
	}{
		{
			name: "500",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "boom", http.StatusInternalServerError)
			},
			want: ReasonHTTPStatus,
		},
		{
			name: "404",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.NotFound(w, r)
			},
			want: ReasonHTTPStatus,
		},
		{
			name: "body too large",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write(make([]byte, DefaultMaxBodyBytes+1))
			},
			want: ReasonBodyTooLarge,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newServer(t, tc.handler)
			checkReason(t, probe(t, p, simple(ts.URL+"/"), nil), tc.want)
		})
	}
}

func TestProbeBodyAtLimit(t *testing.T) {
	t.Parallel()
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(make([]byte, DefaultMaxBodyBytes))
	}))
	checkReason(t, probe(t, newTestProber(), simple(ts.URL+"/"), nil), ReasonOK)
}

// TestHTTPKindWithoutSettings: a module of the http kind without settings
// (nil, as a hand-made module has) probes with the defaults.
func TestHTTPKindWithoutSettings(t *testing.T) {
	t.Parallel()
	ts := newOriginServer(t, origin.Options{})
	for _, kind := range []string{"http", "oxcross"} {
		r := probeModule(t, config.Module{Kind: kind}, urlTarget(ts.URL+origin.Path), probeTimeout)
		checkReason(t, r, ReasonOK)
		if (r.Drift != nil) != (kind == "oxcross") {
			t.Errorf("kind %s: drift %v", kind, r.Drift)
		}
	}
}

func TestHTTPSettingsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		s    HTTPSettings
		want []string // nil for none
	}{
		{"defaults", HTTPSettings{}, nil},
		{"everything set", HTTPSettings{
			Method: http.MethodPost, Headers: map[string]string{"X-A": "b", "Host": "h"}, ValidStatusCodes: []int{200, 599},
			BodyRegexp: `^ok`, FollowRedirects: true, TLS: TLSSettings{CertFile: "c", KeyFile: "k"},
		}, nil},
		{"method", HTTPSettings{Method: "FOO"}, []string{`method: "FOO" is not an HTTP method`}},
		{"header name", HTTPSettings{Headers: map[string]string{"X A": "b"}}, []string{`headers: "X A" is not a header name`}},
		{"header value", HTTPSettings{Headers: map[string]string{"X-A": "b\r\nX-B: c"}}, []string{"headers: X-A: value contains a line break"}},
		{"status codes", HTTPSettings{ValidStatusCodes: []int{99, 600}}, []string{"valid_status_codes: 99 is not", "valid_status_codes: 600 is not"}},
		{"body_regexp", HTTPSettings{BodyRegexp: `(`}, []string{"body_regexp: "}},
		{"cert without key", HTTPSettings{TLS: TLSSettings{CertFile: "c"}}, []string{"tls: cert_file and key_file go together"}},
		{"every problem at once", HTTPSettings{Method: "FOO", BodyRegexp: `(`}, []string{"method: ", "body_regexp: "}},
	} {
		err := tc.s.Validate()
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want it to contain %q", tc.name, err, w)
			}
		}
	}
}
