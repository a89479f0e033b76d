package prober

import (
	"container/heap"
	"container/list"
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/oxcross/oxcross/config"
)

// Scheduler probes every origin of the current config once per interval,
// each origin at its own phase within the interval so that probes spread
// out rather than start together, and never more than one probe in flight
// per origin.
//
// One goroutine keeps every origin's next slot in a heap and sleeps on one
// timer until the earliest; due probes go to a pool of probe workers, at
// most MaxConcurrency of them, which end when idle. A leaf's goroutines do
// not grow with its origins.
type Scheduler struct {
	prober  *Prober
	metrics *Metrics
	leafID  string
	logger  *slog.Logger
	// history, when set, keeps results for the status page.
	history *History
	// max bounds the probes in flight, and so the workers.
	max int
	// wake tells the timer goroutine that the earliest slot changed.
	wake chan struct{}

	mu sync.Mutex
	// origins holds each configured origin's entry.
	origins map[string]*entry
	// ending holds, by origin id, the last entry of an origin no longer
	// configured that has not ended yet (its probe is in flight, or it
	// waits for an earlier entry of its origin): an origin added back
	// waits for it, so that its series are deleted before the new entry's
	// are made.
	ending map[string]*entry
	// modules holds the modules of the config in use, one copy each,
	// shared by their origins; an unchanged module keeps its copy.
	modules map[string]*config.Module
	// slots holds the entries waiting for their slot (scheduled) or for a
	// worker (queued), by next.
	slots slotHeap
	// queue holds the queued entries, oldest slot first.
	queue list.List
	// busy counts the workers probing; idle holds those waiting for a
	// probe, the one that finished last at the end.
	busy    int
	idle    []*worker
	running bool
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
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
	// MaxConcurrency bounds the probes in flight across all origins, and
	// so the probe workers; 0 means DefaultMaxConcurrency.
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
		max:     o.MaxConcurrency,
		wake:    make(chan struct{}, 1),
		origins: make(map[string]*entry), ending: make(map[string]*entry),
		ctx: ctx, cancel: cancel,
	}
}

// entryState is where an entry is.
type entryState uint8

const (
	// stWaiting: waiting for an earlier entry of its origin to end.
	stWaiting entryState = iota
	// stScheduled: in slots, at its next slot.
	stScheduled
	// stQueued: its slot has come and no worker was free; in queue, and in
	// slots at its next slot, where it is skipped if still queued.
	stQueued
	// stProbing: on a worker.
	stProbing
	// stEnded: replaced or removed, and done.
	stEnded
)

// entry is one origin as the scheduler probes it. An origin whose target
// or module changes gets a new entry; the new one starts when the old one
// has ended (its probe canceled and returned), so that an origin never has
// two probes in flight.
type entry struct {
	// t is what is probed: the config's target without its labels, so
	// that old configs are not kept alive.
	t      config.Target
	module *config.Module
	// st is the origin's state for stateful kinds.
	st any
	om *originMetrics
	// next is the next slot; while queued, the slot after the one it
	// waits to probe.
	next time.Time
	// index is the entry's in slots, -1 outside.
	index int
	// elem is the entry's in queue while queued.
	elem *list.Element
	// cancel cancels the probe in flight.
	cancel context.CancelFunc
	state  entryState
	// dead: replaced or removed; it probes no more.
	dead bool
	// removed: its series and history go when it ends.
	removed bool
	// succ is the origin's next entry, waiting for this one to end.
	succ *entry
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
	if !s.running {
		s.running = true
		s.wg.Add(1)
		go s.loop()
	}
	modules := make(map[string]*config.Module, len(cfg.Modules))
	for name, m := range cfg.Modules {
		if old, ok := s.modules[name]; ok && reflect.DeepEqual(*old, m) {
			modules[name] = old
		} else {
			modules[name] = &m
		}
	}
	s.modules = modules
	want := make(map[string]*config.Target, len(cfg.Origins))
	for i := range cfg.Origins {
		want[cfg.Origins[i].ID] = &cfg.Origins[i]
	}
	for id, e := range s.origins {
		t, ok := want[id]
		switch {
		case !ok:
			delete(s.origins, id)
			e.removed = true
			if s.end(e) {
				s.ending[id] = e
			}
		case !sameTarget(t, &e.t) || s.module(t.Module) != e.module:
			n := s.newEntry(t)
			s.origins[id] = n
			e.succ = n
			s.end(e)
		}
	}
	for i := range cfg.Origins {
		t := &cfg.Origins[i]
		if _, ok := s.origins[t.ID]; ok {
			continue
		}
		n := s.newEntry(t)
		s.origins[t.ID] = n
		if prev, ok := s.ending[t.ID]; ok {
			delete(s.ending, t.ID)
			prev.succ = n
		} else {
			s.activate(n)
		}
	}
}

