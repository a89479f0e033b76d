package prober

import (
	"container/heap"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/oxcross/oxcross/config"
)

// The per-probe path of a leaf without the network: metric updates,
// the scheduler's slot bookkeeping, and the exposition of many origins'
// series. bench/run.sh measures the real processes; docs/performance.md
// has the numbers.

// benchResult is a successful advanced probe with every phase, a status
// code and a drift: what record does the most work for.
func benchResult() Result {
	r := Result{
		Success: true, Reason: ReasonOK, Duration: 23 * time.Millisecond,
		StatusCode: 200, HTTPVersion: 1.1,
		Drift: &Drift{Offset: 2 * time.Second, Uncertainty: 10 * time.Millisecond},
	}
	for p := range numPhases {
		r.Phases.Set(p, time.Duration(p+1)*time.Millisecond)
	}
	return r
}

func BenchmarkRecord(b *testing.B) {
	m := NewMetrics(prometheus.NewRegistry())
	om := m.forOrigin("origin-9301-http", "leaf")
	r := Result{Success: true, Reason: ReasonOK, Duration: 23 * time.Millisecond, Drift: &Drift{Offset: 2 * time.Second, Uncertainty: 10 * time.Millisecond}}
	b.ReportAllocs()
	for b.Loop() {
		om.record(r)
	}
}

// BenchmarkRecordPhases is BenchmarkRecord with phases, status code and
// HTTP version set, as every HTTP probe has them.
func BenchmarkRecordPhases(b *testing.B) {
	m := NewMetrics(prometheus.NewRegistry())
	om := m.forOrigin("origin-9301-http", "leaf")
	r := benchResult()
	om.record(r) // the first result creates the gauges
	b.ReportAllocs()
	for b.Loop() {
		om.record(r)
	}
}

// BenchmarkRecordFailure records a failed probe (a timeout after connect).
func BenchmarkRecordFailure(b *testing.B) {
	m := NewMetrics(prometheus.NewRegistry())
	om := m.forOrigin("origin-9301-http", "leaf")
	r := Result{Reason: ReasonTimeout, Duration: 5 * time.Second}
	r.Phases.Set(PhaseResolve, 0)
	r.Phases.Set(PhaseConnect, time.Millisecond)
	om.record(r)
	b.ReportAllocs()
	for b.Loop() {
		om.record(r)
	}
}

// BenchmarkForOrigin creates one origin's series and deletes them again:
// what a config change costs per added and removed origin.
func BenchmarkForOrigin(b *testing.B) {
	m := NewMetrics(prometheus.NewRegistry())
	r := benchResult()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		om := m.forOrigin(fmt.Sprintf("origin-%d", i), "leaf")
		om.record(r)
		om.delete()
		i++
	}
}

// benchKind is a probe kind that returns at once with a full result.
type benchKind struct{ r Result }

func (benchKind) Spec() config.Kind {
	return config.Kind{Name: "bench", Builtin: "bench", Target: config.TargetURL}
}

func (k benchKind) Probe(_ context.Context, _ *Params, r *Result) { *r = k.r }

// BenchmarkSchedulerSlot is the scheduler's work for one slot of one
// origin without the network: take the origin off the slot heap, hand its
// probe (a kind that returns at once) to an idle probe worker, note the
// start lag, record the result in the metrics and the status page's
// history, and put the origin back on the heap at its next slot.
func BenchmarkSchedulerSlot(b *testing.B) {
	res := benchResult()
	res.Drift = nil
	kinds, err := NewKinds(benchKind{res})
	if err != nil {
		b.Fatal(err)
	}
	s := NewScheduler(SchedulerOptions{
		Prober: NewProber("bench", kinds), Metrics: NewMetrics(prometheus.NewRegistry()),
		LeafID: "leaf", History: NewHistory(), Logger: discard,
	})
	defer s.Stop()
	cfg := kinds.Base()
	cfg.Origins = []config.Target{{ID: "origin-80-bench", URL: "http://origin.example/", Module: "bench", Interval: time.Hour, Timeout: 5 * time.Second}}
	s.Apply(cfg)
	s.mu.Lock()
	e := s.origins["origin-80-bench"]
	s.mu.Unlock()
	var skips []skip
	b.ReportAllocs()
	for b.Loop() {
		s.mu.Lock()
		now := time.Now()
		e.next = now
		heap.Fix(&s.slots, e.index)
		s.due(now, &skips)
		s.mu.Unlock()
		for {
			s.mu.Lock()
			st := e.state
			s.mu.Unlock()
			if st == stScheduled {
				break
			}
			runtime.Gosched()
		}
	}
}

