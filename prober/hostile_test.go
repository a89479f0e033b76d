package prober

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
)

// hostile is a TCP server on loopback that answers every connection with
// serve: an origin that misbehaves on purpose. Close stops it and waits for
// every connection's goroutine.
type hostile struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
	// requests counts the connections served.
	requests atomic.Int64
	closed   chan struct{}
}

func newHostile(t testing.TB, serve func(h *hostile, c net.Conn)) *hostile {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hostile{l: l, closed: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
			h.requests.Add(1)
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				defer c.Close()
				serve(h, c)
			}()
		}
	}()
	t.Cleanup(h.Close)
	return h
}

func (h *hostile) addr() string { return h.l.Addr().String() }

// Close closes the listener and every connection, and waits for the
// server's goroutines to end.
func (h *hostile) Close() {
	h.mu.Lock()
	select {
	case <-h.closed:
		h.mu.Unlock()
		return
	default:
	}
	close(h.closed)
	_ = h.l.Close()
	for _, c := range h.conns {
		_ = c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// sleep waits d or until the server is closed; it reports whether the
// server still runs.
func (h *hostile) sleep(d time.Duration) bool {
	select {
	case <-h.closed:
		return false
	case <-time.After(d):
		return true
	}
}

// readRequest reads a request's head from c, as a server would.
func readRequest(c net.Conn) (*http.Request, *bufio.Reader, error) {
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	return req, br, err
}

// reset closes c with an RST rather than a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// The hostile origins. Each takes the connection after it was accepted.
var (
	// endlessBody answers 200 and sends a body that never ends.
	endlessBody = func(h *hostile, c net.Conn) {
		if _, _, err := readRequest(c); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
		chunk := []byte(strings.Repeat(`{"server_time": "x", "token": "y"} `, 1000))
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}
	// slowBody sends its headers, then one byte of the body a second.
	slowBody = func(h *hostile, c net.Conn) {
		if _, _, err := readRequest(c); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n")
		for h.sleep(time.Second) {
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}
	// slowHeaders sends its status line and headers one byte a second.
	slowHeaders = func(h *hostile, c net.Conn) {
		if _, _, err := readRequest(c); err != nil {
			return
		}
		for _, b := range []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") {
			if _, err := c.Write([]byte{b}); err != nil || !h.sleep(time.Second) {
				return
			}
		}
	}
	// notJSON answers 200 with a body that is not the /oxcross JSON.
	notJSON = func(body string) func(*hostile, net.Conn) {
		return func(h *hostile, c net.Conn) {
			if _, _, err := readRequest(c); err != nil {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
		}
	}
	// redirectLoop redirects every request to the next path, forever.
	redirectLoop = func(h *hostile, c net.Conn) {
		req, _, err := readRequest(c)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 302 Found\r\nLocation: %s/x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", strings.TrimSuffix(req.URL.Path, "/"))
	}
	// hugeHeaders answers with 128 KiB of headers, twice what the leaf reads.
	hugeHeaders = func(h *hostile, c net.Conn) {
		if _, _, err := readRequest(c); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Padding: " + strings.Repeat("p", 1000) + "\r\n"
		for range 128 {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
		_, _ = io.WriteString(c, "Content-Length: 2\r\n\r\nok")
	}
	// silent reads the request and never answers.
	silent = func(h *hostile, c net.Conn) {
		if _, _, err := readRequest(c); err != nil {
			return
		}
		h.sleep(time.Hour)
	}
	// deaf accepts and never reads or writes (a stalled TLS handshake, to
	// a leaf that sent its ClientHello).
	deaf = func(h *hostile, c net.Conn) { h.sleep(time.Hour) }
	// resetMidBody sends headers and part of the body, then an RST.
	resetMidBody = func(h *hostile, c net.Conn) {
		if _, _, err := readRequest(c); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("x", 1000))
		// Give the leaf a moment to read what came before the RST. Not a
		// wait for a condition the test checks (the server cannot see the
		// leaf read): a reset before the answer ends with the same reason.
		time.Sleep(50 * time.Millisecond)
		reset(c)
	}
	// resetBeforeAnswer reads the request and resets the connection.
	resetBeforeAnswer = func(h *hostile, c net.Conn) {
		if _, _, err := readRequest(c); err != nil {
			return
		}
		reset(c)
	}
	// closeMidBody sends part of a body and closes the connection (a FIN).
	closeMidBody = func(h *hostile, c net.Conn) {
		if _, _, err := readRequest(c); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("x", 1000))
	}
	// closeBeforeAnswer reads the request and closes the connection.
	closeBeforeAnswer = func(h *hostile, c net.Conn) { _, _, _ = readRequest(c) }
	// garbage answers something that is not HTTP.
	garbage = func(h *hostile, c net.Conn) {
		if _, _, err := readRequest(c); err != nil {
			return
		}
		_, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 not http at all\r\n\r\n")
	}
)

var followRedirects = httpModule(HTTPSettings{FollowRedirects: true})

// hostileCases are the hostile origins, each with the module it is probed
// with and the reason the probe must end with. quick cases end long before
// the timeout; the others at it.
var hostileCases = []struct {
	name   string
	serve  func(*hostile, net.Conn)
	module config.Module
	scheme string
	want   Reason
	quick  bool
	// requests is how many connections the probe makes, when it matters.
	requests int64
}{
	{"endless body", endlessBody, simpleModule, "http", ReasonBodyTooLarge, true, 1},
	{"endless body, advanced", endlessBody, advancedModule, "http", ReasonBodyTooLarge, true, 1},
	{"one byte a second (body)", slowBody, simpleModule, "http", ReasonTimeout, false, 1},
	{"one byte a second (headers)", slowHeaders, simpleModule, "http", ReasonTimeout, false, 1},
	{"not JSON", notJSON("<html>hello</html>"), advancedModule, "http", ReasonInvalidResponse, true, 1},
	{"JSON, not /oxcross", notJSON(`{"status": "ok"}`), advancedModule, "http", ReasonInvalidResponse, true, 1},
	{"JSON array", notJSON(`[1, 2, 3]`), advancedModule, "http", ReasonInvalidResponse, true, 1},
	{"deeply nested JSON", notJSON(strings.Repeat("[", 100000)), advancedModule, "http", ReasonInvalidResponse, true, 1},
	{"redirect loop, followed", redirectLoop, followRedirects, "http", ReasonHTTPStatus, true, maxRedirects + 1},
	{"redirect loop, not followed", redirectLoop, simpleModule, "http", ReasonHTTPStatus, true, 1},
	{"enormous headers", hugeHeaders, simpleModule, "http", ReasonInvalidResponse, true, 1},
	{"not HTTP", garbage, simpleModule, "http", ReasonInvalidResponse, true, 1},
	{"accepts, never answers", silent, simpleModule, "http", ReasonTimeout, false, 1},
	{"accepts, never answers, advanced", silent, advancedModule, "http", ReasonTimeout, false, 1},
	{"TLS handshake stalls", deaf, simpleModule, "https", ReasonTimeout, false, 1},
	{"reset mid-response", resetMidBody, simpleModule, "http", ReasonConnect, true, 1},
	{"reset before the answer", resetBeforeAnswer, simpleModule, "http", ReasonConnect, true, 1},
	{"closed mid-response", closeMidBody, simpleModule, "http", ReasonConnect, true, 1},
	{"closed before the answer", closeBeforeAnswer, simpleModule, "http", ReasonConnect, true, 1},
}

var (
	simpleModule   = builtinModules["simple"]
	advancedModule = builtinModules["advanced"]
)

// hostileTimeout is the probes' timeout against hostile origins; the slow
// origins send a byte a second, so that they get more than one out.
const hostileTimeout = 1500 * time.Millisecond

// TestHostileOrigins: every hostile origin ends the probe as a failure
// with its fixed reason, within the timeout (the quick ones well before),
// and leaves no goroutine behind on either side once the origin is gone.
func TestHostileOrigins(t *testing.T) {
	for _, tc := range hostileCases {
		t.Run(tc.name, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			h := newHostile(t, tc.serve)
			path := "/"
			if tc.module.Kind == "oxcross" {
				path = "/oxcross"
			}
			tg := urlTarget(tc.scheme + "://" + h.addr() + path)
			start := time.Now()
			r := probeModule(t, tc.module, tg, hostileTimeout)
			took := time.Since(start)
			checkReason(t, r, tc.want)
			limit := hostileTimeout + 500*time.Millisecond
			if tc.quick {
				limit = hostileTimeout / 2
			}
			if took > limit {
				t.Errorf("probe took %s, want at most %s", took, limit)
			}
			if !tc.quick && took < hostileTimeout-100*time.Millisecond {
				t.Errorf("probe ended after %s, before its timeout %s: the origin should have held it", took, hostileTimeout)
			}
			if got := h.requests.Load(); tc.requests != 0 && got != tc.requests {
				t.Errorf("%d connections, want %d", got, tc.requests)
			}
			t.Logf("%s after %s (status %d): %v", r.Reason, took.Round(time.Millisecond), r.StatusCode, r.Err)
			h.Close()
			goleak.VerifyNone(t, ignore)
		})
	}
}

// TestHostileMemory: 20 probes of an origin with an endless body each read
// at most the body limit: the heap allocated per probe stays near the
// limit, and nothing is kept afterwards.
func TestHostileMemory(t *testing.T) {
	h := newHostile(t, endlessBody)
	for _, tc := range []struct {
		name    string
		maxBody int64
		// perProbe bounds the bytes allocated per probe: a few times the
		// limit (the body buffer grows by doubling, and more so under
		// -race), plus the transport's buffers, however long the body.
		perProbe uint64
	}{
		{"64 KiB limit", 64 << 10, 1 << 20},
		{"default 1 MiB limit", 0, 6 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := config.Module{Kind: "http", MaxBodyBytes: tc.maxBody}
			tg := urlTarget("http://" + h.addr() + "/")
			p := newTestProber()
			probe := func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				r := p.Probe(ctx, &tg, &m, nil)
				checkReason(t, r, ReasonBodyTooLarge)
			}
			probe() // the client and its transport exist from now on
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			const n = 20
			for range n {
				probe()
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			perProbe := (after.TotalAlloc - before.TotalAlloc) / n
			retained := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			t.Logf("%d probes of an endless body: %.0f KiB allocated per probe, heap %+.0f KiB after GC", n, float64(perProbe)/1024, float64(retained)/1024)
			if perProbe > tc.perProbe {
				t.Errorf("%d bytes allocated per probe, want at most %d", perProbe, tc.perProbe)
			}
			if retained > 2<<20 {
				t.Errorf("heap grew by %d bytes over %d probes, want under 2 MiB", retained, n)
			}
		})
	}
}

