package prober

import (
	"context"
	"hash/fnv"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oxcross/oxcross/config"
)

// Scheduler probes every origin of the current config once per interval,
// each origin at its own phase within the interval so that probes spread
// out rather than start together, and never more than one probe in flight
// per origin.
type Scheduler struct {
	prober  *Prober
	metrics *Metrics
	leafID  string
	logger  *slog.Logger
	// sem bounds the probes in flight across all origins.
	sem chan struct{}
	// jobs hands probes to idle probe workers.
	jobs chan probeJob
	// history, when set, keeps results for the status page.
	history *History

	mu      sync.Mutex
	runners map[string]*runner
	// stopping holds the loops of removed origins until they end, so that
	// an origin added back waits for its old loop to delete its series.
	stopping map[string]*runner
	wg       sync.WaitGroup
	ctx      context.Context
	cancel   context.CancelFunc
}

// DefaultMaxConcurrency is the default bound on probes in flight.
const DefaultMaxConcurrency = 256

// SchedulerOptions configure a Scheduler.
type SchedulerOptions struct {
	// Prober probes; Metrics records. Required.
	Prober  *Prober
	Metrics *Metrics
	// LeafID is the leaf's id, the source_id label of its metrics.
	LeafID string
	// MaxConcurrency bounds the probes in flight across all origins; 0
	// means DefaultMaxConcurrency.
	MaxConcurrency int
	// History, when set, keeps every result for the status page too.
	History *History
	Logger  *slog.Logger
}

// NewScheduler returns a scheduler with nothing to probe until Apply.
func NewScheduler(o SchedulerOptions) *Scheduler {
	if o.MaxConcurrency <= 0 {
		o.MaxConcurrency = DefaultMaxConcurrency
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Scheduler{
		prober: o.Prober, metrics: o.Metrics, leafID: o.LeafID, logger: o.Logger, history: o.History,
		sem:     make(chan struct{}, o.MaxConcurrency),
		jobs:    make(chan probeJob),
		runners: make(map[string]*runner), stopping: make(map[string]*runner),
		ctx: ctx, cancel: cancel,
	}
}

// runner is one origin's probe loop. target points into the config in
// use (Apply moves it to each new one, so that old configs are not kept
// alive); the loop probes the copy it took at its start.
type runner struct {
	target *config.Target
	module config.Module
	// result carries its probes' results back from the workers.
	result  chan Result
	cancel  context.CancelFunc
	done    chan struct{}
	removed atomic.Bool
}

// Apply makes cfg's origins the set of probed origins, each probed with
// its module: new origins start, removed ones stop and lose their series,
// changed ones (target or module settings) restart with their series kept.
// Unchanged origins keep their schedule.
func (s *Scheduler) Apply(cfg *config.Config) {
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
	want := make(map[string]*config.Target, len(cfg.Origins))
	for i := range cfg.Origins {
		want[cfg.Origins[i].ID] = &cfg.Origins[i]
	}
	for id, r := range s.runners {
		t, ok := want[id]
		switch {
		case !ok:
			r.removed.Store(true)
			r.cancel()
			delete(s.runners, id)
			s.stopping[id] = r
		case !sameTarget(t, r.target) || !reflect.DeepEqual(cfg.Modules[t.Module], r.module):
			r.cancel()
			s.runners[id] = s.start(t, cfg.Modules[t.Module], r.done)
		default:
			r.target = t // the same, from the config now in use
		}
	}
	for i := range cfg.Origins {
		t := &cfg.Origins[i]
		if _, ok := s.runners[t.ID]; !ok {
			var prev <-chan struct{}
			if r, ok := s.stopping[t.ID]; ok {
				prev = r.done
				delete(s.stopping, t.ID)
			}
			s.runners[t.ID] = s.start(t, cfg.Modules[t.Module], prev)
		}
	}
}

func sameTarget(a, b *config.Target) bool {
	return a.URL == b.URL && a.Address == b.Address && a.Module == b.Module && a.Interval == b.Interval && a.Timeout == b.Timeout
}

// Stop stops every probe and waits until in-flight probes have ended.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	s.cancel()
	s.mu.Unlock()
	s.wg.Wait()
}

