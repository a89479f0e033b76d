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
