package testutil

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestWatchTimersIdle: on an idle loop nothing is late by a whole
// interval; a goroutine-starved one is. The busy case keeps every P busy
// with spinning goroutines that never yield, which delays the watch's
// wakes the way other processes on the cores do.
func TestWatchTimersIdle(t *testing.T) {
	w := WatchTimers(10*time.Millisecond, time.Second)
	time.Sleep(100 * time.Millisecond) // the window the watch measures
	if late := w.Stop(); late != 0 {
		t.Errorf("%d wakes a second late in 100ms", late)
	}
	if late := w.Stop(); late != 0 {
		t.Errorf("a second Stop: %d", late)
	}
}

func TestWatchTimersBusy(t *testing.T) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	w := WatchTimers(5*time.Millisecond, 5*time.Millisecond)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Spin for 50ms at a time between checks: the watch's goroutine
		// waits for the only P meanwhile (Go preempts spinning goroutines
		// every 10ms, so it gets in, late).
		for {
			select {
			case <-stop:
				return
			default:
			}
			for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
			}
		}
	}()
	Eventually(t, 10*time.Second, "the watch counts late wakes on a starved P", func() bool { return w.Late() > 0 })
	close(stop)
	wg.Wait()
	w.Stop()
}