// start runs t's probe loop; when prev is set, the loop waits for the
// origin's previous loop to end first.
func (s *Scheduler) start(t *config.Target, m config.Module, prev <-chan struct{}) *runner {
	ctx, cancel := context.WithCancel(s.ctx)
	r := &runner{target: t, module: m, cancel: cancel, done: make(chan struct{}), result: make(chan Result, 1)}
	probed := *t
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
		s.run(ctx, r, probed)
	}()
	return r
}

// SlotOffset returns the offset within the interval for key: a hash, so
// that origins spread across the interval and keep their slot across
// restarts.
func SlotOffset(key string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return time.Duration(h.Sum64() % uint64(interval))
}

// run probes r's origin at its slot in every interval. A probe that cannot
// start before its next slot (all probe slots busy) or that still runs at
// its next slot costs the slots it overlaps: they are skipped and counted,
// never queued.
func (s *Scheduler) run(ctx context.Context, r *runner, t config.Target) {
	om := s.metrics.forOrigin(t.ID, s.leafID)
	s.history.track(t.ID)
	defer func() {
		if r.removed.Load() {
			om.delete()
			s.history.forget(t.ID)
		}
	}()
	st := s.prober.newState(&r.module)
	// The first slot: this origin's offset in the interval, counted from
	// the interval's wall-clock boundary. The offset hashes the leaf's id
	// too, so that the leaves of a fleet do not all hit an origin at once.
	now := time.Now()
	wait := SlotOffset(s.leafID+"/"+t.ID, t.Interval) - time.Duration(now.UnixNano()%int64(t.Interval))
	if wait < 0 {
		wait += t.Interval
	}
	next := now.Add(wait)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		slot := next
		next = next.Add(t.Interval)
		if s.acquire(ctx, timer, next) {
			s.metrics.startLag.Observe(time.Since(slot).Seconds())
			res := s.probe(ctx, r, &t, st)
			<-s.sem
			if ctx.Err() != nil {
				// Stopped or replaced mid-probe: the result measures nothing.
				return
			}
			om.record(res)
			s.history.record(t.ID, res)
			if !res.Success {
				s.logger.Debug("Probe failed", "origin_id", t.ID, "reason", res.Reason, "err", res.Err)
			}
		} else {
			if ctx.Err() != nil {
				return
			}
			om.skipped.Inc()
			s.logger.Warn("Probe skipped: no probe slot free before the next interval", "origin_id", t.ID, "slot", slot)
		}
		now := time.Now()
		if behind := now.Sub(next); behind >= 0 {
			missed := int64(behind/t.Interval) + 1
			om.skipped.Add(float64(missed))
			next = next.Add(time.Duration(missed) * t.Interval)
		}
		timer.Reset(next.Sub(now))
	}
}

// probe runs one probe of r's origin with its timeout on a probe worker,
// not on the origin's loop: the loop then keeps a small stack between
// probes. An HTTP probe grows its goroutine's stack to 8 KiB and more,
// which for a leaf with thousands of origins was most of its memory.
// Workers outlive their probe so that their grown stacks serve the next
// ones; there are never more than probes in flight, and an idle one ends.
func (s *Scheduler) probe(ctx context.Context, r *runner, t *config.Target, st any) Result {
	j := probeJob{ctx: ctx, t: t, m: &r.module, st: st, done: r.result}
	select {
	case s.jobs <- j:
	default:
		s.wg.Add(1)
		go s.worker(j)
	}
	return <-r.result
}

// probeJob is one probe for a worker.
type probeJob struct {
	ctx  context.Context
	t    *config.Target
	m    *config.Module
	st   any
	done chan<- Result
}

// workerIdle is how long a probe worker waits for another probe.
const workerIdle = 10 * time.Second

func (s *Scheduler) worker(j probeJob) {
	defer s.wg.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		pctx, cancel := context.WithTimeout(j.ctx, j.t.Timeout)
		j.done <- s.prober.Probe(pctx, j.t, j.m, j.st)
		cancel()
		idle.Reset(workerIdle)
		select {
		case j = <-s.jobs:
		case <-idle.C:
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// acquire takes a probe slot, waiting until deadline at most. It uses
// timer, which has fired.
func (s *Scheduler) acquire(ctx context.Context, timer *time.Timer, deadline time.Time) bool {
	select {
	case s.sem <- struct{}{}:
		return true
	default:
	}
	timer.Reset(time.Until(deadline))
	defer timer.Stop()
	select {
	case s.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	case <-timer.C:
		return false
	}
}
