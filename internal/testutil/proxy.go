package testutil

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

const (
	// chunkSize is the most the proxy reads at once.
	chunkSize = 32 << 10
	// spin is how long before a chunk is due the proxy stops sleeping
	// and spins: Go's timers wake up to a millisecond late on an idle
	// Linux machine (epoll waits in whole milliseconds).
	spin = 2 * time.Millisecond
	// linger is how long a connection may stay open one way once the
	// other way has ended.
	linger = 5 * time.Second
	// dialTimeout bounds the dial to upstream.
	dialTimeout = 10 * time.Second
)

// DelayProxyOptions configures a DelayProxy.
type DelayProxyOptions struct {
	// Up delays every chunk on its way to upstream, Down every chunk on
	// its way back to the client.
	Up, Down time.Duration
	// Keep bounds how many finished connections' records the proxy keeps
	// (the latest); zero keeps them all. Open connections are always
	// recorded.
	Keep int
	// DownJitterFraction of the connections, chosen at random, have their
	// answer wait a further random delay in [0, DownJitterMax) on its way
	// back, on top of Down: queueing on the return path only. Every chunk
	// of such an answer waits the same extra, so that they keep their
	// order. The records hold the delays the chunks really had.
	DownJitterFraction float64
	DownJitterMax      time.Duration
}

// DelayProxy forwards TCP connections from a listener on 127.0.0.1 to an
// upstream address, holding every chunk it reads back by a fixed delay
// each way: a network path with a known one-way delay in each direction.
// A chunk read at time t is written at t + delay, so the timing between
// chunks is kept. The proxy dials upstream while it already reads the
// client, so the dial adds nothing to the delay. It half-closes as its
// peers do.
//
// It records what actually happened, as a test should compare with the
// truth rather than with the nominal delay: for each connection, when
// each chunk was read and when it was written on (see Conns and
// Exchanges).
//
// It does not need a test: a benchmark program may run it.
type DelayProxy struct {
	l        net.Listener
	upstream string
	opts     DelayProxyOptions

	mu       sync.Mutex
	conns    []*proxyConn // in accept order: the open ones and the last finished ones
	finished int
	closed   bool

	wg sync.WaitGroup
}

// ConnRecord is what a DelayProxy saw of one connection.
type ConnRecord struct {
	// Accepted is when the proxy accepted the client's connection,
	// Closed when it closed both ends (zero while open).
	Accepted, Closed time.Time
	// Up are the chunks from the client to upstream, Down those from
	// upstream to the client, each in order.
	Up, Down []Chunk
	// Err is why the proxy gave up on the connection: a failed dial to
	// upstream or a failed write. Nil when both ends ended normally.
	Err error
	// DownJitter is the further delay this connection's answers were
	// given beyond DelayProxyOptions.Down (zero without jitter).
	DownJitter time.Duration
}

// Chunk is one read of the proxy and the write that passed it on.
type Chunk struct {
	// Size is the chunk's length in bytes.
	Size int
	// Read is when the proxy had read it, Written when it wrote it on,
	// just before the write (recorded then, so that a peer never has a
	// chunk the record lacks). Written is zero when the write failed.
	Read, Written time.Time
}

// Exchange is one request and its response on a connection: a run of
// chunks toward upstream and the run of chunks back that follows it. A
// protocol where upstream speaks first has an exchange without a request.
type Exchange struct {
	Request, Response []Chunk
}

// NewDelayProxy starts a proxy to upstream delaying each chunk by up on
// its way there and by down on its way back, recording every connection.
// Close stops it.
func NewDelayProxy(upstream string, up, down time.Duration) (*DelayProxy, error) {
	return NewDelayProxyWithOptions(upstream, DelayProxyOptions{Up: up, Down: down})
}

