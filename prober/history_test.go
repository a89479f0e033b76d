package prober

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
	"github.com/oxcross/oxcross/origin"
)

// TestHistoryStatuses: Statuses joins the config's origins, in id order,
// with what was recorded of them: an origin not yet probed is there
// unprobed, one no longer in the config is not, and the last hour's
// minutes count successes and failures, with the mean and maximum of the
// successes' durations. The status page never shows error text.
func TestHistoryStatuses(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 30, 15, 0, time.UTC)
	h := NewHistory()
	h.now = func() time.Time { return now }
	if s := h.Statuses(nil); s != nil {
		t.Errorf("Statuses(nil) = %v, want nil", s)
	}

	for _, id := range []string{"b", "a", "gone"} {
		h.track(id)
	}
	h.record("a", Result{Success: true, Reason: ReasonOK, Duration: 100 * time.Millisecond})
	h.record("a", Result{Success: true, Reason: ReasonOK, Duration: 300 * time.Millisecond})
	h.record("a", Result{Reason: ReasonTimeout, Err: errors.New("secret detail")})
	h.record("gone", Result{Success: true, Reason: ReasonOK})
	h.forget("gone")
	h.record("gone", Result{Success: true, Reason: ReasonOK}) // after forget: dropped
	h.record("untracked", Result{Success: true, Reason: ReasonOK})

	cfg := origins(
		config.Target{ID: "c", URL: "http://c.example/", Module: "simple"},
		config.Target{ID: "a", URL: "http://a.example/", Module: "simple"},
		config.Target{ID: "b", URL: "http://b.example/", Module: "simple"},
	)
	got := h.Statuses(cfg)
	if len(got) != 3 || got[0].Target.ID != "a" || got[1].Target.ID != "b" || got[2].Target.ID != "c" {
		t.Fatalf("Statuses = %+v, want a, b and c", got)
	}
	if got[0].Target != &cfg.Origins[1] {
		t.Error("a status's target is not the config's")
	}
	a := got[0]
	if !a.Probed || a.Last.Reason != ReasonTimeout || a.Last.Err != nil || !a.LastAt.Equal(now) {
		t.Errorf("a: probed %v, last %q (err %v) at %v; want the timeout without its error at %v", a.Probed, a.Last.Reason, a.Last.Err, a.LastAt, now)
	}
	for _, s := range got {
		if len(s.Points) != HistoryMinutes {
			t.Fatalf("%s: %d points, want %d", s.Target.ID, len(s.Points), HistoryMinutes)
		}
		if last := s.Points[HistoryMinutes-1].Minute; !last.Equal(now.Truncate(time.Minute)) {
			t.Errorf("%s: last point at %v, want the current minute %v", s.Target.ID, last, now.Truncate(time.Minute))
		}
	}
	p := a.Points[HistoryMinutes-1]
	if p.Successes != 2 || p.Failures != 1 || abs(time.Duration(p.Mean*float64(time.Second))-200*time.Millisecond) > time.Millisecond ||
		abs(time.Duration(p.Max*float64(time.Second))-300*time.Millisecond) > time.Millisecond {
		t.Errorf("a's current minute: %+v, want 2 successes (mean 0.2s, max 0.3s) and 1 failure", p)
	}
	for _, s := range got[1:] {
		if s.Probed || s.Points[HistoryMinutes-1].Successes != 0 {
			t.Errorf("%s: probed %v, current minute %+v; want nothing recorded", s.Target.ID, s.Probed, s.Points[HistoryMinutes-1])
		}
	}

	// An hour later, a's minutes have gone out of the window.
	now = now.Add(HistoryMinutes * time.Minute)
	for _, p := range h.Statuses(cfg)[0].Points {
		if p.Successes != 0 || p.Failures != 0 {
			t.Errorf("an hour later, minute %v still counts %+v", p.Minute, p)
		}
	}
}

// TestSchedulerHistory: a scheduler with a History records every probe of
// its origins there, and forgets an origin it stops probing.
func TestSchedulerHistory(t *testing.T) {
	h := NewHistory()
	s := NewScheduler(SchedulerOptions{
		Prober: newTestProber(), Metrics: NewMetrics(prometheus.NewRegistry()), LeafID: testLeafID, History: h, Logger: discard,
	})
	t.Cleanup(s.Stop)
	up := newOriginServer(t, origin.Options{})
	down := newServer(t, http.NotFoundHandler())
	cfg := origins(target("up", up.URL+origin.Path, 50*time.Millisecond), target("down", down.URL+origin.Path, 50*time.Millisecond))
	s.Apply(cfg)
	testutil.EventuallyReason(t, 5*time.Second, "both origins' results in the history", func() string {
		st := h.Statuses(cfg)
		if !st[0].Probed || !st[1].Probed {
			return "not probed yet"
		}
		if st[0].Last.Reason != ReasonHTTPStatus || !st[1].Last.Success {
			return "down: " + string(st[0].Last.Reason) + ", up: " + string(st[1].Last.Reason)
		}
		return ""
	})
	s.Apply(origins(cfg.Origins[0]))
	testutil.Eventually(t, 5*time.Second, "the removed origin forgotten", func() bool {
		return !h.Statuses(cfg)[0].Probed
	})
}

// TestHistoryRing: minutes without probes between two that have them
// are empty, the older minute is kept while within the hour, and a clock
// that goes back within the hour adds to the minute it names.
func TestHistoryRing(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC)
	now := start
	h := NewHistory()
	h.now = func() time.Time { return now }
	h.track("a")
	cfg := origins(config.Target{ID: "a", URL: "http://a.example/", Module: "simple"})
	ok := Result{Success: true, Reason: ReasonOK, Duration: time.Second}
	h.record("a", ok)
	now = start.Add(3 * time.Minute)
	h.record("a", Result{Reason: ReasonTimeout})
	now = start.Add(time.Minute) // back two minutes
	h.record("a", ok)
	now = start.Add(3 * time.Minute)
	pts := h.Statuses(cfg)[0].Points
	want := map[int][2]int{HistoryMinutes - 4: {1, 0}, HistoryMinutes - 3: {1, 0}, HistoryMinutes - 1: {0, 1}}
	for i, p := range pts {
		if w := want[i]; p.Successes != w[0] || p.Failures != w[1] {
			t.Errorf("minute %v: %d successes, %d failures; want %d, %d", p.Minute, p.Successes, p.Failures, w[0], w[1])
		}
	}
	// Two hours back: older than the ring, dropped.
	now = start.Add(-2 * time.Hour)
	h.record("a", ok)
	now = start.Add(3 * time.Minute)
	if got := h.Statuses(cfg)[0].Points[HistoryMinutes-4].Successes; got != 1 {
		t.Errorf("a probe two hours back changed a minute in the window: %d successes", got)
	}
}