// TestHostileOriginsScheduled: hostile origins scheduled next to a healthy
// one fail with their reasons while the healthy one keeps its schedule:
// every slot probed, none skipped, on time.
func TestHostileOriginsScheduled(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	reg := prometheus.NewRegistry()
	s := NewScheduler(SchedulerOptions{Prober: newTestProber(), Metrics: NewMetrics(reg), LeafID: testLeafID, Logger: discard})

	var (
		mu    sync.Mutex
		times []time.Time
	)
	healthy := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	const interval = 250 * time.Millisecond
	targets := []config.Target{{ID: "healthy", URL: healthy.URL + "/", Module: "simple", Interval: interval, Timeout: 200 * time.Millisecond}}
	var servers []*hostile
	want := map[string]Reason{}
	for i, tc := range hostileCases {
		if s, _ := tc.module.Settings.(*HTTPSettings); s != nil && s.FollowRedirects {
			continue // a custom module; the scheduler test uses the built-in ones
		}
		h := newHostile(t, tc.serve)
		servers = append(servers, h)
		path, module := "/", "simple"
		if tc.module.Kind == "oxcross" {
			path, module = "/oxcross", "advanced"
		}
		id := fmt.Sprintf("hostile-%d", i)
		want[id] = tc.want
		targets = append(targets, config.Target{ID: id, URL: tc.scheme + "://" + h.addr() + path, Module: module, Interval: time.Second, Timeout: 900 * time.Millisecond})
	}
	s.Apply(origins(targets...))
	// The assertions are about what the scheduler does in a given time
	// (the healthy origin's rate and gaps): the window is the measurement,
	// not a wait for a condition. Over the same window, lateWakes counts
	// how often the machine itself woke a plain timer at the healthy
	// origin's interval late by a fifth of it or more: a busy machine
	// (other processes on the cores) can cost the healthy origin a slot
	// that no hostile origin took.
	const window = 3 * time.Second
	watch := testutil.WatchTimers(interval, interval/5)
	time.Sleep(window)
	lateWakes := watch.Stop()
	s.Stop()
	for _, h := range servers {
		h.Close()
	}

	mu.Lock()
	defer mu.Unlock()
	// The healthy origin: about one probe per interval from its first
	// slot on, none skipped, no gap much longer than the interval; but
	// for the slots the machine's own lateness may have cost, at most one
	// per late wake (none on an idle machine).
	if n, min := len(times), int(window/interval)-2-lateWakes; n < min {
		t.Errorf("healthy origin probed %d times in %s at %s, want at least %d (%d late wakes of the machine)", n, window, interval, min, lateWakes)
	}
	var maxGap time.Duration
	for i := 1; i < len(times); i++ {
		maxGap = max(maxGap, times[i].Sub(times[i-1]))
	}
	// A skipped or late slot would leave a gap of two intervals.
	if maxGap > interval*9/5+time.Duration(lateWakes)*interval {
		t.Errorf("longest gap between the healthy origin's probes %s, interval %s (%d late wakes of the machine)", maxGap, interval, lateWakes)
	}
	if v := testutil.MetricValue(t, reg, "oxcross_leaf_probe_skipped_total", labelOrigin, "healthy", labelLeafID, testLeafID); v > float64(lateWakes) {
		t.Errorf("healthy origin skipped %v slots (%d late wakes of the machine)", v, lateWakes)
	}
	if ok := okCount(t, reg, "healthy"); int(ok) < len(times)-1 {
		t.Errorf("healthy origin: %v successes for %d probes", ok, len(times))
	}
	for id, reason := range want {
		v := testutil.MetricValue(t, reg, "oxcross_leaf_probe_results", labelOrigin, id, labelLeafID, testLeafID, labelResult, "false", labelReason, string(reason))
		if v < 1 {
			t.Errorf("%s: no failure with reason %s", id, reason)
		}
	}
	t.Logf("healthy: %d probes in %s, longest gap %s; %d hostile origins failed with their reasons; the machine woke a timer late %d times", len(times), window, maxGap.Round(time.Millisecond), len(want), lateWakes)
	healthy.Close()
	goleak.VerifyNone(t, ignore)
}