// module returns the shared copy of the module name (an empty one for a
// module the config lacks).
func (s *Scheduler) module(name string) *config.Module {
	m, ok := s.modules[name]
	if !ok {
		m = &config.Module{}
		s.modules[name] = m
	}
	return m
}

func (s *Scheduler) newEntry(t *config.Target) *entry {
	e := &entry{t: *t, module: s.module(t.Module), index: -1}
	e.t.Labels, e.t.LeafSelector = nil, nil
	return e
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

// SlotOffset returns the offset within the interval for key: a hash, so
// that origins spread across the interval and keep their slot across
// restarts.
func SlotOffset(key string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return time.Duration(h.Sum64() % uint64(interval))
}

// activate makes e its origin's series and schedules its first slot: its
// offset in the interval, counted from the interval's wall-clock boundary.
// The offset hashes the leaf's id too, so that the leaves of a fleet do
// not all hit an origin at once. A dead e ends at once.
func (s *Scheduler) activate(e *entry) {
	e.om = s.metrics.forOrigin(e.t.ID, s.leafID)
	s.history.track(e.t.ID)
	if e.dead {
		s.retire(e)
		return
	}
	e.st = s.prober.newState(e.module)
	now := time.Now()
	wait := SlotOffset(s.leafID+"/"+e.t.ID, e.t.Interval) - time.Duration(now.UnixNano()%int64(e.t.Interval))
	if wait < 0 {
		wait += e.t.Interval
	}
	e.next = now.Add(wait)
	s.schedule(e)
}

// end stops e: at once when it waits for its slot or a worker; a probe in
// flight is canceled and e ends when it returns; an e waiting for its
// origin's earlier entry ends when that one does. It reports whether e
// has yet to end.
func (s *Scheduler) end(e *entry) bool {
	e.dead = true
	switch e.state {
	case stProbing:
		e.cancel()
		return true
	case stWaiting:
		return true
	case stScheduled, stQueued:
		s.unschedule(e)
		s.retire(e)
	}
	return false
}

// retire ends the dead e, which probes no more: a removed origin's series
// and history go, and the origin's next entry starts.
func (s *Scheduler) retire(e *entry) {
	e.state = stEnded
	e.st = nil
	if e.removed {
		e.om.delete()
		s.history.forget(e.t.ID)
	}
	if e.succ != nil {
		s.activate(e.succ)
	} else if s.ending[e.t.ID] == e {
		delete(s.ending, e.t.ID)
	}
}

// schedule puts e into slots at e.next.
func (s *Scheduler) schedule(e *entry) {
	e.state = stScheduled
	heap.Push(&s.slots, e)
	if e.index == 0 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// unschedule takes e out of slots and queue.
func (s *Scheduler) unschedule(e *entry) {
	if e.index >= 0 {
		heap.Remove(&s.slots, e.index)
	}
	if e.elem != nil {
		s.queue.Remove(e.elem)
		e.elem = nil
	}
}

// skipMissed moves e.next past now, counting the slots it skips: those
// that passed while e's probe ran, or while the scheduler itself ran late.
func (s *Scheduler) skipMissed(e *entry, now time.Time) {
	if behind := now.Sub(e.next); behind >= 0 {
		missed := int64(behind/e.t.Interval) + 1
		e.om.skipped.Add(float64(missed))
		e.next = e.next.Add(time.Duration(missed) * e.t.Interval)
	}
}

// loop is the timer goroutine: it starts the probes whose slot has come
// and sleeps until the next slot.
func (s *Scheduler) loop() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var skipped []skip
	for {
		s.mu.Lock()
		wait := s.due(time.Now(), &skipped)
		s.mu.Unlock()
		for i, k := range skipped {
			s.logger.Warn("Probe skipped: no probe slot free before the next interval", "origin_id", k.id, "slot", k.slot)
			skipped[i] = skip{}
		}
		skipped = skipped[:0]
		timer.Reset(wait)
		select {
		case <-s.ctx.Done():
			return
		case <-timer.C:
		case <-s.wake:
		}
	}
}

// skip is a slot skipped for want of a free worker, to log.
type skip struct {
	id   string
	slot time.Time
}

// due starts the probes whose slot has come by now, skips the slots of
// queued entries that found no worker before their next slot (adding them
// to skipped), and returns how long until the next slot.
func (s *Scheduler) due(now time.Time, skipped *[]skip) time.Duration {
	if s.ctx.Err() != nil {
		return time.Hour
	}
	for len(s.slots) > 0 && !s.slots[0].next.After(now) {
		e := heap.Pop(&s.slots).(*entry)
		if e.state == stQueued {
			// A probe that cannot start before its next slot (all probe
			// slots busy) is skipped and counted, never queued longer.
			s.queue.Remove(e.elem)
			e.elem = nil
			e.om.skipped.Inc()
			*skipped = append(*skipped, skip{e.t.ID, e.next.Add(-e.t.Interval)})
		}
		slot := e.next
		e.next = slot.Add(e.t.Interval)
		s.skipMissed(e, now)
		if s.busy < s.max {
			s.dispatch(e, slot, false)
		} else {
			e.state = stQueued
			e.elem = s.queue.PushBack(e)
			heap.Push(&s.slots, e)
		}
	}
	if len(s.slots) == 0 {
		return time.Hour
	}
	return s.slots[0].next.Sub(now)
}

// probeJob is one probe for a worker: e's, lag after its slot.
type probeJob struct {
	e   *entry
	ctx context.Context
	lag time.Duration
}

// worker is an idle probe worker's inbox.
type worker struct{ jobs chan probeJob }

// workerIdle is how long a probe worker waits for another probe. Workers
// outlive their probe so that their grown stacks (an HTTP probe grows its
// goroutine's stack to 8 KiB and more) serve the next ones.
const workerIdle = 10 * time.Second

// dispatch starts e's probe of slot: on an idle worker, or a new one; with
// self, it returns the job for the calling worker instead.
func (s *Scheduler) dispatch(e *entry, slot time.Time, self bool) probeJob {
	ctx, cancel := context.WithTimeout(s.ctx, e.t.Timeout)
	e.state, e.cancel = stProbing, cancel
	j := probeJob{e: e, ctx: ctx, lag: time.Since(slot)}
	s.busy++
	switch {
	case self:
	case len(s.idle) > 0:
		w := s.idle[len(s.idle)-1]
		s.idle[len(s.idle)-1] = nil
		s.idle = s.idle[:len(s.idle)-1]
		w.jobs <- j // its buffer is empty: it holds one job at a time
	default:
		s.wg.Add(1)
		go s.work(j)
	}
	return j
}

// work runs probes: j, then the probes handed to it, until it has been
// idle for workerIdle.
func (s *Scheduler) work(j probeJob) {
	defer s.wg.Done()
	var w *worker
	var idle *time.Timer
	defer func() {
		if idle != nil {
			idle.Stop()
		}
	}()
	for {
		s.metrics.startLag.Observe(j.lag.Seconds())
		e := j.e
		res := s.prober.Probe(j.ctx, &e.t, e.module, e.st)
		// Canceled, not timed out: the origin was replaced or removed
		// mid-probe, or the scheduler stopped. The result measures
		// nothing.
		if !errors.Is(j.ctx.Err(), context.Canceled) {
			e.om.record(res)
			s.history.record(e.t.ID, res)
			if !res.Success {
				s.logger.Debug("Probe failed", "origin_id", e.t.ID, "reason", res.Reason, "err", res.Err)
			}
		}
		s.mu.Lock()
		next, more := s.finish(j)
		if more {
			s.mu.Unlock()
			j = next
			continue
		}
		s.busy--
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			return
		}
		if w == nil {
			w = &worker{jobs: make(chan probeJob, 1)}
		}
		s.idle = append(s.idle, w)
		s.mu.Unlock()
		if idle == nil {
			idle = time.NewTimer(workerIdle)
		} else {
			idle.Reset(workerIdle)
		}
		select {
		case j = <-w.jobs:
		case <-s.ctx.Done():
			return
		case <-idle.C:
			s.mu.Lock()
			gone := s.dropIdle(w)
			s.mu.Unlock()
			if gone {
				return
			}
			j = <-w.jobs // handed a probe as its time ran out
		}
	}
}

