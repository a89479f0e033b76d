package prober

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
	"github.com/oxcross/oxcross/origin"
)

const testLeafID = "leaf-1"

// newTestScheduler returns a scheduler for the leaf testLeafID recording
// on reg, with at most maxConcurrency probes in flight (0 for the
// default), stopped at the end of the test.
func newTestScheduler(t testing.TB, reg prometheus.Registerer, maxConcurrency int) *Scheduler {
	t.Helper()
	s := NewScheduler(SchedulerOptions{
		Prober: newTestProber(), Metrics: NewMetrics(reg), LeafID: testLeafID,
		MaxConcurrency: maxConcurrency, Logger: discard,
	})
	t.Cleanup(s.Stop)
	return s
}

// origins returns a config with the built-in modules and targets as its
// origins, for Scheduler.Apply.
func origins(targets ...config.Target) *config.Config {
	cfg := DefaultKinds(discard).Base()
	cfg.Origins = targets
	return cfg
}

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

// target is an origin of the built-in module advanced.
func target(id, url string, interval time.Duration) config.Target {
	return config.Target{ID: id, URL: url, Module: "advanced", Interval: interval, Timeout: interval * 9 / 10}
}

// seriesOf returns the names of the metrics that have series of origin
// id, one name per series.
func seriesOf(t testing.TB, reg prometheus.Gatherer, id string) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labelOrigin && lp.GetValue() == id {
					out = append(out, mf.GetName())
				}
			}
		}
	}
	return out
}

// okCount returns the count of successful probes of id, or -1 without the
// series; the series must carry the leaf's id.
func okCount(t testing.TB, reg prometheus.Gatherer, id string) float64 {
	t.Helper()
	ms := testutil.MetricSeries(t, reg, "oxcross_leaf_probe_results", labelOrigin, id, labelResult, "true", labelReason, string(ReasonOK))
	switch len(ms) {
	case 0:
		return -1
	case 1:
	default:
		t.Fatalf("%d series of successful probes of %s, want 1", len(ms), id)
	}
	for _, lp := range ms[0].GetLabel() {
		if lp.GetName() == labelLeafID && lp.GetValue() != testLeafID {
			t.Errorf("source_id %q, want %q", lp.GetValue(), testLeafID)
		}
	}
	return ms[0].GetCounter().GetValue()
}

// scheduled returns how many origins s schedules.
func scheduled(s *Scheduler) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.origins)
}

// gauge returns the gauge name of origin id and whether it exists.
func gauge(t testing.TB, reg prometheus.Gatherer, name, id string) (float64, bool) {
	t.Helper()
	return testutil.LookupMetric(t, reg, name, labelOrigin, id)
}

