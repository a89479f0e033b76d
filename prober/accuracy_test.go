package prober

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oxcross/oxcross/origin"
)

// delayProxy forwards TCP connections to upstream, delaying every byte by
// up on the way to upstream and by down on the way back: a network path
// with a known one-way delay in each direction.
type delayProxy struct {
	l        net.Listener
	upstream string
	up, down time.Duration
	wg       sync.WaitGroup
}

func newDelayProxy(t *testing.T, upstream string, up, down time.Duration) *delayProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &delayProxy{l: l, upstream: upstream, up: up, down: down}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { _ = l.Close(); p.wg.Wait() })
	return p
}

func (p *delayProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.wg.Add(2)
		go func() { defer p.wg.Done(); delayCopy(u, c, p.up) }()
		go func() { defer p.wg.Done(); delayCopy(c, u, p.down) }()
	}
}

// delayCopy copies src to dst, each chunk written delay after it was read.
func delayCopy(dst, src net.Conn, delay time.Duration) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	ch := make(chan chunk, 64)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{buf[:n], time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		time.Sleep(time.Until(c.at.Add(delay)))
		if _, err := dst.Write(c.b); err != nil {
			break
		}
	}
	// Drain so the reader ends, then close both ends.
	_ = dst.Close()
	_ = src.Close()
	for range ch {
	}
}

// driftErrors probes an origin whose clock runs offset ahead, through a
// path with the given one-way delays, n times, and returns each estimate's
// error and uncertainty.
func driftErrors(t *testing.T, h http.Handler, offset, up, down time.Duration, n int) (errs, uncs []time.Duration) {
	t.Helper()
	ts := newServer(t, h)
	px := newDelayProxy(t, ts.Listener.Addr().String(), up, down)
	p := NewProber(testAgent)
	st := &originState{}
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r := p.Probe(ctx, advanced("http://"+px.l.Addr().String()+origin.Path), st)
		cancel()
		if !r.Success || r.Drift == nil {
			t.Fatalf("probe through the proxy: %s %v", r.Reason, r.Err)
		}
		errs = append(errs, r.Drift.Offset-offset)
		uncs = append(uncs, r.Drift.Uncertainty)
	}
	return errs, uncs
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestDriftAccuracy runs a real origin with its clock set ahead behind a
// proxy that adds known delays: with symmetric delays the estimate reads
// the offset within a couple of milliseconds; with asymmetric delays its
// error, (up - down) / 2, stays within the uncertainty it reports.
func TestDriftAccuracy(t *testing.T) {
	const offset = 1234 * time.Millisecond
	h, err := origin.NewHandler(origin.Options{Now: func() time.Time { return time.Now().Add(offset) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("symmetric", func(t *testing.T) {
		errs, uncs := driftErrors(t, h, offset, 25*time.Millisecond, 25*time.Millisecond, 7)
		t.Logf("errors %v, uncertainties %v", errs, uncs)
		if m := median(errs); abs(m) > 2*time.Millisecond {
			t.Errorf("median error %v with symmetric 25ms delays, want within 2ms (errors %v)", m, errs)
		}
		for i, e := range errs {
			if abs(e) > uncs[i] {
				t.Errorf("probe %d: error %v exceeds the uncertainty %v", i, e, uncs[i])
			}
			if uncs[i] < 25*time.Millisecond || uncs[i] > 40*time.Millisecond {
				t.Errorf("probe %d: uncertainty %v, want about the 25ms one-way delay", i, uncs[i])
			}
		}
	})
	t.Run("asymmetric", func(t *testing.T) {
		up, down := 5*time.Millisecond, 45*time.Millisecond
		errs, uncs := driftErrors(t, h, offset, up, down, 7)
		t.Logf("errors %v, uncertainties %v", errs, uncs)
		want := (up - down) / 2 // what NTP's symmetric assumption must get wrong
		if m := median(errs); abs(m-want) > 3*time.Millisecond {
			t.Errorf("median error %v, want about %v for delays %v up, %v down", m, want, up, down)
		}
		for i, e := range errs {
			if abs(e) > uncs[i] {
				t.Errorf("probe %d: error %v exceeds the uncertainty %v", i, e, uncs[i])
			}
		}
	})
}

// TestDriftAccuracyLegacyOrigin: the original origin sends server_time
// with whole seconds only; the estimate falls back to the round trip's
// midpoint, widened by the truncation, and still contains the truth.
func TestDriftAccuracyLegacyOrigin(t *testing.T) {
	const offset = -2345 * time.Millisecond
	legacy := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"server_time": time.Now().Add(offset).UTC().Truncate(time.Second).Format(time.RFC3339),
			"token":       randomToken(),
		})
	})
	errs, uncs := driftErrors(t, legacy, offset, 10*time.Millisecond, 10*time.Millisecond, 5)
	for i, e := range errs {
		if abs(e) > uncs[i] {
			t.Errorf("probe %d: error %v exceeds the uncertainty %v", i, e, uncs[i])
		}
		if uncs[i] < 500*time.Millisecond {
			t.Errorf("probe %d: uncertainty %v does not include the half second of truncation", i, uncs[i])
		}
	}
}
