package prober

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/oxcross/oxcross/discovery"
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
	p := NewProber("bench")
	for _, tc := range []struct {
		name string
		t    discovery.Target
	}{
		{"simple", discovery.Target{ID: "s", URL: ts.URL + "/", Mode: discovery.ModeSimple, Interval: time.Second, Timeout: time.Second}},
		{"advanced", discovery.Target{ID: "a", URL: ts.URL + origin.Path, Mode: discovery.ModeAdvanced, Interval: time.Second, Timeout: time.Second}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			st := &originState{}
			b.ReportAllocs()
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), tc.t.Timeout)
				r := p.Probe(ctx, tc.t, st)
				cancel()
				if !r.Success {
					b.Fatalf("probe failed: %s: %v", r.Reason, r.Err)
				}
			}
		})
	}
}
