package prober

import (
	"testing"
	"time"
)

func TestEstimateDrift(t *testing.T) {
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	tests := []struct {
		name            string
		t1, t2, t3, t4  time.Time
		rtt             time.Duration
		wantOffset      time.Duration
		wantUncertainty time.Duration
	}{
		{
			// Origin 2s ahead, 10ms each way, 1ms processing:
			// t2 = t1+10ms+2s, t3 = t2+1ms, t4 = t1+21ms.
			// offset = (2.010s + (2.011s-0.021s)) / 2 = 2s
			// uncertainty = (21ms - 1ms) / 2 = 10ms
			name:            "origin ahead, symmetric",
			t1:              base,
			t2:              base.Add(2*time.Second + 10*ms),
			t3:              base.Add(2*time.Second + 11*ms),
			t4:              base.Add(21 * ms),
			rtt:             21 * ms,
			wantOffset:      2 * time.Second,
			wantUncertainty: 10 * ms,
		},
		{
			// Origin 1.5s behind, 5ms out, 15ms back, 2ms processing:
			// t2 = t1+5ms-1.5s, t3 = t2+2ms, t4 = t1+22ms.
			// offset = ((-1.495s) + (-1.493s-0.022s)) / 2 = -1.505s,
			// 5ms off the truth, within the uncertainty (22ms-2ms)/2 = 10ms.
			name:            "origin behind, asymmetric",
			t1:              base,
			t2:              base.Add(-1500*ms + 5*ms),
			t3:              base.Add(-1500*ms + 7*ms),
			t4:              base.Add(22 * ms),
			rtt:             22 * ms,
			wantOffset:      -1505 * ms,
			wantUncertainty: 10 * ms,
		},
		{
			// The origin claims 50ms of processing in a 10ms round trip:
			// offset = (1s + (1.05s-0.01s)) / 2 = 1.02s, and the
			// uncertainty falls back to rtt/2.
			name:            "processing longer than rtt",
			t1:              base,
			t2:              base.Add(time.Second),
			t3:              base.Add(time.Second + 50*ms),
			t4:              base.Add(10 * ms),
			rtt:             10 * ms,
			wantOffset:      1020 * ms,
			wantUncertainty: 5 * ms,
		},
		{
			// No drift at all, zero processing: uncertainty is rtt/2.
			name:            "in sync",
			t1:              base,
			t2:              base.Add(4 * ms),
			t3:              base.Add(4 * ms),
			t4:              base.Add(8 * ms),
			rtt:             8 * ms,
			wantOffset:      0,
			wantUncertainty: 4 * ms,
		},
		{
			// The leaf's wall clock stepped 1s forward during the probe:
			// t4 - t1 says 1.02s but the monotonic rtt says 20ms; the
			// uncertainty follows the rtt, (20ms - 0) / 2.
			name:            "leaf clock step uses monotonic rtt",
			t1:              base,
			t2:              base.Add(10 * ms),
			t3:              base.Add(10 * ms),
			t4:              base.Add(time.Second + 20*ms),
			rtt:             20 * ms,
			wantOffset:      -500 * ms,
			wantUncertainty: 10 * ms,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := EstimateDrift(tc.t1, tc.t2, tc.t3, tc.t4, tc.rtt)
			if got.Offset != tc.wantOffset || got.Uncertainty != tc.wantUncertainty {
				t.Errorf("EstimateDrift = {Offset: %v, Uncertainty: %v}, want {Offset: %v, Uncertainty: %v}",
					got.Offset, got.Uncertainty, tc.wantOffset, tc.wantUncertainty)
			}
		})
	}
}

func TestEstimateDriftLegacy(t *testing.T) {
	ms := time.Millisecond
	t1 := time.Date(2025, 3, 1, 12, 0, 0, int(300*ms), time.UTC)
	rtt := 20 * ms
	t4 := t1.Add(rtt)
	// The midpoint of the round trip is 12:00:00.310 on the leaf's clock.
	tests := []struct {
		name            string
		serverTime      time.Time
		wantOffset      time.Duration
		wantUncertainty time.Duration
	}{
		{
			// Whole seconds: the origin's clock read somewhere in
			// [12:00:02, 12:00:03); the estimate takes the middle,
			// 12:00:02.5 - 12:00:00.310 = 2.19s, and widens the
			// uncertainty by 0.5s to 10ms + 500ms.
			name:            "whole seconds",
			serverTime:      time.Date(2025, 3, 1, 12, 0, 2, 0, time.UTC),
			wantOffset:      2190 * ms,
			wantUncertainty: 510 * ms,
		},
		{
			name:            "whole seconds, origin behind",
			serverTime:      time.Date(2025, 3, 1, 11, 59, 58, 0, time.UTC),
			wantOffset:      -2*time.Second + 190*ms,
			wantUncertainty: 510 * ms,
		},
		{
			// Nanoseconds: 12:00:02.123456789 - 12:00:00.310 and half the
			// round trip.
			name:            "nanoseconds",
			serverTime:      time.Date(2025, 3, 1, 12, 0, 2, 123456789, time.UTC),
			wantOffset:      1813456789 * time.Nanosecond,
			wantUncertainty: 10 * ms,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := EstimateDriftLegacy(t1, tc.serverTime, t4, rtt)
			if got.Offset != tc.wantOffset || got.Uncertainty != tc.wantUncertainty {
				t.Errorf("EstimateDriftLegacy = {Offset: %v, Uncertainty: %v}, want {Offset: %v, Uncertainty: %v}",
					got.Offset, got.Uncertainty, tc.wantOffset, tc.wantUncertainty)
			}
		})
	}
}

func BenchmarkEstimateDrift(b *testing.B) {
	t1 := time.Now()
	t2 := t1.Add(2*time.Second + 10*time.Millisecond)
	t3 := t2.Add(time.Millisecond)
	t4 := t1.Add(21 * time.Millisecond)
	rtt := 21 * time.Millisecond
	b.ReportAllocs()
	var d Drift
	for b.Loop() {
		d = EstimateDrift(t1, t2, t3, t4, rtt)
	}
	if d.Offset != 2*time.Second {
		b.Fatalf("offset %v", d.Offset)
	}
}
