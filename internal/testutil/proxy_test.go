package testutil

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// slack bounds how far what the proxy recorded may be from what its peers
// saw: loopback hops and goroutine scheduling, with the race detector on
// a busy machine.
const slack = 5 * time.Millisecond

// stampServer answers every line it reads with the times, in Unix
// nanoseconds, when it had read the line and when it answered.
func stampServer(t *testing.T) string {
	t.Helper()
	return ServeTCP(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			got := time.Now().UnixNano()
			if _, err := fmt.Fprintf(c, "%d %d\n", got, time.Now().UnixNano()); err != nil {
				return
			}
		}
	})
}

// TestDelayProxyRecordsTruth sends requests through the proxy to a
// server that stamps them, and checks the delays the proxy recorded
// against those its peers saw, and the offset error it predicts against
// an NTP-style estimate's real error (the clocks are the same: the true
// offset is 0).
func TestDelayProxyRecordsTruth(t *testing.T) {
	const up, down = 30 * time.Millisecond, 10 * time.Millisecond
	p := StartDelayProxy(t, stampServer(t), up, down)
	c, err := net.Dial("tcp4", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	type sample struct{ trueUp, trueDown, estimate time.Duration }
	var samples []sample
	for range 7 {
		t1 := time.Now()
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		t4 := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(line)
		n2, _ := strconv.ParseInt(f[0], 10, 64)
		n3, _ := strconv.ParseInt(f[1], 10, 64)
		t2, t3 := time.Unix(0, n2), time.Unix(0, n3)
		samples = append(samples, sample{t2.Sub(t1), t4.Sub(t3), (t2.Sub(t1) + t3.Sub(t4)) / 2})
	}

	conns := p.Conns()
	if len(conns) != 1 || !conns[0].Closed.IsZero() {
		t.Fatalf("%d connections recorded, want 1 still open", len(conns))
	}
	exs := p.Exchanges()
	if len(exs) != len(samples) {
		t.Fatalf("%d exchanges, want %d", len(exs), len(samples))
	}
	// Each delay is at least the nominal one. What the peers saw also
	// holds their own scheduling, which a busy machine stretches now and
	// then: most exchanges, not all, must agree with the record.
	var upDiffs, downDiffs, offsetDiffs []time.Duration
	for i, ex := range exs {
		s := samples[i]
		t.Logf("exchange %d: up %v (peers saw %v), down %v (%v), offset error %v (estimate %v), RTT %v",
			i, ex.UpDelay(), s.trueUp, ex.DownDelay(), s.trueDown, ex.OffsetError(), s.estimate, ex.RTT())
		if ex.UpDelay() < up || ex.DownDelay() < down || ex.RTT() < up+down {
			t.Errorf("exchange %d: delays %v up, %v down, RTT %v; want at least %v, %v, %v",
				i, ex.UpDelay(), ex.DownDelay(), ex.RTT(), up, down, up+down)
		}
		upDiffs = append(upDiffs, (s.trueUp - ex.UpDelay()).Abs())
		downDiffs = append(downDiffs, (s.trueDown - ex.DownDelay()).Abs())
		offsetDiffs = append(offsetDiffs, (s.estimate - ex.OffsetError()).Abs())
	}
	for _, d := range []struct {
		what  string
		diffs []time.Duration
	}{{"up delay", upDiffs}, {"down delay", downDiffs}, {"offset error", offsetDiffs}} {
		if m := median(d.diffs); m > slack {
			t.Errorf("%s: recorded and seen differ by %v (median), want at most %v", d.what, m, slack)
		}
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestDelayProxyKeepsChunkTiming writes two chunks 40ms apart: both
// arrive delayed, still 40ms apart.
func TestDelayProxyKeepsChunkTiming(t *testing.T) {
	const up, gap = 50 * time.Millisecond, 40 * time.Millisecond
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	arrived := make(chan []time.Time, 1)
	go func() {
		var at []time.Time
		defer func() { arrived <- at }()
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 16)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			at = append(at, time.Now())
		}
	}()
	p := StartDelayProxy(t, l.Addr().String(), up, 0)
	c, err := net.Dial("tcp4", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	_, _ = c.Write([]byte("a"))
	time.Sleep(gap)
	_, _ = c.Write([]byte("b"))
	_ = c.(*net.TCPConn).CloseWrite()
	at := <-arrived
	_ = c.Close()
	if len(at) != 2 {
		t.Fatalf("upstream read %d times, want 2", len(at))
	}
	if d := at[0].Sub(sent); d < up {
		t.Errorf("first chunk after %v, want at least %v", d, up)
	}
	Eventually(t, 5*time.Second, "the connection finished", func() bool { return p.Finished() == 1 })
	rec := p.Conns()[0]
	if len(rec.Up) != 2 || rec.Up[0].Delay() < up || rec.Up[1].Delay() < up || rec.Err != nil {
		t.Fatalf("recorded %+v", rec)
	}
	// The gap is the one the proxy read (the client's sleep may have
	// overslept), neither squeezed out (as by a proxy that buffers) nor
	// stretched by the delay (as by one that sleeps between writes). The
	// tolerance leaves room for a busy machine's scheduling.
	const tolerance = gap / 2
	read := rec.Up[1].Read.Sub(rec.Up[0].Read)
	written := rec.Up[1].Written.Sub(rec.Up[0].Written)
	arrivedApart := at[1].Sub(at[0])
	if read < gap-tolerance || (written-read).Abs() > tolerance || (arrivedApart-read).Abs() > tolerance {
		t.Errorf("chunks read %v apart, written %v, arrived %v; want about %v each", read, written, arrivedApart, gap)
	}
}

func TestDelayProxyHTTP(t *testing.T) {
	const up, down = 20 * time.Millisecond, 20 * time.Millisecond
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello oxcross")
	}))
	defer ts.Close()
	p, err := NewDelayProxyWithOptions(ts.Listener.Addr().String(), DelayProxyOptions{Up: up, Down: down, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 4 {
		begin := time.Now()
		resp := Do(t, client, http.MethodGet, "http://"+p.Addr()+"/", "")
		if took := time.Since(begin); took < up+down || resp.Code != http.StatusOK || resp.Body != "hello oxcross" {
			t.Errorf("request %d: %d %q in %v, want 200 after at least %v", i, resp.Code, resp.Body, took, up+down)
		}
	}
	Eventually(t, 5*time.Second, "4 connections finished", func() bool { return p.Finished() == 4 })
	conns := p.Conns()
	if len(conns) != 2 {
		t.Fatalf("%d connections kept, want 2", len(conns))
	}
	for _, c := range conns {
		if c.Err != nil || c.Closed.IsZero() || c.Span() < up+down || len(c.Exchanges()) != 1 {
			t.Errorf("connection %+v: want no error, closed, a span of at least %v and one exchange", c, up+down)
		}
	}
}

// TestDelayProxyDownJitter: with DownJitterFraction, some answers wait
// longer on the way back, requests never do, and the records hold the
// delays each really had.
func TestDelayProxyDownJitter(t *testing.T) {
	const base, jitter, n = 2 * time.Millisecond, 20 * time.Millisecond, 40
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello oxcross")
	}))
	defer ts.Close()
	p := StartDelayProxyWithOptions(t, ts.Listener.Addr().String(), DelayProxyOptions{Up: base, Down: base, DownJitterFraction: 0.5, DownJitterMax: jitter})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range n {
		if resp := Do(t, client, http.MethodGet, "http://"+p.Addr()+"/", ""); resp.Code != http.StatusOK {
			t.Fatalf("status %d", resp.Code)
		}
	}
	Eventually(t, 5*time.Second, "every connection finished", func() bool { return p.Finished() == n })
	// A busy machine may add any delay, never take one away: each delay
	// is checked against the least the proxy had to wait, which for the
	// answers is base plus the jitter it drew for that connection.
	conns := p.Conns()
	if len(conns) != n {
		t.Fatalf("%d connections, want %d", len(conns), n)
	}
	jittered := 0
	for i, c := range conns {
		exs := c.Exchanges()
		if len(exs) != 1 {
			t.Fatalf("connection %d: %d exchanges, want 1", i, len(exs))
		}
		ex, j := exs[0], c.DownJitter
		if j < 0 || j >= jitter {
			t.Errorf("connection %d: jitter %v, want within [0, %v)", i, j, jitter)
		}
		if j > 0 {
			jittered++
		}
		if up := ex.UpDelay(); up < base {
			t.Errorf("exchange %d: up delay %v, want at least %v", i, up, base)
		}
		if down := ex.DownDelay(); down < base+j {
			t.Errorf("exchange %d: down delay %v, want at least %v plus its jitter %v", i, down, base, j)
		}
	}
	// Half of the connections draw a jitter: 40 tries make fewer than 5
	// or more than 35 a one-in-millions event.
	if jittered < 5 || jittered > 35 {
		t.Errorf("%d of %d answers drew a jitter, want about half", jittered, n)
	}
	if _, err := NewDelayProxyWithOptions(ts.Listener.Addr().String(), DelayProxyOptions{DownJitterFraction: 1.5}); err == nil {
		t.Error("a jitter fraction of 1.5 accepted")
	}
}

func TestDelayProxyUpstreamDown(t *testing.T) {
	p := StartDelayProxy(t, ClosedAddr(t), 0, 0)
	c, err := net.Dial("tcp4", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("read %d bytes from a proxy to nowhere", n)
	}
	Eventually(t, 5*time.Second, "the connection finished", func() bool { return p.Finished() == 1 })
	if rec := p.Conns()[0]; rec.Err == nil || !strings.Contains(rec.Err.Error(), "dialing upstream") {
		t.Errorf("recorded error %v, want a failed dial", rec.Err)
	}
}

// TestDelayProxyClose closes the proxy under an open, idle connection.
func TestDelayProxyClose(t *testing.T) {
	p, err := NewDelayProxy(stampServer(t), time.Millisecond, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp4", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a connection open")
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("the client's connection is still open after Close")
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
