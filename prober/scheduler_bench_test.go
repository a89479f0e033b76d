package prober

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
)

// countKind is a probe kind that returns at once with a full result and
// counts its probes.
type countKind struct {
	r Result
	n *atomic.Int64
}

func (countKind) Spec() config.Kind {
	return config.Kind{Name: "bench", Builtin: "bench", Target: config.TargetURL}
}

func (k countKind) Probe(_ context.Context, _ *Params, r *Result) {
	k.n.Add(1)
	*r = k.r
}

// BenchmarkSchedulerOriginHeap reports what a leaf keeps per scheduled
// origin once every origin has been probed once: heap (scheduler, series,
// status page history) and goroutine stacks, and the goroutines it runs.
// The probes return at once, so this is the scheduler's and the
// bookkeeping's share, without the network's.
func BenchmarkSchedulerOriginHeap(b *testing.B) {
	const n = 5000
	const interval = 2 * time.Second
	res := benchResult()
	res.Drift = nil
	var probes atomic.Int64
	kinds, err := NewKinds(countKind{res, &probes})
	if err != nil {
		b.Fatal(err)
	}
	cfg := kinds.Base()
	for i := range n {
		cfg.Origins = append(cfg.Origins, config.Target{
			ID: fmt.Sprintf("bench-%05d", i), URL: fmt.Sprintf("http://origin-%d.example/", i%4),
			Module: "bench", Interval: interval, Timeout: time.Second,
		})
	}
	var before, after runtime.MemStats
	var goroutines int
	for b.Loop() {
		probes.Store(0)
		runtime.GC()
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		s := NewScheduler(SchedulerOptions{
			Prober: NewProber("bench", kinds), Metrics: NewMetrics(prometheus.NewRegistry()),
			LeafID: "leaf-bench-1", History: NewHistory(), Logger: discard,
		})
		s.Apply(cfg)
		testutil.EventuallyReason(b, 3*interval, "every origin probed once", func() string {
			if p := probes.Load(); p < n {
				return fmt.Sprintf("%d probes of %d origins", p, n)
			}
			return ""
		})
		goroutines = runtime.NumGoroutine() - g0
		runtime.GC()
		runtime.ReadMemStats(&after)
		s.Stop()
		runtime.KeepAlive(s)
	}
	heap := float64(int64(after.HeapAlloc) - int64(before.HeapAlloc))
	stack := float64(int64(after.StackInuse) - int64(before.StackInuse))
	b.ReportMetric(heap/n, "heap-bytes/origin")
	b.ReportMetric(stack/n, "stack-bytes/origin")
	b.ReportMetric((heap+stack)/n, "bytes/origin")
	b.ReportMetric(float64(goroutines), "goroutines")
}
