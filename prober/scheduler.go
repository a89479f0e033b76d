package prober

import (
	"context"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oxcross/oxcross/discovery"
)

// Scheduler probes every origin of the current config once per interval,
// each origin at its own phase within the interval so that probes spread
// out rather than start together, and never more than one probe in flight
// per origin.
type Scheduler struct {
	prober  *Prober
	metrics *Metrics
	source  string
	logger  *slog.Logger

	mu      sync.Mutex
	runners map[string]*runner
	// stopping holds the loops of removed origins until they end, so that
	// an origin added back waits for its old loop to delete its series.
	stopping map[string]*runner
	wg       sync.WaitGroup
	ctx      context.Context
	cancel   context.CancelFunc
}

// NewScheduler returns a scheduler that records results for the leaf
// source (the source_id label).
func NewScheduler(p *Prober, m *Metrics, source string, logger *slog.Logger) *Scheduler {
	ctx, cancel := context.WithCancel(context.Background())
	return &Scheduler{prober: p, metrics: m, source: source, logger: logger, runners: make(map[string]*runner), stopping: make(map[string]*runner), ctx: ctx, cancel: cancel}
}

type runner struct {
	target  discovery.Target
	cancel  context.CancelFunc
	done    chan struct{}
	removed atomic.Bool
}

// Apply makes targets the set of probed origins: new origins start, removed
// ones stop and lose their series, changed ones restart with their series
// kept. Unchanged origins keep their schedule.
func (s *Scheduler) Apply(targets []discovery.Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return
	}
	for id, r := range s.stopping {
		select {
		case <-r.done:
			delete(s.stopping, id)
		default:
		}
	}
	want := make(map[string]discovery.Target, len(targets))
	for _, t := range targets {
		want[t.ID] = t
	}
	for id, r := range s.runners {
		if t, ok := want[id]; !ok {
			r.removed.Store(true)
			r.cancel()
			delete(s.runners, id)
			s.stopping[id] = r
		} else if !sameTarget(t, r.target) {
			r.cancel()
			s.runners[id] = s.start(t, r.done)
		}
	}
	for _, t := range targets {
		if _, ok := s.runners[t.ID]; !ok {
			var prev <-chan struct{}
			if r, ok := s.stopping[t.ID]; ok {
				prev = r.done
				delete(s.stopping, t.ID)
			}
			s.runners[t.ID] = s.start(t, prev)
		}
	}
}

func sameTarget(a, b discovery.Target) bool {
	return a.URL == b.URL && a.Mode == b.Mode && a.Interval == b.Interval && a.Timeout == b.Timeout
}

// Stop stops every probe and waits until in-flight probes have ended.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	s.cancel()
	s.mu.Unlock()
	s.wg.Wait()
}

// Len reports how many origins are scheduled.
func (s *Scheduler) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.runners)
}

// start runs t's probe loop; when prev is set, the loop waits for the
// origin's previous loop to end first.
func (s *Scheduler) start(t discovery.Target, prev <-chan struct{}) *runner {
	ctx, cancel := context.WithCancel(s.ctx)
	r := &runner{target: t, cancel: cancel, done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(r.done)
		if prev != nil {
			// The previous loop is canceled already and ends when its
			// probe does; wait for it even if this one is canceled too, so
			// that the last loop to end decides whether the series stay.
			<-prev
		}
		s.run(ctx, r)
	}()
	return r
}

// Phase returns the offset within the interval for key: a hash, so that
// origins spread across the interval and keep their phase across restarts.
func Phase(key string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return time.Duration(h.Sum64() % uint64(interval))
}

func (s *Scheduler) run(ctx context.Context, r *runner) {
	t := r.target
	om := s.metrics.forOrigin(t.ID, s.source)
	defer func() {
		if r.removed.Load() {
			om.delete()
		}
	}()
	st := &originState{}
	// Wait for this origin's phase in the interval, counted from the
	// interval's wall-clock boundary. The phase hashes the leaf's id too, so
	// that the leaves of a fleet do not all hit an origin at once.
	now := time.Now()
	wait := Phase(s.source+"/"+t.ID, t.Interval) - time.Duration(now.UnixNano()%int64(t.Interval))
	if wait < 0 {
		wait += t.Interval
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return
	case <-timer.C:
	}
	ticker := time.NewTicker(t.Interval)
	defer ticker.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, t.Timeout)
		res := s.prober.Probe(pctx, t, st)
		cancel()
		if ctx.Err() != nil {
			// Stopped or replaced mid-probe: the result measures nothing.
			return
		}
		om.record(res)
		if !res.Success {
			s.logger.Debug("probe failed", "origin_id", t.ID, "url", t.URL, "reason", res.Reason, "err", res.Err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
