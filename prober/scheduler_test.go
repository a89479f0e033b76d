package prober

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/origin"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

const testSource = "leaf-1"

var discard = slog.New(slog.DiscardHandler)

// countingOrigin is a real origin handler that counts its requests.
type countingOrigin struct {
	h        http.Handler
	requests atomic.Int64
}

func newCountingOrigin(t testing.TB) (*countingOrigin, string) {
	t.Helper()
	h, err := origin.NewHandler(origin.Options{})
	if err != nil {
		t.Fatal(err)
	}
	co := &countingOrigin{h: h}
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		co.requests.Add(1)
		co.h.ServeHTTP(w, r)
	}))
	return co, ts.URL + origin.Path
}

func target(id, url string, interval time.Duration) discovery.Target {
	return discovery.Target{ID: id, URL: url, Mode: discovery.ModeAdvanced, Interval: interval, Timeout: interval * 9 / 10}
}

// series returns the gathered series of origin id, by metric name.
func series(t testing.TB, reg *prometheus.Registry, id string) map[string][]*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]*dto.Metric)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if labels(m)[labelOrigin] == id {
				out[mf.GetName()] = append(out[mf.GetName()], m)
			}
		}
	}
	return out
}

func labels(m *dto.Metric) map[string]string {
	l := make(map[string]string, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		l[lp.GetName()] = lp.GetValue()
	}
	return l
}

