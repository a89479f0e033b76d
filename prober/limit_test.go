package prober

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oxcross/oxcross/discovery"
)

// TestSchedulerConcurrencyLimit: with one probe slot and two origins whose
// probes together need more time than an interval has, at most one probe
// runs at a time, and the slots that cannot be served are skipped and
// counted rather than queued.
func TestSchedulerConcurrencyLimit(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	s := NewSchedulerWithLimit(NewProber(testAgent), m, testSource, discard, 1)
	t.Cleanup(s.Stop)

	var now, peak, total atomic.Int64
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := now.Add(1)
		defer now.Add(-1)
		total.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-time.After(150 * time.Millisecond):
			_, _ = io.WriteString(w, "ok")
		case <-r.Context().Done():
		}
	}))
	const interval = 200 * time.Millisecond
	s.Apply([]discovery.Target{
		{ID: "a", URL: ts.URL + "/a", Mode: discovery.ModeSimple, Interval: interval, Timeout: 190 * time.Millisecond},
		{ID: "b", URL: ts.URL + "/b", Mode: discovery.ModeSimple, Interval: interval, Timeout: 190 * time.Millisecond},
	})
	skipped := func() float64 {
		return testutil.ToFloat64(m.skipped.WithLabelValues("a", testSource)) + testutil.ToFloat64(m.skipped.WithLabelValues("b", testSource))
	}
	eventually(t, 10*time.Second, "skipped probes counted", func() bool { return skipped() >= 3 && total.Load() >= 6 })
	if p := peak.Load(); p != 1 {
		t.Errorf("%d probes in flight at once with --probe.max-concurrency=1", p)
	}
	// Every slot is either probed or skipped: none waits in a queue.
	ok := okCount(t, reg, "a") + okCount(t, reg, "b")
	t.Logf("probes %d (ok %v), skipped %v", total.Load(), ok, skipped())
}
