package prober

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
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