// okCount returns the count of successful probes of id, or -1 without the
// series.
func okCount(t testing.TB, reg *prometheus.Registry, id string) float64 {
	t.Helper()
	for _, m := range series(t, reg, id)["oxcross_leaf_probe_results"] {
		l := labels(m)
		if l[labelResult] == "true" && l[labelReason] == string(ReasonOK) {
			if l[labelSource] != testSource {
				t.Errorf("source_id %q, want %q", l[labelSource], testSource)
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

func gauge(t testing.TB, reg *prometheus.Registry, name, id string) (float64, bool) {
	t.Helper()
	ms := series(t, reg, id)[name]
	if len(ms) != 1 {
		return 0, false
	}
	return ms[0].GetGauge().GetValue(), true
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSchedulerProbesAndApply(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewScheduler(NewProber(testAgent), NewMetrics(reg), testSource, discard)
	t.Cleanup(s.Stop)

	const interval = 100 * time.Millisecond
	oa, urlA := newCountingOrigin(t)
	ob, urlB := newCountingOrigin(t)
	a, b := target("a", urlA, interval), target("b", urlB, interval)

	start := time.Now()
	s.Apply([]discovery.Target{a, b})
	if n := s.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
	eventually(t, 5*time.Second, "both origins have 5 successful probes", func() bool {
		return okCount(t, reg, "a") >= 5 && okCount(t, reg, "b") >= 5
	})
	// Probes keep to the interval: no more than one per interval, plus
	// one for the phase and one for slack.
	limit := float64(time.Since(start)/interval) + 2
	for _, id := range []string{"a", "b"} {
		if n := okCount(t, reg, id); n > limit {
			t.Errorf("%s: %v probes, want at most %v", id, n, limit)
		}
		if v, ok := gauge(t, reg, "oxcross_leaf_origin_status", id); !ok || v != 1 {
			t.Errorf("%s: status %v (present %v), want 1", id, v, ok)
		}
		if v, ok := gauge(t, reg, "oxcross_leaf_origin_time_drift", id); !ok || v > 0.05 || v < -0.05 {
			t.Errorf("%s: drift %v (present %v), want |drift| < 50ms", id, v, ok)
		}
		if _, ok := gauge(t, reg, "oxcross_leaf_origin_time_drift_uncertainty_seconds", id); !ok {
			t.Errorf("%s: no drift uncertainty", id)
		}
		if n := len(series(t, reg, id)["oxcross_leaf_probe_timings"]); n != 1 {
			t.Errorf("%s: %d timing histograms, want 1", id, n)
		}
	}

	// Re-applying the same targets changes nothing.
	s.Apply([]discovery.Target{b, a})
	if n := s.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}

	// Remove b: its series go, a keeps counting.
	s.Apply([]discovery.Target{a})
	if n := s.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1", n)
	}
	eventually(t, 2*time.Second, "b's series are deleted", func() bool {
		return len(series(t, reg, "b")) == 0
	})
	bRequests := ob.requests.Load()
	before := okCount(t, reg, "a")
	eventually(t, 3*time.Second, "a keeps being probed", func() bool {
		return okCount(t, reg, "a") >= before+3
	})
	if n := ob.requests.Load(); n > bRequests+1 {
		t.Errorf("b was probed %d times after its removal", n-bRequests)
	}
	if len(series(t, reg, "b")) != 0 {
		t.Errorf("b's series came back: %v", series(t, reg, "b"))
	}

	// Change a's URL: a keeps its series and is probed at the new URL.
	oc, urlC := newCountingOrigin(t)
	a2 := a
	a2.URL = urlC
	before = okCount(t, reg, "a")
	s.Apply([]discovery.Target{a2})
	eventually(t, 3*time.Second, "a is probed at its new URL", func() bool {
		return oc.requests.Load() >= 3
	})
	aRequests := oa.requests.Load()
	eventually(t, 3*time.Second, "a's count keeps growing", func() bool {
		return okCount(t, reg, "a") >= before+3
	})
	if n := oa.requests.Load(); n != aRequests {
		t.Errorf("a's old URL got %d probes after the change", n-aRequests)
	}
}

// TestSchedulerNoStatusBeforeFirstProbe checks that an origin not yet
// probed has no status, rather than a status of 0 that would look down.
func TestSchedulerNoStatusBeforeFirstProbe(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewScheduler(NewProber(testAgent), NewMetrics(reg), testSource, discard)
	t.Cleanup(s.Stop)
	_, url := newCountingOrigin(t)
	tg := target("later", url, time.Hour)
	// The phase puts the first probe somewhere in the hour; skip the rare
	// wall-clock moment where it is imminent.
	wait := SlotOffset(testSource+"/"+tg.ID, tg.Interval) - time.Duration(time.Now().UnixNano()%int64(tg.Interval))
	if wait < 0 {
		wait += tg.Interval
	}
	if wait < 5*time.Second {
		t.Skipf("first probe due in %v", wait)
	}
	s.Apply([]discovery.Target{tg})
	eventually(t, 2*time.Second, "the origin's result counters exist", func() bool {
		return okCount(t, reg, "later") == 0
	})
	for _, name := range []string{"oxcross_leaf_origin_status", "oxcross_leaf_probe_duration_seconds", "oxcross_leaf_origin_time_drift"} {
		if ms := series(t, reg, "later")[name]; len(ms) != 0 {
			t.Errorf("%s before the first probe: %v", name, ms)
		}
	}
}

// TestSchedulerFailureSeries checks a failing origin's series: status 0,
// the failure counted under its reason, no drift.
func TestSchedulerFailureSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewScheduler(NewProber(testAgent), NewMetrics(reg), testSource, discard)
	t.Cleanup(s.Stop)
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	s.Apply([]discovery.Target{target("down", ts.URL+origin.Path, 50*time.Millisecond)})
	failures := func() float64 {
		for _, m := range series(t, reg, "down")["oxcross_leaf_probe_results"] {
			if l := labels(m); l[labelResult] == "false" && l[labelReason] == string(ReasonHTTPStatus) {
				return m.GetCounter().GetValue()
			}
		}
		return 0
	}
	eventually(t, 3*time.Second, "two http_status failures", func() bool { return failures() >= 2 })
	if v, ok := gauge(t, reg, "oxcross_leaf_origin_status", "down"); !ok || v != 0 {
		t.Errorf("status %v (present %v), want 0", v, ok)
	}
	if _, ok := gauge(t, reg, "oxcross_leaf_origin_time_drift", "down"); ok {
		t.Error("failing origin has a drift")
	}
	if n := okCount(t, reg, "down"); n != 0 {
		t.Errorf("ok count %v, want 0", n)
	}
	// Every reason's counter exists from the start, at zero unless counted.
	reasons := map[string]bool{}
	for _, m := range series(t, reg, "down")["oxcross_leaf_probe_results"] {
		reasons[labels(m)[labelReason]] = true
	}
	for _, r := range failureReasons {
		if !reasons[string(r)] {
			t.Errorf("no counter for reason %q", r)
		}
	}
}

// inflight tracks concurrent requests per path.
type inflight struct {
	mu       sync.Mutex
	now, max map[string]int
	total    map[string]int
}

func (f *inflight) enter(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now[path]++
	f.total[path]++
	f.max[path] = max(f.max[path], f.now[path])
}

func (f *inflight) leave(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now[path]--
}

func (f *inflight) get(path string) (maxInFlight, total int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.max[path], f.total[path]
}

func TestSchedulerOneProbeInFlight(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewScheduler(NewProber(testAgent), NewMetrics(reg), testSource, discard)
	t.Cleanup(s.Stop)

	// The handler takes most of the timeout, which is most of the interval.
	const (
		interval = 300 * time.Millisecond
		timeout  = 250 * time.Millisecond
		work     = 200 * time.Millisecond
	)
	f := &inflight{now: map[string]int{}, max: map[string]int{}, total: map[string]int{}}
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.enter(r.URL.Path)
		defer f.leave(r.URL.Path)
		select {
		case <-time.After(work):
			_, _ = io.WriteString(w, "ok")
		case <-r.Context().Done():
		}
	}))
	var targets []discovery.Target
	paths := []string{"/a", "/b", "/c"}
	for _, p := range paths {
		targets = append(targets, discovery.Target{ID: strings.TrimPrefix(p, "/"), URL: ts.URL + p, Mode: discovery.ModeSimple, Interval: interval, Timeout: timeout})
	}
	s.Apply(targets)
	// Applying the same config again, as a config poll does, must not
	// start a second loop for any origin.
	for range 5 {
		time.Sleep(50 * time.Millisecond) // spreads the re-applies over probes in flight; not a wait
		s.Apply(targets)
	}
	eventually(t, 5*time.Second, "every origin probed 4 times", func() bool {
		for _, p := range paths {
			if _, n := f.get(p); n < 4 {
				return false
			}
		}
		return true
	})
	for _, p := range paths {
		if m, n := f.get(p); m != 1 {
			t.Errorf("%s: up to %d probes in flight (of %d), want 1", p, m, n)
		}
	}
}

