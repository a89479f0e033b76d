//go:build linux

package prober

import (
	"time"

	"golang.org/x/sys/unix"
)

// readLeafClock asks adjtimex with no modes set: it reads and changes
// nothing, and needs no privilege.
func readLeafClock() (LeafClock, bool) {
	var tx unix.Timex // Modes 0: read only
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return LeafClock{}, false
	}
	return clockFromTimex(state, int64(tx.Status), int64(tx.Maxerror), int64(tx.Esterror)), true
}

// clockFromTimex interprets adjtimex's answer: its clock state, status
// bits, and maxerror and esterror in microseconds.
func clockFromTimex(state int, status, maxErrorUs, estErrorUs int64) LeafClock {
	return LeafClock{
		Synchronized:   state != unix.TIME_ERROR && status&unix.STA_UNSYNC == 0,
		MaxError:       time.Duration(maxErrorUs) * time.Microsecond,
		EstimatedError: time.Duration(estErrorUs) * time.Microsecond,
	}
}
