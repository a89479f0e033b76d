package prober

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
)

func TestTCPKind(t *testing.T) {
	t.Parallel()
	fx := newTLSFixture(t)
	// hold keeps a connection open until the test ends.
	hold := func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }
	handshake := func(c net.Conn) {
		if err := c.(*tls.Conn).Handshake(); err == nil {
			_, _ = io.Copy(io.Discard, c)
		}
		_ = c.Close()
	}
	tlsListen := func(t *testing.T, v6 bool) string {
		l := tls.NewListener(listenLoopback(t, v6), &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}})
		testutil.ServeConns(t, l, handshake)
		return l.Addr().String()
	}
	plainListen := func(t *testing.T, v6 bool) string {
		return startLoopbackHTTP(t, http.NotFoundHandler(), v6)
	}
	silentListen := func(t *testing.T, v6 bool) string {
		l := listenLoopback(t, v6)
		testutil.ServeConns(t, l, hold)
		return l.Addr().String()
	}
	trusted := TCPSettings{TLS: true, TLSConfig: TLSSettings{CAFile: fx.ca.CertFile}}
	for _, tc := range []struct {
		name    string
		listen  func(t *testing.T, v6 bool) string
		v6      bool
		tcp     *TCPSettings // nil: none, as the built-in module tcp
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
				if r.HTTP {
					t.Error("a tcp probe's result says it speaks HTTP")
				}
			},
		},
		{
			name:   "connect, default settings",
			listen: silentListen,
			tcp:    &TCPSettings{},
			want:   ReasonOK,
		},
		{
			name:   "connect over IPv6",
			listen: silentListen,
			v6:     true,
			want:   ReasonOK,
		},
		{
			name:   "closed port",
			listen: func(t *testing.T, _ bool) string { return testutil.ClosedAddr(t) },
			want:   ReasonConnect,
		},
		{
			name:   "TLS handshake",
			listen: tlsListen,
			tcp:    &trusted,
			want:   ReasonOK,
			check: func(t *testing.T, r Result) {
				checkTLSPhases(t, r, fx.server.Leaf.NotAfter)
			},
		},
		{
			name:   "TLS handshake over IPv6",
			listen: tlsListen,
			v6:     true,
			tcp:    &trusted,
			want:   ReasonOK,
		},
		{
			name:   "TLS handshake, unknown CA",
			listen: tlsListen,
			tcp:    &TCPSettings{TLS: true},
			want:   ReasonTLS,
		},
		{
			name:   "TLS handshake, server_name mismatch",
			listen: tlsListen,
			tcp:    &TCPSettings{TLS: true, TLSConfig: TLSSettings{CAFile: fx.ca.CertFile, ServerName: "oxcross.test"}},
			want:   ReasonTLS,
		},
		{
			name:   "TLS handshake, insecure_skip_verify",
			listen: tlsListen,
			tcp:    &TCPSettings{TLS: true, TLSConfig: TLSSettings{InsecureSkipVerify: true}},
			want:   ReasonOK,
		},
		{
			name:   "TLS handshake with a plain server",
			listen: plainListen,
			tcp:    &trusted,
			want:   ReasonTLS,
		},
		{
			name:    "TLS handshake with a silent server",
			listen:  silentListen,
			tcp:     &trusted,
			timeout: 300 * time.Millisecond,
			want:    ReasonTimeout,
		},
		{
			name:   "TLS settings whose files cannot be read",
			listen: tlsListen,
			tcp:    &TCPSettings{TLS: true, TLSConfig: TLSSettings{CAFile: fx.ca.CertFile + ".missing"}},
			want:   ReasonError,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := tc.listen(t, tc.v6)
			timeout := tc.timeout
			if timeout == 0 {
				timeout = probeTimeout
			}
			m := config.Module{Kind: "tcp"}
			if tc.tcp != nil {
				m.Settings = tc.tcp
			}
			// A timer of the probe's timeout, started with it, is the
			// truth the probe's return is compared with: on a busy
			// machine both wake late.
			control := make(chan time.Time, 1)
			start := time.Now()
			time.AfterFunc(timeout, func() { control <- time.Now() })
			r := probeModule(t, m, addrTarget(addr), timeout)
			end := time.Now()
			elapsed := end.Sub(start)
			checkReason(t, r, tc.want)
			if tc.timeout != 0 {
				if deadline := (<-control).Add(200 * time.Millisecond); end.After(deadline) {
					t.Errorf("probe returned after %v, %v after a timer of its timeout %v fired", elapsed, end.Sub(deadline)+200*time.Millisecond, tc.timeout)
				}
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

func TestTCPSettingsValidate(t *testing.T) {
	t.Parallel()
	if err := (&TCPSettings{TLS: true, TLSConfig: TLSSettings{CertFile: "c", KeyFile: "k"}}).Validate(); err != nil {
		t.Errorf("valid settings: %v", err)
	}
	err := (&TCPSettings{TLS: true, TLSConfig: TLSSettings{KeyFile: "k"}}).Validate()
	if want := "tls_config: cert_file and key_file go together"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("key_file without cert_file: error %v, want %q", err, want)
	}
}