// TestSchedulerReaddedOrigin removes an origin while its probe is in flight
// and adds it back at once: the removal must not delete the series of the
// origin's new loop.
func TestSchedulerReaddedOrigin(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewScheduler(NewProber(testAgent), NewMetrics(reg), testSource, discard)
	t.Cleanup(s.Stop)

	var busy atomic.Int32
	h, err := origin.NewHandler(origin.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		busy.Add(1)
		defer busy.Add(-1)
		select {
		case <-time.After(100 * time.Millisecond):
			h.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	}))
	tg := target("x", ts.URL+origin.Path, 150*time.Millisecond)
	tg.Timeout = 140 * time.Millisecond
	s.Apply([]discovery.Target{tg})
	eventually(t, 3*time.Second, "a first success", func() bool { return okCount(t, reg, "x") >= 1 })
	eventually(t, 3*time.Second, "a probe in flight", func() bool { return busy.Load() > 0 })
	s.Apply(nil)
	s.Apply([]discovery.Target{tg})
	eventually(t, 3*time.Second, "the re-added origin's successes are exported", func() bool {
		return okCount(t, reg, "x") >= 2
	})
}

// TestSchedulerChangedThenRemoved changes an origin while its probe is in
// flight and removes it at once: its series must still go.
func TestSchedulerChangedThenRemoved(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewScheduler(NewProber(testAgent), NewMetrics(reg), testSource, discard)
	t.Cleanup(s.Stop)

	var busy atomic.Int32
	h, err := origin.NewHandler(origin.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		busy.Add(1)
		defer busy.Add(-1)
		select {
		case <-time.After(100 * time.Millisecond):
			h.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	}))
	tg := target("y", ts.URL+origin.Path, 150*time.Millisecond)
	tg.Timeout = 140 * time.Millisecond
	s.Apply([]discovery.Target{tg})
	eventually(t, 3*time.Second, "a first success", func() bool { return okCount(t, reg, "y") >= 1 })
	eventually(t, 3*time.Second, "a probe in flight", func() bool { return busy.Load() > 0 })
	tg2 := tg
	tg2.URL += "?changed=1"
	s.Apply([]discovery.Target{tg2})
	s.Apply(nil)
	eventually(t, 3*time.Second, "the removed origin's series are deleted", func() bool {
		return len(series(t, reg, "y")) == 0
	})
}

