package prober

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
	"github.com/oxcross/oxcross/origin"
)

// BenchmarkProbe runs whole probes, fresh connection each, against a
// server in the same process on loopback: ns/op and allocs/op count both
// sides. bench/run.sh measures the leaf alone, against blackbox_exporter.
func BenchmarkProbe(b *testing.B) {
	oh, err := origin.NewHandler(origin.Options{})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(origin.Path, oh)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	ts := httptest.NewServer(mux)
	b.Cleanup(ts.Close)
	kinds := DefaultKinds(discard)
	p := NewProber("bench", kinds)
	for _, tc := range []struct {
		name string
		t    config.Target
	}{
		{"simple", config.Target{ID: "s", URL: ts.URL + "/", Module: "simple", Interval: time.Second, Timeout: time.Second}},
		{"advanced", config.Target{ID: "a", URL: ts.URL + origin.Path, Module: "advanced", Interval: time.Second, Timeout: time.Second}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m := kinds.Base().Modules[tc.t.Module]
			st := p.newState(&m) // as the scheduler keeps it for the origin
			b.ReportAllocs()
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), tc.t.Timeout)
				r := p.Probe(ctx, &tc.t, &m, st)
				cancel()
				if !r.Success {
					b.Fatalf("probe failed: %s: %v", r.Reason, r.Err)
				}
			}
		})
	}
}

// benchHTTPKind runs the http kind's probes of url with module m, each a
// fresh connection, as the scheduler does.
func benchHTTPKind(b *testing.B, url string, m config.Module) {
	b.Helper()
	kinds := DefaultKinds(discard)
	p := NewProber("bench", kinds)
	t := config.Target{ID: "b", URL: url, Module: "b", Interval: time.Second, Timeout: time.Second}
	st := p.newState(&m)
	b.ReportAllocs()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), t.Timeout)
		r := p.Probe(ctx, &t, &m, st)
		cancel()
		if !r.Success {
			b.Fatalf("probe failed: %s: %v", r.Reason, r.Err)
		}
	}
}

// BenchmarkHTTPProbe is bench/run.sh's row (a) in one process: the http
// kind, a fresh connection per probe, against a loopback server that
// closes each connection. ns/op and allocs/op count both sides.
func BenchmarkHTTPProbe(b *testing.B) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv.Config.SetKeepAlivesEnabled(false)
	srv.Start()
	b.Cleanup(srv.Close)
	benchHTTPKind(b, srv.URL+"/healthz", config.Module{Kind: "http", Settings: &HTTPSettings{}})
}

// BenchmarkHTTPSProbe is bench/run.sh's https row in one process: a TLS
// handshake every probe (HTTP/1.1 only, no keep-alive, no session
// tickets, as `oxbench tlsorigin`), the certificate verified against
// testutil's CA given as tls.ca_file. ns/op and allocs/op count both
// sides: the server's handshake too.
func BenchmarkHTTPSProbe(b *testing.B) {
	ca := testutil.NewCA(b, "bench CA")
	cert := ca.Server(b, "127.0.0.1")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}, NextProtos: []string{"http/1.1"}, SessionTicketsDisabled: true}
	srv.Config.SetKeepAlivesEnabled(false)
	srv.StartTLS()
	b.Cleanup(srv.Close)
	benchHTTPKind(b, srv.URL+"/healthz", config.Module{Kind: "http", Settings: &HTTPSettings{TLS: TLSSettings{CAFile: ca.CertFile}}})
}
