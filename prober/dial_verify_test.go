package prober

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
)

// handshakeErr makes a TLS handshake over a pipe between a server with
// cert and the client client makes of its end, and returns the client's
// error.
//
// The two ends are a loopback TCP connection, not net.Pipe: over a pipe,
// whose writes wait for the reader, each end's closing alert waited out
// crypto/tls's 5 s write deadline, 2 minutes for the test.
func handshakeErr(t *testing.T, cert tls.Certificate, client func(net.Conn) *tls.Conn) error {
	t.Helper()
	c, s := tcpPair(t)
	defer func() { _ = c.Close(); _ = s.Close() }()
	srv := tls.Server(s, &tls.Config{Certificates: []tls.Certificate{cert}})
	go func() { _ = srv.Handshake(); _ = srv.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return client(c).HandshakeContext(ctx)
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Errorf("accepting: %v", err)
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.FailNow()
	}
	return client, server
}

// untimed is err's text without the current time that x509 names in an
// expiry error, which may tick between two handshakes.
func untimed(err error) string {
	s := err.Error()
	if i := strings.Index(s, "current time"); i >= 0 {
		if j := strings.Index(s[i:], " is "); j >= 0 {
			return s[:i] + s[i+j:]
		}
	}
	return s
}

// TestCertVerifierAsCryptoTLS compares, for good and bad server
// certificates, the handshake error of a client that certVerifier
// verifies (twice: the second time it may remember the chain) with
// crypto/tls's own verification, error text included.
func TestCertVerifierAsCryptoTLS(t *testing.T) {
	ca := testutil.NewCA(t, "verify CA")
	other := testutil.NewCA(t, "other CA")
	serverAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	good := ca.Server(t, "127.0.0.1", "good.example")
	chained := ca.Issue(t, testutil.CertOptions{Hosts: []string{"good.example"}, Usage: serverAuth, Chain: true})
	expired := ca.Issue(t, testutil.CertOptions{Hosts: []string{"good.example"}, Usage: serverAuth, NotAfter: time.Now().Add(-time.Minute)})
	foreign := other.Server(t, "good.example")
	clientOnly := ca.Client(t, "good.example")
	tc, err := tlsConfig(TLSSettings{CAFile: ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	// One verifier for every case, as a module's client keeps it: a
	// chain remembered for one name must not pass for another.
	v := newCertVerifier(tc.RootCAs)
	for _, c := range []struct {
		name   string
		cert   *testutil.Cert
		server string
		ok     bool
	}{
		{"good", good, "good.example", true},
		{"good by IP", good, "127.0.0.1", true},
		{"good, other name", good, "evil.example", false},
		{"chain sent", chained, "good.example", true},
		{"expired", expired, "good.example", false},
		{"unknown CA", foreign, "good.example", false},
		{"client certificate", clientOnly, "good.example", false},
	} {
		want := handshakeErr(t, c.cert.TLS, func(conn net.Conn) *tls.Conn {
			cfg := tc.Clone()
			cfg.ServerName = c.server
			return tls.Client(conn, cfg)
		})
		if (want == nil) != c.ok {
			t.Fatalf("%s: crypto/tls says %v", c.name, want)
		}
		for i := range 2 {
			got := handshakeErr(t, c.cert.TLS, func(conn net.Conn) *tls.Conn { return v.client(conn, tc, c.server, nil) })
			if (got == nil) != c.ok || (got != nil && untimed(got) != untimed(want)) {
				t.Errorf("%s, handshake %d: got %v, want %v", c.name, i+1, got, want)
			}
		}
	}
	v.mu.Lock()
	n := len(v.ok)
	v.mu.Unlock()
	if n != 3 {
		t.Errorf("verifier remembers %d chains, want 3 (good for two names, chain sent)", n)
	}
}

// TestHTTPSWebSocketUpgradeOverHTTP1 checks that a probe whose headers
// ask for a WebSocket upgrade offers no HTTP/2 to an https origin that
// speaks it, as net/http's own TLS dial does, while a plain probe of the
// same module's settings gets HTTP/2.
func TestHTTPSWebSocketUpgradeOverHTTP1(t *testing.T) {
	ca := testutil.NewCA(t, "h2 CA")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "127.0.0.1").TLS}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	k := newHTTPKind()
	for _, c := range []struct {
		headers map[string]string
		version float64
	}{
		{nil, 2},
		{map[string]string{"Connection": "Upgrade", "Upgrade": "websocket"}, 1.1},
	} {
		m := config.Module{Kind: "http", Settings: &HTTPSettings{Headers: c.headers, TLS: TLSSettings{CAFile: ca.CertFile}}}
		tgt := config.Target{ID: "h2", URL: srv.URL + "/"}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var r Result
		k.Probe(ctx, &Params{Target: &tgt, Module: &m}, &r)
		cancel()
		if !r.Success || r.HTTPVersion != c.version {
			t.Errorf("headers %v: success %v (%s: %v), HTTP version %v, want %v", c.headers, r.Success, r.Reason, r.Err, r.HTTPVersion, c.version)
		}
	}
}

// TestKeyExchange: key_exchange hybrid (the default) offers the
// post-quantum X25519MLKEM768 in the ClientHello, classical does not, and
// any other value is refused by the settings' validation.
func TestKeyExchange(t *testing.T) {
	ca := testutil.NewCA(t, "key exchange CA")
	cert := ca.Server(t, "good.example")
	offered := func(s TLSSettings) []tls.CurveID {
		t.Helper()
		tc, err := tlsConfig(s)
		if err != nil {
			t.Fatal(err)
		}
		tc.ServerName = "good.example"
		hello := make(chan []tls.CurveID, 1)
		c, srvEnd := tcpPair(t)
		defer func() { _ = c.Close(); _ = srvEnd.Close() }()
		srv := tls.Server(srvEnd, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			hello <- h.SupportedCurves
			return &tls.Config{Certificates: []tls.Certificate{cert.TLS}}, nil
		}})
		go func() { _ = srv.Handshake() }()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tls.Client(c, tc).HandshakeContext(ctx); err != nil {
			t.Fatalf("handshake with key_exchange %q: %v", s.KeyExchange, err)
		}
		return <-hello
	}
	for _, c := range []struct {
		setting string
		pq      bool
	}{{"", true}, {KeyExchangeHybrid, true}, {KeyExchangeClassical, false}} {
		s := TLSSettings{CAFile: ca.CertFile, KeyExchange: c.setting}
		if err := s.validate(); err != nil {
			t.Fatalf("key_exchange %q refused: %v", c.setting, err)
		}
		curves := offered(s)
		if got := slices.Contains(curves, tls.X25519MLKEM768); got != c.pq {
			t.Errorf("key_exchange %q: offered %v, X25519MLKEM768 among them %v, want %v", c.setting, curves, got, c.pq)
		}
		if !slices.Contains(curves, tls.X25519) {
			t.Errorf("key_exchange %q: offered %v, without X25519", c.setting, curves)
		}
	}
	err := TLSSettings{KeyExchange: "quantum"}.validate()
	if err == nil || !strings.Contains(err.Error(), `key_exchange: "quantum"`) {
		t.Errorf("key_exchange quantum: %v, want an error naming it", err)
	}
}