func TestSchedulerStop(t *testing.T) {
	// Deferred first, so it runs after the servers below have closed.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	reg := prometheus.NewRegistry()
	s := NewScheduler(NewProber(testAgent), NewMetrics(reg), testSource, discard)

	h, err := origin.NewHandler(origin.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	defer fast.Close()
	// hang holds its probes until the client gives up.
	var hung atomic.Int32
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		<-r.Context().Done()
	}))
	defer hang.Close()

	a := target("a", fast.URL+origin.Path, 50*time.Millisecond)
	// hung's probe never ends before its timeout; with a 200ms interval
	// one is in flight most of the time.
	slow := target("slow", hang.URL+origin.Path, 200*time.Millisecond)
	slow.Timeout = 200 * time.Millisecond
	s.Apply([]discovery.Target{a, slow})
	eventually(t, 3*time.Second, "a probed twice and slow once", func() bool {
		return okCount(t, reg, "a") >= 2 && hung.Load() >= 1
	})

	done := make(chan struct{})
	start := time.Now()
	go func() {
		s.Stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return within 5s")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Stop took %v", d)
	}
	s.Stop() // idempotent

	// After Stop, nothing probes, and Apply starts nothing.
	s.Apply([]discovery.Target{target("b", fast.URL+origin.Path, 50*time.Millisecond)})
	n := requests.Load()
	// The assertion is that nothing happens: there is no condition to
	// wait for, only a window (four of b's intervals) in which to see none.
	time.Sleep(200 * time.Millisecond)
	if m := requests.Load(); m != n {
		t.Errorf("%d probes after Stop", m-n)
	}
	if okCount(t, reg, "b") != -1 {
		t.Error("Apply after Stop started a probe loop")
	}
	// Stop keeps the series: the leaf is shutting down, not unconfigured.
	if okCount(t, reg, "a") < 2 {
		t.Error("Stop deleted a's series")
	}
}

func TestSlotOffset(t *testing.T) {
	t.Parallel()
	for _, interval := range []time.Duration{time.Millisecond, 100 * time.Millisecond, 30 * time.Second, time.Hour} {
		seen := make(map[time.Duration]string)
		for i := range 200 {
			key := fmt.Sprintf("leaf-%d/origin-%d", i%7, i)
			p := SlotOffset(key, interval)
			if p < 0 || p >= interval {
				t.Fatalf("SlotOffset(%q, %v) = %v, want in [0, %v)", key, interval, p, interval)
			}
			if p != SlotOffset(key, interval) {
				t.Fatalf("SlotOffset(%q, %v) is not stable", key, interval)
			}
			if interval >= 100*time.Millisecond {
				if other, dup := seen[p]; dup {
					t.Errorf("SlotOffset(%q) = SlotOffset(%q) = %v", key, other, p)
				}
			}
			seen[p] = key
		}
	}
	// The leaf's id is part of the key: two leaves probe one origin at
	// different phases.
	if a, b := SlotOffset("leaf-1/origin", time.Minute), SlotOffset("leaf-2/origin", time.Minute); a == b {
		t.Errorf("two leaves share the phase %v", a)
	}
}
