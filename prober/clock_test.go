package prober

import (
	"runtime"
	"testing"
	"time"

	"github.com/oxcross/oxcross/internal/testutil"
	"github.com/prometheus/client_golang/prometheus"
)

func TestClockCollector(t *testing.T) {
	c := NewClockCollector()
	c.read = func() (LeafClock, bool) {
		return LeafClock{Synchronized: true, MaxError: 16 * time.Millisecond, EstimatedError: 250 * time.Microsecond}, true
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	for name, want := range map[string]float64{
		"oxcross_leaf_clock_synchronized":            1,
		"oxcross_leaf_clock_max_error_seconds":       0.016,
		"oxcross_leaf_clock_estimated_error_seconds": 0.00025,
	} {
		if v := testutil.MetricValue(t, reg, name); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	// Where the clock cannot be read, nothing.
	c.read = func() (LeafClock, bool) { return LeafClock{}, false }
	if _, ok := testutil.LookupMetric(t, reg, "oxcross_leaf_clock_synchronized"); ok {
		t.Error("oxcross_leaf_clock_synchronized exported without a reading")
	}
}

// TestReadLeafClock reads this machine's clock: on Linux adjtimex answers
// unprivileged, with a maximum error between 0 and the kernel's 16 s.
func TestReadLeafClock(t *testing.T) {
	lc, ok := ReadLeafClock()
	if runtime.GOOS != "linux" {
		if ok {
			t.Errorf("read %+v on %s", lc, runtime.GOOS)
		}
		return
	}
	if !ok {
		t.Fatal("adjtimex failed")
	}
	if lc.MaxError < 0 || lc.MaxError > 16*time.Second || lc.EstimatedError < 0 {
		t.Errorf("clock %+v: want a maximum error within 0-16s and an estimated error of at least 0", lc)
	}
	t.Logf("this machine's clock: %+v", lc)
}
