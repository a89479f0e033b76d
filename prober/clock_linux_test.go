//go:build linux

package prober

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestClockFromTimex(t *testing.T) {
	for _, tc := range []struct {
		name   string
		state  int
		status int64
		want   bool
	}{
		{"synchronized", unix.TIME_OK, 0, true},
		{"leap second pending, synchronized", unix.TIME_INS, 0, true},
		{"STA_UNSYNC", unix.TIME_OK, unix.STA_UNSYNC, false},
		{"TIME_ERROR", unix.TIME_ERROR, 0, false},
		{"no NTP daemon", unix.TIME_ERROR, unix.STA_UNSYNC, false},
	} {
		got := clockFromTimex(tc.state, tc.status, 16_000_000, 1500)
		if got.Synchronized != tc.want || got.MaxError != 16*time.Second || got.EstimatedError != 1500*time.Microsecond {
			t.Errorf("%s: %+v, want synchronized %v, 16s, 1.5ms", tc.name, got, tc.want)
		}
	}
}
