package prober

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/oxcross/oxcross/config"
)

// HistoryMinutes is how far back History keeps each origin's latency.
const HistoryMinutes = 60

// History keeps, for the leaf's status page, each origin's last result and
// its latency over the last hour in one-minute buckets (under 1 KiB
// per origin whatever the interval). It is safe for concurrent use.
type History struct {
	mu      sync.RWMutex
	origins map[string]*originHistory
	// trains are the packet trains of origins that probe with them
	// (trainhistory.go).
	trains map[string]*trainHistory
	now    func() time.Time
}

// NewHistory returns an empty History.
func NewHistory() *History {
	return &History{origins: make(map[string]*originHistory), now: time.Now}
}

// minuteBucket is one minute of an origin's probes; which minute follows
// from its place in the ring and originHistory.minute.
type minuteBucket struct {
	successes, failures uint16  // saturating
	sum, max            float32 // seconds, of successful probes
}

// originHistory is one origin's: 896 bytes, whatever the interval.
type originHistory struct {
	last Result
	// lastAt is when last ended, in Unix nanoseconds; 0 before the first
	// probe ends.
	lastAt int64
	// minute is the latest Unix minute recorded: buckets hold the minutes
	// (minute-HistoryMinutes, minute], minute m at m%HistoryMinutes.
	minute  int64
	buckets [HistoryMinutes]minuteBucket
}

// when returns when the last probe ended, and false before the first.
func (oh *originHistory) when() (time.Time, bool) {
	if oh.lastAt == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, oh.lastAt), true
}

// bucket returns the bucket of Unix minute m, nil when m is older than
// the ring holds. A newer m moves the ring on, emptying the minutes it
// skips.
func (oh *originHistory) bucket(m int64) *minuteBucket {
	switch {
	case m > oh.minute:
		for i := max(oh.minute+1, m-HistoryMinutes+1); i <= m; i++ {
			oh.buckets[i%HistoryMinutes] = minuteBucket{}
		}
		oh.minute = m
	case m <= oh.minute-HistoryMinutes:
		return nil
	}
	return &oh.buckets[m%HistoryMinutes]
}

// at returns the bucket of Unix minute m if the ring holds it.
func (oh *originHistory) at(m int64) (minuteBucket, bool) {
	if m > oh.minute || m <= oh.minute-HistoryMinutes {
		return minuteBucket{}, false
	}
	return oh.buckets[m%HistoryMinutes], true
}

// track starts keeping origin id's history, unless it is kept already.
func (h *History) track(id string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.origins[id]; !ok {
		h.origins[id] = &originHistory{}
	}
}

// forget drops origin id.
func (h *History) forget(id string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.origins, id)
	delete(h.trains, id)
}

// record adds one probe's result.
func (h *History) record(id string, r Result) {
	if h == nil {
		return
	}
	now := h.now()
	r.Err = nil // the status page shows reasons, never error text
	h.mu.Lock()
	defer h.mu.Unlock()
	oh, ok := h.origins[id]
	if !ok {
		return
	}
	r.Train = h.addTrain(id, now, r.Train)
	oh.last, oh.lastAt = r, now.UnixNano()
	b := oh.bucket(now.Unix() / 60)
	if b == nil {
		return // the clock went back more than an hour
	}
	if !r.Success {
		if b.failures < math.MaxUint16 {
			b.failures++
		}
		return
	}
	if b.successes == math.MaxUint16 {
		return
	}
	s := float32(r.Duration.Seconds())
	b.successes++
	b.sum += s
	b.max = max(b.max, s)
}

// Point is one minute of an origin's latency history.
type Point struct {
	Minute    time.Time
	Successes int
	Failures  int
	// Mean and Max are of the successful probes, in seconds.
	Mean, Max float64
}

// OriginStatus is what the status page shows of one origin.
type OriginStatus struct {
	Target *config.Target
	// Probed is false until the first probe ends.
	Probed bool
	Last   Result
	LastAt time.Time
	// Points are the last hour, oldest first, one per minute (empty
	// minutes included).
	Points []Point
	// Train is the last hour of packet trains, as Points; nil unless the
	// origin probes with trains (more than one packet).
	Train []TrainPoint
}

// Statuses returns the status of every origin of cfg (the leaf's config;
// nil for none), sorted by id.
func (h *History) Statuses(cfg *config.Config) []OriginStatus {
	if cfg == nil {
		return nil
	}
	now := h.now()
	cur := now.Unix() / 60
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]OriginStatus, 0, len(cfg.Origins))
	for i := range cfg.Origins {
		t := &cfg.Origins[i]
		s := OriginStatus{Target: t, Points: make([]Point, HistoryMinutes)}
		oh, ok := h.origins[t.ID]
		if !ok {
			oh = &originHistory{}
		}
		if at, ok := oh.when(); ok {
			s.Probed, s.Last, s.LastAt = true, oh.last, at
		}
		s.Train = h.trainPoints(t.ID, cur)
		for i := range HistoryMinutes {
			m := cur - HistoryMinutes + 1 + int64(i)
			p := Point{Minute: time.Unix(m*60, 0)}
			if b, ok := oh.at(m); ok {
				p.Successes, p.Failures, p.Max = int(b.successes), int(b.failures), float64(b.max)
				if b.successes > 0 {
					p.Mean = float64(b.sum) / float64(b.successes)
				}
			}
			s.Points[i] = p
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Target.ID < out[j].Target.ID })
	return out
}
