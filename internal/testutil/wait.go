package testutil

import (
	"testing"
	"time"
)

// Polling intervals of Eventually: the first is short, so that a
// condition about to hold costs little, and each next one doubles up to
// the last.
const (
	firstPoll = time.Millisecond
	lastPoll  = 50 * time.Millisecond
)

// Eventually polls cond, with a short backoff, until it holds, and fails
// the test with what (what the test waits for) if it still does not hold
// after timeout. It must be called from the test's goroutine.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if poll(timeout, func() string {
		if cond() {
			return ""
		}
		return "false"
	}) != "" {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// EventuallyReason is Eventually for a condition that says what is still
// wrong: cond returns "" when it holds, and a description of what it saw
// otherwise, which the failure reports (the last one).
func EventuallyReason(t testing.TB, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	if last := poll(timeout, cond); last != "" {
		t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, last)
	}
}

// poll calls cond until it returns "" or timeout has passed, checking once
// more at the deadline, and returns its last result.
func poll(timeout time.Duration, cond func() string) string {
	deadline := time.Now().Add(timeout)
	wait := firstPoll
	for {
		last := cond()
		if last == "" {
			return ""
		}
		left := time.Until(deadline)
		if left <= 0 {
			return last
		}
		time.Sleep(min(wait, left))
		wait = min(2*wait, lastPoll)
	}
}
