package testutil

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestEventuallyHolds(t *testing.T) {
	var calls atomic.Int32
	tb := run(t, func(tb testing.TB) {
		Eventually(tb, 5*time.Second, "the third call", func() bool { return calls.Add(1) >= 3 })
	})
	if tb.Failed() || calls.Load() != 3 {
		t.Errorf("failed %v (%s) after %d calls; want success after 3", tb.Failed(), tb.message(), calls.Load())
	}
}

func TestEventuallyNeverHolds(t *testing.T) {
	const timeout = 100 * time.Millisecond
	var calls atomic.Int32
	begin := time.Now()
	tb := run(t, func(tb testing.TB) {
		Eventually(tb, timeout, "pigs to fly", func() bool { calls.Add(1); return false })
		t.Error("Eventually returned from a condition that never held")
	})
	took := time.Since(begin)
	if !tb.fatal || !strings.Contains(tb.message(), "pigs to fly") || !strings.Contains(tb.message(), timeout.String()) {
		t.Errorf("failure %q (fatal %v), want a fatal one naming what it waited for and the timeout", tb.message(), tb.fatal)
	}
	if took < timeout || took > timeout+time.Second {
		t.Errorf("gave up after %v, want about %v", took, timeout)
	}
	// A short backoff: more than a couple of calls, far fewer than one a
	// millisecond.
	if n := calls.Load(); n < 4 || n > 50 {
		t.Errorf("%d calls in %v", n, timeout)
	}
}

func TestEventuallyReason(t *testing.T) {
	var calls atomic.Int32
	tb := run(t, func(tb testing.TB) {
		EventuallyReason(tb, 5*time.Second, "five calls", func() string {
			if n := calls.Add(1); n < 5 {
				return fmt.Sprintf("%d calls", n)
			}
			return ""
		})
	})
	if tb.Failed() {
		t.Errorf("failed: %s", tb.message())
	}

	tb = run(t, func(tb testing.TB) {
		n := 0
		EventuallyReason(tb, 50*time.Millisecond, "the origin healthy", func() string {
			n++
			return fmt.Sprintf("status 503 (try %d)", n)
		})
	})
	msg := tb.message()
	if !tb.fatal || !strings.Contains(msg, "the origin healthy") || !strings.Contains(msg, "status 503") {
		t.Errorf("failure %q, want one naming what it waited for and what it saw", msg)
	}
	// The last complaint, not the first.
	if strings.Contains(msg, "(try 1)") {
		t.Errorf("failure %q reports the first complaint, want the last", msg)
	}
}