func TestSchedulerProbesAndApply(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newTestScheduler(t, reg, 0)

	const interval = 100 * time.Millisecond
	oa, urlA := newCountingOrigin(t)
	ob, urlB := newCountingOrigin(t)
	a, b := target("a", urlA, interval), target("b", urlB, interval)

	start := time.Now()
	s.Apply(origins(a, b))
	if n := scheduled(s); n != 2 {
		t.Fatalf("scheduled %d origins, want 2", n)
	}
	testutil.Eventually(t, 5*time.Second, "both origins have 5 successful probes", func() bool {
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
		if n := len(testutil.MetricSeries(t, reg, "oxcross_leaf_probe_timings", labelOrigin, id)); n != 1 {
			t.Errorf("%s: %d timing histograms, want 1", id, n)
		}
	}

	// Re-applying the same targets changes nothing.
	s.Apply(origins(b, a))
	if n := scheduled(s); n != 2 {
		t.Fatalf("scheduled %d origins, want 2", n)
	}

	// Remove b: its series go, a keeps counting.
	s.Apply(origins(a))
	if n := scheduled(s); n != 1 {
		t.Fatalf("scheduled %d origins, want 1", n)
	}
	testutil.Eventually(t, 2*time.Second, "b's series are deleted", func() bool {
		return len(seriesOf(t, reg, "b")) == 0
	})
	bRequests := ob.requests.Load()
	before := okCount(t, reg, "a")
	testutil.Eventually(t, 3*time.Second, "a keeps being probed", func() bool {
		return okCount(t, reg, "a") >= before+3
	})
	if n := ob.requests.Load(); n > bRequests+1 {
		t.Errorf("b was probed %d times after its removal", n-bRequests)
	}
	if s := seriesOf(t, reg, "b"); len(s) != 0 {
		t.Errorf("b's series came back: %v", s)
	}

	// Change a's URL: a keeps its series and is probed at the new URL.
	oc, urlC := newCountingOrigin(t)
	a2 := a
	a2.URL = urlC
	before = okCount(t, reg, "a")
	s.Apply(origins(a2))
	testutil.Eventually(t, 3*time.Second, "a is probed at its new URL", func() bool {
		return oc.requests.Load() >= 3
	})
	aRequests := oa.requests.Load()
	testutil.Eventually(t, 3*time.Second, "a's count keeps growing", func() bool {
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
	s := newTestScheduler(t, reg, 0)
	_, url := newCountingOrigin(t)
	tg := target("later", url, time.Hour)
	// The phase puts the first probe somewhere in the hour; skip the rare
	// wall-clock moment where it is imminent.
	wait := SlotOffset(testLeafID+"/"+tg.ID, tg.Interval) - time.Duration(time.Now().UnixNano()%int64(tg.Interval))
	if wait < 0 {
		wait += tg.Interval
	}
	if wait < 5*time.Second {
		t.Skipf("first probe due in %v", wait)
	}
	s.Apply(origins(tg))
	testutil.Eventually(t, 2*time.Second, "the origin's result counters exist", func() bool {
		return okCount(t, reg, "later") == 0
	})
	for _, name := range []string{"oxcross_leaf_origin_status", "oxcross_leaf_probe_duration_seconds", "oxcross_leaf_origin_time_drift"} {
		if ms := testutil.MetricSeries(t, reg, name, labelOrigin, "later"); len(ms) != 0 {
			t.Errorf("%s before the first probe: %v", name, ms)
		}
	}
}

// TestSchedulerFailureSeries checks a failing origin's series: status 0,
// the failure counted under its reason, no drift.
func TestSchedulerFailureSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newTestScheduler(t, reg, 0)
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	s.Apply(origins(target("down", ts.URL+origin.Path, 50*time.Millisecond)))
	failures := func() float64 {
		return testutil.MetricSum(t, reg, "oxcross_leaf_probe_results", labelOrigin, "down", labelResult, "false", labelReason, string(ReasonHTTPStatus))
	}
	testutil.Eventually(t, 3*time.Second, "two http_status failures", func() bool { return failures() >= 2 })
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
	for _, m := range testutil.MetricSeries(t, reg, "oxcross_leaf_probe_results", labelOrigin, "down") {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labelReason {
				reasons[lp.GetValue()] = true
			}
		}
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
	s := newTestScheduler(t, reg, 0)

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
	var targets []config.Target
	paths := []string{"/a", "/b", "/c"}
	for _, p := range paths {
		targets = append(targets, config.Target{ID: strings.TrimPrefix(p, "/"), URL: ts.URL + p, Module: "simple", Interval: interval, Timeout: timeout})
	}
	s.Apply(origins(targets...))
	// Applying the same config again, as a config poll does (a config
	// parsed anew each time), must not start a second loop for any origin.
	for range 5 {
		time.Sleep(50 * time.Millisecond) // spreads the re-applies over probes in flight; not a wait
		s.Apply(origins(targets...))
	}
	testutil.Eventually(t, 5*time.Second, "every origin probed 4 times", func() bool {
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
	s := newTestScheduler(t, reg, 0)

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
	s.Apply(origins(tg))
	testutil.Eventually(t, 3*time.Second, "a first success", func() bool { return okCount(t, reg, "x") >= 1 })
	testutil.Eventually(t, 3*time.Second, "a probe in flight", func() bool { return busy.Load() > 0 })
	s.Apply(origins())
	s.Apply(origins(tg))
	testutil.Eventually(t, 3*time.Second, "the re-added origin's successes are exported", func() bool {
		return okCount(t, reg, "x") >= 2
	})
}

// TestSchedulerChangedThenRemoved changes an origin while its probe is in
// flight and removes it at once: its series must still go.
func TestSchedulerChangedThenRemoved(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newTestScheduler(t, reg, 0)

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
	s.Apply(origins(tg))
	testutil.Eventually(t, 3*time.Second, "a first success", func() bool { return okCount(t, reg, "y") >= 1 })
	testutil.Eventually(t, 3*time.Second, "a probe in flight", func() bool { return busy.Load() > 0 })
	tg2 := tg
	tg2.URL += "?changed=1"
	s.Apply(origins(tg2))
	s.Apply(origins())
	testutil.Eventually(t, 3*time.Second, "the removed origin's series are deleted", func() bool {
		return len(seriesOf(t, reg, "y")) == 0
	})
}

func TestSchedulerStop(t *testing.T) {
	// Deferred first, so it runs after the servers below have closed.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	reg := prometheus.NewRegistry()
	s := NewScheduler(SchedulerOptions{Prober: newTestProber(), Metrics: NewMetrics(reg), LeafID: testLeafID, Logger: discard})

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
	s.Apply(origins(a, slow))
	testutil.Eventually(t, 3*time.Second, "a probed twice and slow once", func() bool {
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
	s.Apply(origins(target("b", fast.URL+origin.Path, 50*time.Millisecond)))
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

// TestSchedulerConcurrencyLimit: with one probe slot and two origins whose
// probes together need more time than an interval has, at most one probe
// runs at a time, and the slots that cannot be served are skipped and
// counted rather than queued.
func TestSchedulerConcurrencyLimit(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newTestScheduler(t, reg, 1)

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
	// The handler counts what is in flight at the server; it has ended
	// before its answer is flushed, so a probe that gets its answer has
	// left the count before the next one starts. A probe that timed out
	// would not have: the server notices the closed connection late on a
	// busy machine. The timeout is long enough that none does.
	const interval, timeout = 200 * time.Millisecond, 5 * time.Second
	s.Apply(origins(
		config.Target{ID: "a", URL: ts.URL + "/a", Module: "simple", Interval: interval, Timeout: timeout},
		config.Target{ID: "b", URL: ts.URL + "/b", Module: "simple", Interval: interval, Timeout: timeout},
	))
	skipped := func() float64 {
		return testutil.MetricSum(t, reg, "oxcross_leaf_probe_skipped_total", labelLeafID, testLeafID)
	}
	testutil.Eventually(t, 10*time.Second, "skipped probes counted", func() bool { return skipped() >= 3 && total.Load() >= 6 })
	if p := peak.Load(); p != 1 {
		t.Errorf("%d probes in flight at once with --probe.max-concurrency=1", p)
	}
	// Every slot is either probed or skipped: none waits in a queue.
	ok := okCount(t, reg, "a") + okCount(t, reg, "b")
	t.Logf("probes %d (ok %v), skipped %v", total.Load(), ok, skipped())
}

// TestSchedulerModuleChange: an origin whose module's settings change in
// a new config is probed with the new settings, its series kept.
func TestSchedulerModuleChange(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newTestScheduler(t, reg, 0)
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	parser := DefaultKinds(discard).Parser(config.Limits{})
	parse := func(codes string) *config.Config {
		t.Helper()
		cfg, err := parser.Parse([]byte(`
interval: 50ms
modules:
  web:
    kind: http
    http: {valid_status_codes: [` + codes + `]}
origins:
  - {name: web, module: web, url: "` + ts.URL + `/"}
`))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	result := func(success, reason string) float64 {
		return testutil.MetricSum(t, reg, "oxcross_leaf_probe_results", labelOrigin, "web", labelResult, success, labelReason, reason)
	}
	s.Apply(parse("200"))
	testutil.Eventually(t, 5*time.Second, "an http_status failure with valid_status_codes [200]", func() bool {
		return result("false", string(ReasonHTTPStatus)) >= 1
	})
	s.Apply(parse("204"))
	testutil.Eventually(t, 5*time.Second, "a success with valid_status_codes [204]", func() bool {
		return result("true", string(ReasonOK)) >= 1
	})
	if v := result("false", string(ReasonHTTPStatus)); v < 1 {
		t.Errorf("the module change lost the origin's series: %v http_status failures", v)
	}
	if n := scheduled(s); n != 1 {
		t.Errorf("scheduled %d origins, want 1", n)
	}
}

// TestSchedulerGoroutinesBounded: 10,000 origins cost the scheduler one
// timer goroutine and at most --probe.max-concurrency probe workers, not a
// goroutine each; and none is left after Stop.
func TestSchedulerGoroutinesBounded(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var requests atomic.Int64
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	base := runtime.NumGoroutine()
	const n, maxConcurrency = 10_000, 8
	s := NewScheduler(SchedulerOptions{Prober: newTestProber(), Metrics: NewMetrics(prometheus.NewRegistry()), LeafID: testLeafID, MaxConcurrency: maxConcurrency, Logger: discard})
	targets := make([]config.Target, n)
	for i := range targets {
		// 10,000 origins every minute: about 170 probes a second.
		targets[i] = config.Target{ID: fmt.Sprintf("origin-%05d", i), URL: ts.URL + "/", Module: "simple", Interval: time.Minute, Timeout: 5 * time.Second}
	}
	s.Apply(origins(targets...))
	if got := scheduled(s); got != n {
		t.Fatalf("scheduled %d origins, want %d", got, n)
	}
	var peak int
	testutil.Eventually(t, 30*time.Second, "300 probes", func() bool {
		peak = max(peak, runtime.NumGoroutine())
		return requests.Load() >= 300
	})
	// Besides the timer goroutine and the workers, each probe in flight
	// may have a few goroutines of net/http's (the client connection's
	// reader and writer, the dialer's) and the test server's (one per
	// connection, which may linger a while after the probe on a busy
	// machine): a bound with room for those, and far below a goroutine
	// per origin.
	bound := base + 1 + maxConcurrency*6 + 150
	t.Logf("%d origins, %d probes: at most %d goroutines, %d before Apply (bound %d)", n, requests.Load(), peak, base, bound)
	if peak > bound {
		t.Errorf("%d goroutines with %d origins scheduled, %d before: want at most %d", peak, n, base, bound)
	}
	s.Stop()
	ts.Close()
}

// TestSchedulerRemovedWhileProbing: an origin removed while its probe is
// in flight has that probe canceled (it does not run to its timeout) and
// loses its series; another origin keeps being probed. An origin removed
// while its probe waits for a probe worker loses its series and is never
// probed again.
func TestSchedulerRemovedWhileProbing(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newTestScheduler(t, reg, 1)
	var (
		mu         sync.Mutex
		startedAt  time.Time
		canceledAt time.Time
		hung       atomic.Int32
		queuedHits atomic.Int64
	)
	hang := newServer(t, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		startedAt = time.Now()
		mu.Unlock()
		hung.Add(1)
		<-r.Context().Done()
		mu.Lock()
		canceledAt = time.Now()
		mu.Unlock()
	}))
	queued := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		queuedHits.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	const interval, timeout = 4 * time.Second, 3900 * time.Millisecond
	gone := config.Target{ID: "gone", URL: hang.URL + "/", Module: "simple", Interval: interval, Timeout: timeout}
	// With one probe worker, held by gone's probe, waiting's slots queue
	// or are skipped while gone's probe hangs.
	waiting := config.Target{ID: "waiting", URL: queued.URL + "/", Module: "simple", Interval: 100 * time.Millisecond, Timeout: 90 * time.Millisecond}
	s.Apply(origins(gone, waiting))
	testutil.Eventually(t, 3*interval, "gone's probe in flight", func() bool { return hung.Load() > 0 })
	testutil.Eventually(t, 3*time.Second, "waiting's slots skipped while gone's probe holds the worker", func() bool {
		return testutil.MetricSum(t, reg, "oxcross_leaf_probe_skipped_total", labelOrigin, "waiting") >= 1
	})
	s.Apply(origins())
	testutil.Eventually(t, timeout, "both origins' series deleted", func() bool {
		return len(seriesOf(t, reg, "gone")) == 0 && len(seriesOf(t, reg, "waiting")) == 0
	})
	testutil.Eventually(t, timeout, "gone's request canceled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return !canceledAt.IsZero()
	})
	mu.Lock()
	if d := canceledAt.Sub(startedAt); d >= timeout {
		t.Errorf("gone's probe ran %v, its whole timeout: not canceled by its removal", d)
	}
	mu.Unlock()
	// While another origin is probed twice, neither removed one is.
	hits := queuedHits.Load()
	other := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	s.Apply(origins(config.Target{ID: "other", URL: other.URL + "/", Module: "simple", Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond}))
	testutil.Eventually(t, 3*time.Second, "another origin probed after the removal", func() bool { return okCount(t, reg, "other") >= 2 })
	if m, h := len(seriesOf(t, reg, "waiting")), queuedHits.Load(); m != 0 || h != hits || hung.Load() != 1 {
		t.Errorf("after removal: %d series of waiting, %d probes of it, %d probes of gone", m, h-hits, hung.Load())
	}
}
