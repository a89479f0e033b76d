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

// delayProxy forwards TCP connections to upstream, delaying every chunk by
// up on the way to upstream and by down on the way back: a network path
// with a given one-way delay in each direction. On a busy machine a chunk
// leaves later than asked, and not by the same amount each way, so the
// proxy records when it read and when it forwarded each chunk: the delays
// that really happened, for the test to compare with.
//
// It lives here for now; a shared helper may replace it (internal/testutil).
type delayProxy struct {
	l        net.Listener
	upstream string
	up, down time.Duration
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns []*connHops // in the order the connections were accepted
}

// hop is one chunk's passage through the proxy, on this process's clock:
// read when the proxy read it, sent just before it wrote it on.
type hop struct{ read, sent time.Time }

func (h hop) delay() time.Duration { return h.sent.Sub(h.read) }

// connHops are the hops of one proxied connection, each way.
type connHops struct{ up, down []hop }

// path is the delay the proxy really added to one connection's request
// (its first chunk towards upstream) and to its response's first bytes
// (its first chunk back).
type path struct{ up, down time.Duration }

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
		ch := &connHops{}
		p.mu.Lock()
		p.conns = append(p.conns, ch)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			delayCopy(u, c, p.up, func(h hop) { p.mu.Lock(); ch.up = append(ch.up, h); p.mu.Unlock() })
		}()
		go func() {
			defer p.wg.Done()
			delayCopy(c, u, p.down, func(h hop) { p.mu.Lock(); ch.down = append(ch.down, h); p.mu.Unlock() })
		}()
	}
}

// paths returns the delays the proxy added to each connection so far, in
// the order they were accepted; ok is false when a connection has not
// carried a chunk each way.
func (p *delayProxy) paths() (ps []path, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		if len(c.up) == 0 || len(c.down) == 0 {
			return ps, false
		}
		ps = append(ps, path{up: c.up[0].delay(), down: c.down[0].delay()})
	}
	return ps, true
}

// delayCopy copies src to dst, each chunk written delay after it was read
// (or as soon after as the machine allows), and records each chunk's hop
// before writing it, so that the record exists before the peer can see
// the chunk.
func delayCopy(dst, src net.Conn, delay time.Duration, record func(hop)) {
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
		// The delay itself, not a wait for a condition: this is the
		// simulated network.
		time.Sleep(time.Until(c.at.Add(delay)))
		record(hop{read: c.at, sent: time.Now()})
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
// error and uncertainty, and the delays the proxy really added to each
// probe's request and response.
func driftErrors(t *testing.T, h http.Handler, offset, up, down time.Duration, n int) (errs, uncs []time.Duration, paths []path) {
	t.Helper()
	ts := newServer(t, h)
	px := newDelayProxy(t, ts.Listener.Addr().String(), up, down)
	p := NewProber(testAgent)
	st := &originState{}
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r := p.Probe(ctx, advanced("http://"+px.l.Addr().String()+origin.Path), st)
		cancel()
		if !r.Success || r.Drift == nil {
			t.Fatalf("probe through the proxy: %s %v", r.Reason, r.Err)
		}
		// Each probe opens one connection (no keep-alive) and has read
		// the response, so the proxy has recorded both of its hops.
		ps, ok := px.paths()
		if !ok || len(ps) != i+1 {
			t.Fatalf("after probe %d the proxy recorded %d connections (complete: %v), want %d", i, len(ps), ok, i+1)
		}
		errs = append(errs, r.Drift.Offset-offset)
		uncs = append(uncs, r.Drift.Uncertainty)
		paths = append(paths, ps[i])
	}
	return errs, uncs, paths
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestDriftAccuracy runs a real origin with its clock set ahead behind a
// proxy that adds delays: the estimate's error is the one NTP's symmetric
// assumption must make, (up - down) / 2 for the one-way delays up and
// down, within a couple of milliseconds, and stays within the uncertainty
// it reports. The delays are those the proxy recorded, not the ones it was
// asked for: on a busy machine it forwards late, by different amounts
// each way.
func TestDriftAccuracy(t *testing.T) {
	const offset = 1234 * time.Millisecond
	h, err := origin.NewHandler(origin.Options{Now: func() time.Time { return time.Now().Add(offset) }})
	if err != nil {
		t.Fatal(err)
	}
	// check compares each probe's error with the one its real delays
	// imply and returns those implied errors.
	check := func(t *testing.T, errs, uncs []time.Duration, paths []path, tolerance time.Duration) (implied []time.Duration) {
		t.Helper()
		var residuals []time.Duration
		for i, e := range errs {
			pa := paths[i]
			implied = append(implied, (pa.up-pa.down)/2)
			residuals = append(residuals, e-implied[i])
			t.Logf("probe %d: delays %v up, %v down: error %v, implied %v, uncertainty %v", i, pa.up, pa.down, e, implied[i], uncs[i])
			if abs(e) > uncs[i] {
				t.Errorf("probe %d: error %v exceeds the uncertainty %v", i, e, uncs[i])
			}
			// The uncertainty is half the round trip outside the origin:
			// at least the mean of the proxy's delays, and not much more
			// (the rest is loopback and the two hosts' scheduling).
			oneWay := (pa.up + pa.down) / 2
			if uncs[i] < oneWay-time.Millisecond || uncs[i] > oneWay+15*time.Millisecond {
				t.Errorf("probe %d: uncertainty %v, want about the mean one-way delay %v", i, uncs[i], oneWay)
			}
		}
		if m := median(residuals); abs(m) > tolerance {
			t.Errorf("median error minus the error the real delays imply: %v, want within %v (errors %v, implied %v)", m, tolerance, errs, implied)
		}
		return implied
	}
	t.Run("symmetric", func(t *testing.T) {
		errs, uncs, paths := driftErrors(t, h, offset, 25*time.Millisecond, 25*time.Millisecond, 7)
		check(t, errs, uncs, paths, 2*time.Millisecond)
	})
	t.Run("asymmetric", func(t *testing.T) {
		up, down := 5*time.Millisecond, 45*time.Millisecond
		errs, uncs, paths := driftErrors(t, h, offset, up, down, 7)
		implied := check(t, errs, uncs, paths, 3*time.Millisecond)
		// What NTP's symmetric assumption must get wrong, about (5ms -
		// 45ms) / 2: far enough from zero that an estimator with the
		// asymmetry's sign flipped, or none, fails the check above.
		if m := median(implied); m > -10*time.Millisecond {
			t.Errorf("median implied error %v: the proxy's delays were not asymmetric as asked (%v up, %v down)", m, up, down)
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
	errs, uncs, _ := driftErrors(t, legacy, offset, 10*time.Millisecond, 10*time.Millisecond, 5)
	for i, e := range errs {
		if abs(e) > uncs[i] {
			t.Errorf("probe %d: error %v exceeds the uncertainty %v", i, e, uncs[i])
		}
		if uncs[i] < 500*time.Millisecond {
			t.Errorf("probe %d: uncertainty %v does not include the half second of truncation", i, uncs[i])
		}
	}
}
