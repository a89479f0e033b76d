package prober

import (
	"slices"
	"time"
)

// trainBucket is one minute of an origin's packet trains, for the status
// page's SmokePing-style chart.
type trainBucket struct {
	minute int64 // Unix minute this bucket holds
	// trains counts the trains, answered those with at least one answer.
	trains, answered uint32
	sent, received   uint32
	// lo and hi are the fastest and slowest packet of the minute; q1,
	// median and q3 sum the answered trains' quartiles (means when read).
	// Seconds.
	lo, hi, q1, median, q3 float32
}

// trainHistory is an origin's last hour of trains, one bucket a minute.
type trainHistory [HistoryMinutes]trainBucket

// addTrain adds a train to origin id's history, when the origin probes
// with trains (more than one packet), and returns what the status page
// keeps of it as the last result: the counts, without the round trips.
// h.mu must be held.
func (h *History) addTrain(id string, now time.Time, t *Train) *Train {
	if t == nil {
		return nil
	}
	kept := &Train{Sent: t.Sent, Received: t.Received}
	if t.Sent <= 1 {
		return kept
	}
	if h.trains == nil {
		h.trains = make(map[string]*trainHistory)
	}
	th := h.trains[id]
	if th == nil {
		th = new(trainHistory)
		h.trains[id] = th
	}
	m := now.Unix() / 60
	b := &th[m%HistoryMinutes]
	if b.minute != m {
		*b = trainBucket{minute: m}
	}
	b.trains++
	b.sent += uint32(t.Sent)
	b.received += uint32(t.Received)
	if len(t.RTTs) == 0 {
		return kept
	}
	s := slices.Clone(t.RTTs)
	slices.Sort(s)
	sec := func(i int) float32 { return float32(s[i].Seconds()) }
	n := len(s)
	lo, hi := sec(0), sec(n-1)
	if b.answered == 0 {
		b.lo, b.hi = lo, hi
	} else {
		b.lo, b.hi = min(b.lo, lo), max(b.hi, hi)
	}
	median, _, _, _ := t.Stats()
	b.answered++
	b.q1 += sec((n - 1) / 4)
	b.median += float32(median.Seconds())
	b.q3 += sec(3 * (n - 1) / 4)
	return kept
}

// TrainPoint is one minute of an origin's packet trains.
type TrainPoint struct {
	Minute time.Time
	// Trains counts the minute's trains; Sent and Received their packets.
	Trains, Sent, Received int
	// Lo and Hi are the fastest and slowest packet of the minute; Q1,
	// Median and Q3 the means of its trains' quartiles. Seconds; 0 when no
	// packet was answered.
	Lo, Q1, Median, Q3, Hi float64
}

// Loss is the ratio of the minute's packets left unanswered; 0 without
// trains.
func (p TrainPoint) Loss() float64 {
	if p.Sent == 0 {
		return 0
	}
	return float64(p.Sent-p.Received) / float64(p.Sent)
}

// trainPoints returns origin id's last hour of trains, oldest first, one
// point a minute up to the minute cur; nil for an origin without trains.
// h.mu must be held.
func (h *History) trainPoints(id string, cur int64) []TrainPoint {
	th := h.trains[id]
	if th == nil {
		return nil
	}
	out := make([]TrainPoint, HistoryMinutes)
	for i := range out {
		m := cur - HistoryMinutes + 1 + int64(i)
		p := TrainPoint{Minute: time.Unix(m*60, 0)}
		if b := th[m%HistoryMinutes]; b.minute == m {
			p.Trains, p.Sent, p.Received = int(b.trains), int(b.sent), int(b.received)
			if a := float64(b.answered); a > 0 {
				p.Lo, p.Hi = float64(b.lo), float64(b.hi)
				p.Q1, p.Median, p.Q3 = float64(b.q1)/a, float64(b.median)/a, float64(b.q3)/a
			}
		}
		out[i] = p
	}
	return out
}
