package push

import "sync"

// queue is a bounded FIFO of samples: beyond max it drops the oldest.
// Samples keep their order, so each series reaches the receiver in time
// order, as it requires.
type queue struct {
	mu    sync.Mutex
	items []sample
	max   int
	wake  chan struct{}
}

func newQueue(max int) *queue {
	return &queue{max: max, wake: make(chan struct{}, 1)}
}

// push appends samples and returns how many of the oldest it dropped to
// stay within its bound.
func (q *queue) push(samples []sample) (dropped int) {
	q.mu.Lock()
	q.items = append(q.items, samples...)
	if over := len(q.items) - q.max; over > 0 {
		clear(q.items[:over]) // let the dropped samples' histograms go
		q.items = q.items[over:]
		dropped = over
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return dropped
}

// take removes and returns up to n of the oldest samples.
func (q *queue) take(n int) []sample {
	q.mu.Lock()
	defer q.mu.Unlock()
	n = min(n, len(q.items))
	if n == 0 {
		return nil
	}
	out := make([]sample, n)
	copy(out, q.items)
	clear(q.items[:n])
	q.items = q.items[n:]
	if len(q.items) == 0 {
		q.items = nil // start the next array afresh
	}
	return out
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
