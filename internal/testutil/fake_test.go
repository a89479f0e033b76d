package testutil

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// fakeTB is a testing.TB whose failures are recorded instead of failing
// the test. Fatal and Fatalf end the goroutine, as they do for a real
// test; run runs a helper on a goroutine of its own for them. What it
// does not override (TempDir, Cleanup, Logf...) goes to the real test.
type fakeTB struct {
	testing.TB

	mu      sync.Mutex
	failed  bool
	fatal   bool
	skipped bool
	msgs    []string
}

// run calls f with a fakeTB on a new goroutine and waits for it to end.
func run(t *testing.T, f func(tb testing.TB)) *fakeTB {
	t.Helper()
	tb := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(tb)
	}()
	<-done
	return tb
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) fail(fatal bool, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = true
	f.fatal = f.fatal || fatal
	f.msgs = append(f.msgs, msg)
}

func (f *fakeTB) Error(args ...any)                 { f.fail(false, fmt.Sprint(args...)) }
func (f *fakeTB) Errorf(format string, args ...any) { f.fail(false, fmt.Sprintf(format, args...)) }
func (f *fakeTB) Fail()                             { f.fail(false, "") }
func (f *fakeTB) Fatal(args ...any)                 { f.fail(true, fmt.Sprint(args...)); runtime.Goexit() }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fail(true, fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (f *fakeTB) FailNow() { f.fail(true, ""); runtime.Goexit() }

// Skipf records the skip and ends the goroutine, as for a real test.
func (f *fakeTB) Skipf(format string, args ...any) {
	f.mu.Lock()
	f.skipped = true
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// message returns the failure messages, one a line.
func (f *fakeTB) message() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.msgs, "\n")
}