// benchLeaf returns the metrics of n origins, each after one successful
// advanced probe, the registry holding them, and a registry with the rest
// of a leaf's families (Go runtime, process), as a leaf's /metrics has
// them.
func benchLeaf(n int) (*Metrics, *prometheus.Registry, *prometheus.Registry) {
	probes := prometheus.NewRegistry()
	m := NewMetrics(probes)
	r := benchResult()
	r.TLSExpiry = time.Unix(1_900_000_000, 0)
	for i := range n {
		om := m.forOrigin(fmt.Sprintf("bench-%05d", i), "leaf-ams-1")
		om.record(r)
		m.startLag.Observe(0.0004)
	}
	others := prometheus.NewRegistry()
	others.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m, probes, others
}

// benchLeafRegistry returns a registry with n origins' series (see
// benchLeaf).
func benchLeafRegistry(n int) *prometheus.Registry {
	_, probes, _ := benchLeaf(n)
	return probes
}

// BenchmarkScrape serves /metrics of a leaf with 1,000 origins in the
// formats a Prometheus server negotiates, two ways: "gather" is promhttp
// over Gather (how the leaf served it before issue 17; push and tests
// still gather), "direct" the leaf's handler, which writes the per-origin
// families straight from their numbers. Per scrape: CPU time (ns/op) and
// garbage (B/op), per 1,000 origins.
func BenchmarkScrape(b *testing.B) {
	benchScrape(b, 1000)
}

// BenchmarkExposition10k is BenchmarkScrape with 10,000 origins.
func BenchmarkExposition10k(b *testing.B) {
	benchScrape(b, 10_000)
}

func benchScrape(b *testing.B, n int) {
	m, probes, others := benchLeaf(n)
	handlers := []struct {
		name string
		h    http.Handler
	}{
		{"gather", promhttp.HandlerFor(prometheus.Gatherers{others, probes}, promhttp.HandlerOpts{EnableOpenMetrics: true})},
		{"direct", m.Handler(others, nil, discard)},
	}
	for _, h := range handlers {
		for _, f := range []struct{ name, accept string }{
			{"text", "text/plain;version=0.0.4"},
			{"openmetrics", "application/openmetrics-text;version=1.0.0"},
			{"protobuf", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"},
		} {
			b.Run(h.name+"/"+f.name, func(b *testing.B) {
				req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				req.Header.Set("Accept", f.accept)
				b.ReportAllocs()
				var size int64
				for b.Loop() {
					w := &benchWriter{h: make(http.Header)}
					h.h.ServeHTTP(w, req)
					size = w.n
				}
				b.ReportMetric(float64(size), "bytes/scrape")
			})
		}
	}
}

// benchWriter is a ResponseWriter that counts the body.
type benchWriter struct {
	h http.Header
	n int64
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}
func (w *benchWriter) WriteHeader(int) {}

var _ io.Writer = (*benchWriter)(nil)

// BenchmarkOriginHeap reports the heap one origin's series keep, after one
// successful advanced probe: what a leaf's memory grows by per origin
// (without the status page's history and the scheduler's state).
func BenchmarkOriginHeap(b *testing.B) {
	const n = 1000
	var before, after runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		reg := benchLeafRegistry(n)
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(reg)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/origin")
}
