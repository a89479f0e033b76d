package prober

import (
	"math"
	"time"
)

// Drift is an estimate of the origin's clock minus the leaf's clock.
type Drift struct {
	// Offset is the origin's clock minus the leaf's.
	Offset time.Duration
	// Uncertainty bounds |true offset - Offset| when the network delay is
	// the same both ways: half the round trip the origin did not spend.
	Uncertainty time.Duration
}

// EstimateDrift is the NTP-style estimate from the four timestamps of a
// probe: t1 request written and t4 first response byte on the leaf's clock,
// t2 request received and t3 response sent on the origin's clock.
//
//	offset = ((t2 - t1) + (t3 - t4)) / 2
//	uncertainty = ((t4 - t1) - (t3 - t2)) / 2
//
// rtt is t4 - t1 measured on the leaf's monotonic clock; it is used instead
// of the wall-clock difference so that a leaf clock step during the probe
// does not skew the uncertainty.
func EstimateDrift(t1, t2, t3, t4 time.Time, rtt time.Duration) Drift {
	// Halved before they are added, so that an origin claiming a time
	// centuries away cannot overflow the sum (FuzzCheckOxcross).
	offset := t2.Sub(t1)/2 + t3.Sub(t4)/2
	unc := rtt/2 - t3.Sub(t2)/2
	if unc < 0 {
		// The origin claims it spent longer than the whole round trip: its
		// clock is not monotonic or it lies; the estimate is no better than
		// half the round trip.
		unc = rtt / 2
	}
	return Drift{Offset: offset, Uncertainty: unc}
}

// EstimateDriftLegacy estimates the drift from the original Oxcross origin's
// single server_time, taken between t1 and t4. When server time has whole
// seconds only (the original's format), the true time lies in
// [serverTime, serverTime+1s): the estimate moves to the middle of that
// second and its uncertainty widens by half a second.
func EstimateDriftLegacy(t1, serverTime, t4 time.Time, rtt time.Duration) Drift {
	mid := t1.Add(rtt / 2)
	d := Drift{Offset: serverTime.Sub(mid), Uncertainty: rtt / 2}
	if serverTime.Nanosecond() == 0 {
		if d.Offset < math.MaxInt64-time.Second/2 { // saturated already otherwise
			d.Offset += time.Second / 2
		}
		d.Uncertainty += time.Second / 2
	}
	return d
}

// FrequencyTolerance is how fast two clocks that were in step may drift
// apart: RFC 5905's PHI, 15 ppm, the frequency tolerance NTP assumes of
// a clock. An offset measured a time ago is off by at most its age times
// this much more than when it was measured.
const FrequencyTolerance = 15e-6

// The bounds and default of a module's clock_filter_samples.
const (
	DefaultClockFilterSamples = 8
	MaxClockFilterSamples     = 64
)

// FilteredDrift is the clock filter's estimate: the kept exchange with the
// smallest round trip.
type FilteredDrift struct {
	// Offset is that exchange's offset.
	Offset time.Duration
	// Bound is that exchange's own uncertainty, half its round trip
	// outside the origin: its error bound when it was made.
	Bound time.Duration
	// At is when that exchange ended (its first response byte), with the
	// monotonic clock reading.
	At time.Time
	// Samples is how many exchanges the filter keeps now, at most its K.
	Samples int
}

// UncertaintyAt is the bound of the estimate at now: Bound plus the
// exchange's age times FrequencyTolerance, so that it widens as the
// exchange grows old.
func (f *FilteredDrift) UncertaintyAt(now time.Time) time.Duration {
	return f.Bound + agePenalty(now.Sub(f.At))
}

// agePenalty is how far two clocks within FrequencyTolerance of each other
// may drift apart in age.
func agePenalty(age time.Duration) time.Duration {
	if age <= 0 {
		return 0
	}
	return time.Duration(float64(age) * FrequencyTolerance)
}

// clockFilter is NTP's clock filter (RFC 5905, section 10) in its simplest
// form: it keeps an origin's last K exchanges and takes the offset of the
// one with the smallest round trip. Queueing only ever lengthens a round
// trip, and the error of an exchange's offset is at most half its round
// trip, so the shortest recent exchange is the one least disturbed by
// queueing. Its size is fixed once K is known: K samples.
type clockFilter struct {
	samples []filterSample
	next, n int
}

type filterSample struct {
	d  Drift
	at time.Time
}

// add keeps one exchange, ended at at, in a filter of k samples, and
// returns the filter's estimate. A k other than the filter's keeps the
// newest min(k, kept) exchanges.
func (f *clockFilter) add(d Drift, at time.Time, k int) FilteredDrift {
	if k <= 0 {
		k = DefaultClockFilterSamples
	}
	if k != len(f.samples) {
		f.resize(k)
	}
	f.samples[f.next] = filterSample{d: d, at: at}
	f.next = (f.next + 1) % k
	f.n = min(f.n+1, k)
	best := -1
	for i := range f.n {
		s := &f.samples[i]
		// The smallest round trip (Uncertainty is half of it, outside the
		// origin); of equal ones, the newest.
		if best < 0 || s.d.Uncertainty < f.samples[best].d.Uncertainty ||
			(s.d.Uncertainty == f.samples[best].d.Uncertainty && s.at.After(f.samples[best].at)) {
			best = i
		}
	}
	b := f.samples[best]
	return FilteredDrift{Offset: b.d.Offset, Bound: b.d.Uncertainty, At: b.at, Samples: f.n}
}

// resize makes the filter hold k samples, keeping the newest.
func (f *clockFilter) resize(k int) {
	old := make([]filterSample, 0, f.n)
	for i := range f.n {
		// Oldest first.
		old = append(old, f.samples[(f.next-f.n+i+2*len(f.samples))%len(f.samples)])
	}
	if len(old) > k {
		old = old[len(old)-k:]
	}
	f.samples = make([]filterSample, k)
	copy(f.samples, old)
	f.n = len(old)
	f.next = f.n % k
}