// finish ends j's probe: its entry waits for its next slot, or ends if it
// was replaced or removed meanwhile. It returns the oldest queued probe
// for the same worker, if any.
func (s *Scheduler) finish(j probeJob) (probeJob, bool) {
	e := j.e
	e.cancel()
	e.cancel = nil
	if e.dead {
		s.retire(e)
	} else if s.ctx.Err() == nil {
		s.skipMissed(e, time.Now())
		s.schedule(e)
	}
	if s.ctx.Err() != nil || s.queue.Len() == 0 {
		return probeJob{}, false
	}
	q := s.queue.Remove(s.queue.Front()).(*entry)
	q.elem = nil
	heap.Remove(&s.slots, q.index)
	s.busy--
	return s.dispatch(q, q.next.Add(-q.t.Interval), true), true
}

// dropIdle takes w out of the idle workers; false if it was handed a probe.
func (s *Scheduler) dropIdle(w *worker) bool {
	for i, x := range s.idle {
		if x == w {
			last := len(s.idle) - 1
			copy(s.idle[i:], s.idle[i+1:])
			s.idle[last] = nil
			s.idle = s.idle[:last]
			return true
		}
	}
	return false
}

// slotHeap orders entries by their next slot (container/heap).
type slotHeap []*entry

func (h slotHeap) Len() int           { return len(h) }
func (h slotHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h slotHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *slotHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *slotHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*h = old[:len(old)-1]
	return e
}