// NewDelayProxyWithOptions starts a proxy to upstream as o says. Close
// stops it.
func NewDelayProxyWithOptions(upstream string, o DelayProxyOptions) (*DelayProxy, error) {
	if o.Up < 0 || o.Down < 0 || o.Keep < 0 || o.DownJitterFraction < 0 || o.DownJitterFraction > 1 || o.DownJitterMax < 0 {
		return nil, fmt.Errorf("delay proxy: negative delay, Keep or jitter, or a jitter fraction beyond 1, in %+v", o)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("delay proxy: listening: %w", err)
	}
	p := &DelayProxy{l: l, upstream: upstream, opts: o}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// StartDelayProxy is NewDelayProxy for a test: it fails the test when the
// proxy does not start and closes the proxy at the end of the test.
func StartDelayProxy(t testing.TB, upstream string, up, down time.Duration) *DelayProxy {
	t.Helper()
	p, err := NewDelayProxy(upstream, up, down)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// StartDelayProxyWithOptions is NewDelayProxyWithOptions for a test, as
// StartDelayProxy.
func StartDelayProxyWithOptions(t testing.TB, upstream string, o DelayProxyOptions) *DelayProxy {
	t.Helper()
	p, err := NewDelayProxyWithOptions(upstream, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// Addr returns the address clients connect to, host:port.
func (p *DelayProxy) Addr() string { return p.l.Addr().String() }

// Close stops the proxy: it closes its listener and every open
// connection, and waits until it has stopped.
func (p *DelayProxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.l.Close()
	for _, pc := range p.conns {
		pc.closeAll()
	}
	p.mu.Unlock()
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("delay proxy: closing the listener: %w", err)
	}
	return nil
}

// Conns returns copies of the records of the connections the proxy has
// accepted, open and finished (at most Keep of those), in accept order.
func (p *DelayProxy) Conns() []ConnRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ConnRecord, len(p.conns))
	for i, pc := range p.conns {
		out[i] = pc.rec
		out[i].Up = slices.Clone(pc.rec.Up)
		out[i].Down = slices.Clone(pc.rec.Down)
	}
	return out
}

// Finished returns how many connections have finished, including those
// whose records are no longer kept.
func (p *DelayProxy) Finished() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.finished
}

// Exchanges returns the exchanges of every recorded connection, in the
// order their first chunks were read: the i-th request made through the
// proxy, one after another, is the i-th exchange.
func (p *DelayProxy) Exchanges() []Exchange {
	var out []Exchange
	for _, r := range p.Conns() {
		out = append(out, r.Exchanges()...)
	}
	slices.SortStableFunc(out, func(a, b Exchange) int { return a.first().Compare(b.first()) })
	return out
}

// Exchanges splits the connection's chunks, in the order they were read,
// into requests and responses.
func (r ConnRecord) Exchanges() []Exchange {
	var (
		out  []Exchange
		cur  Exchange
		i, j int
	)
	for i < len(r.Up) || j < len(r.Down) {
		if j == len(r.Down) || (i < len(r.Up) && !r.Up[i].Read.After(r.Down[j].Read)) {
			if len(cur.Response) > 0 {
				out = append(out, cur)
				cur = Exchange{}
			}
			cur.Request = append(cur.Request, r.Up[i])
			i++
		} else {
			cur.Response = append(cur.Response, r.Down[j])
			j++
		}
	}
	if len(cur.Request) > 0 || len(cur.Response) > 0 {
		out = append(out, cur)
	}
	return out
}

// Span runs from the accept to the last chunk written to the client: how
// long the connection took as the client saw it. Zero without a chunk
// written to the client.
func (r ConnRecord) Span() time.Duration {
	for _, c := range slices.Backward(r.Down) {
		if !c.Written.IsZero() {
			return c.Written.Sub(r.Accepted)
		}
	}
	return 0
}

// Delay returns how long the proxy held the chunk back, from its read to
// its write; zero when the write failed.
func (c Chunk) Delay() time.Duration {
	if c.Written.IsZero() {
		return 0
	}
	return c.Written.Sub(c.Read)
}

// UpDelay returns the delay of the request's last chunk, the one after
// which upstream has the whole request: the one-way delay toward
// upstream that this exchange actually had, but for the loopback hops.
// Zero without a request.
func (e Exchange) UpDelay() time.Duration {
	if len(e.Request) == 0 {
		return 0
	}
	return e.Request[len(e.Request)-1].Delay()
}

// DownDelay returns the delay of the response's first chunk, the one
// that gives the client the response's first byte: the one-way delay back
// that this exchange actually had, but for the loopback hops. Zero
// without a response.
func (e Exchange) DownDelay() time.Duration {
	if len(e.Response) == 0 {
		return 0
	}
	return e.Response[0].Delay()
}

// OffsetError returns the error the proxy's delays cause in an NTP-style
// estimate of upstream's clock offset, ((t2 - t1) + (t3 - t4)) / 2, taken
// over this exchange, with t1 when the request was sent, t2 when upstream
// had it, t3 when upstream answered and t4 when the client had the first
// byte: (UpDelay - DownDelay) / 2. An estimate minus the true offset
// should come within the loopback hops' few microseconds (and the
// client's and upstream's own timestamping) of this.
func (e Exchange) OffsetError() time.Duration {
	return (e.UpDelay() - e.DownDelay()) / 2
}

// RTT returns the round trip the proxy saw: from reading the request's
// first byte to writing the response's first byte. Zero without both.
func (e Exchange) RTT() time.Duration {
	if len(e.Request) == 0 || len(e.Response) == 0 || e.Response[0].Written.IsZero() {
		return 0
	}
	return e.Response[0].Written.Sub(e.Request[0].Read)
}

