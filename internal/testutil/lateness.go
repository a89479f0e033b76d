package testutil

import (
	"sync"
	"time"
)

// TimerWatch measures how late this machine runs timers while a timing
// test runs: a busy machine (other processes on the cores) wakes every
// timer late, the program under test's as well as this one, so a test
// compares what it measured with this truth rather than with the nominal
// schedule.
type TimerWatch struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	late int
}

// WatchTimers starts a loop that sleeps in steps of interval, as a
// scheduler with nothing to do would, and counts the wakes that come
// threshold or more late. Stop ends it.
func WatchTimers(interval, threshold time.Duration) *TimerWatch {
	w := &TimerWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		timer := time.NewTimer(interval)
		defer timer.Stop()
		next := time.Now().Add(interval)
		for {
			select {
			case <-w.stop:
				return
			case <-timer.C:
			}
			now := time.Now()
			if now.Sub(next) >= threshold {
				w.mu.Lock()
				w.late++
				w.mu.Unlock()
			}
			// Like a scheduler, skip the slots already past.
			for !next.After(now) {
				next = next.Add(interval)
			}
			timer.Reset(next.Sub(now))
		}
	}()
	return w
}

// Late returns how many wakes came late so far.
func (w *TimerWatch) Late() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.late
}

// Stop ends the watch and returns how many wakes came late.
func (w *TimerWatch) Stop() int {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	return w.Late()
}