// first is when the exchange's first chunk was read.
func (e Exchange) first() time.Time {
	switch {
	case len(e.Request) > 0:
		return e.Request[0].Read
	case len(e.Response) > 0:
		return e.Response[0].Read
	}
	return time.Time{}
}

// proxyConn is one proxied connection. Its fields are guarded by
// DelayProxy.mu.
type proxyConn struct {
	rec              ConnRecord
	client, upstream net.Conn // upstream is nil until dialed
	done             bool
}

// closeAll closes both ends of the connection.
func (pc *proxyConn) closeAll() {
	_ = pc.client.Close()
	if pc.upstream != nil {
		_ = pc.upstream.Close()
	}
}

func (p *DelayProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		pc := &proxyConn{rec: ConnRecord{Accepted: time.Now()}, client: c}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			return
		}
		p.conns = append(p.conns, pc)
		p.wg.Add(1)
		p.mu.Unlock()
		go p.forward(pc)
	}
}

// forward proxies one connection until both ways have ended.
func (p *DelayProxy) forward(pc *proxyConn) {
	defer p.wg.Done()
	client := pc.client
	fromClient := readChunks(client)
	u, err := net.DialTimeout("tcp", p.upstream, dialTimeout)
	if err != nil {
		_ = client.Close()
		for range fromClient {
		}
		p.finish(pc, fmt.Errorf("dialing upstream %s: %w", p.upstream, err))
		return
	}
	p.mu.Lock()
	pc.upstream = u
	if p.closed {
		pc.closeAll() // the copies below then end at once
	}
	p.mu.Unlock()
	fromUpstream := readChunks(u)

	errs := make(chan error, 2)
	go func() {
		err := p.delayWrite(pc, u, fromClient, p.opts.Up, true)
		// The client has ended its side: upstream may not keep its own
		// open for long.
		_ = u.SetReadDeadline(time.Now().Add(linger))
		errs <- err
	}()
	go func() {
		down := p.opts.Down
		if p.opts.DownJitterMax > 0 && rand.Float64() < p.opts.DownJitterFraction {
			j := rand.N(p.opts.DownJitterMax)
			down += j
			p.mu.Lock()
			pc.rec.DownJitter = j
			p.mu.Unlock()
		}
		err := p.delayWrite(pc, client, fromUpstream, down, false)
		_ = client.SetReadDeadline(time.Now().Add(linger))
		errs <- err
	}()
	err = errors.Join(<-errs, <-errs)
	_ = client.Close()
	_ = u.Close()
	p.finish(pc, err)
}

// finish records the end of a connection and forgets the oldest finished
// connections beyond Keep.
func (p *DelayProxy) finish(pc *proxyConn, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc.rec.Closed = time.Now()
	pc.rec.Err = err
	pc.done = true
	p.finished++
	if p.opts.Keep == 0 {
		return
	}
	done := 0
	for _, c := range p.conns {
		if c.done {
			done++
		}
	}
	p.conns = slices.DeleteFunc(p.conns, func(c *proxyConn) bool {
		if c.done && done > p.opts.Keep {
			done--
			return true
		}
		return false
	})
}

// chunk is one read, stamped with when it ended.
type chunk struct {
	b    []byte
	read time.Time
}

// readChunks reads src into chunks until src ends.
func readChunks(src net.Conn) <-chan chunk {
	ch := make(chan chunk, 64)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, chunkSize)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{buf[:n], time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// delayWrite writes each chunk of ch to dst delay after it was read,
// records it, and half-closes dst when ch ends. After a failed write it
// closes dst and drops the rest.
func (p *DelayProxy) delayWrite(pc *proxyConn, dst net.Conn, ch <-chan chunk, delay time.Duration, up bool) error {
	var failed error
	for c := range ch {
		if failed != nil {
			continue
		}
		waitUntil(c.read.Add(delay))
		// Recorded before the write, so that whoever has the chunk
		// finds it in the record.
		recs := &pc.rec.Down
		if up {
			recs = &pc.rec.Up
		}
		p.mu.Lock()
		*recs = append(*recs, Chunk{Size: len(c.b), Read: c.read, Written: time.Now()})
		i := len(*recs) - 1
		p.mu.Unlock()
		if _, err := dst.Write(c.b); err != nil {
			failed = fmt.Errorf("writing to %s: %w", dst.RemoteAddr(), err)
			_ = dst.Close()
			p.mu.Lock()
			(*recs)[i].Written = time.Time{}
			p.mu.Unlock()
		}
	}
	if failed == nil {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}
	return failed
}

// waitUntil returns at due, not a millisecond later: it sleeps all but
// the last moments and spins through those.
func waitUntil(due time.Time) {
	if d := time.Until(due) - spin; d > 0 {
		time.Sleep(d)
	}
	for time.Now().Before(due) {
		runtime.Gosched()
	}
}
