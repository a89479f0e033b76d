package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
)

// fakeConfigserver stands in for the configserver where the real one
// cannot produce a fault: it answers /config and heartbeats as the mode
// says, and goes down and up again on the same port.
type fakeConfigserver struct {
	addr    string
	mode    atomic.Value // string
	body    atomic.Value // string: the config it serves
	mu      sync.Mutex
	srv     *http.Server
	release chan struct{}
	fetches atomic.Int64
}

// The fake's modes.
const (
	modeOK      = "ok"
	modeHang    = "hang"    // accepts, reads the request, never answers
	mode500     = "500"     // 500 to everything
	modeGarbage = "garbage" // 200 with a body that is no config
	modeRefused = "refused" // 200 with a config the leaf's limits refuse
)

func newFakeConfigserver(t *testing.T, body string) *fakeConfigserver {
	t.Helper()
	f := &fakeConfigserver{addr: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)), release: make(chan struct{})}
	f.mode.Store(modeOK)
	f.body.Store(body)
	f.up(t)
	t.Cleanup(func() {
		close(f.release)
		f.down()
	})
	return f
}

func (f *fakeConfigserver) url() string { return "http://" + f.addr }

// up listens on the fake's port again.
func (f *fakeConfigserver) up(t *testing.T) {
	t.Helper()
	var l net.Listener
	testutil.EventuallyReason(t, 5*time.Second, "the fake configserver's port free again", func() string {
		var err error
		if l, err = net.Listen("tcp", f.addr); err != nil {
			return err.Error()
		}
		return ""
	})
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// down closes the listener and every connection: the port refuses.
func (f *fakeConfigserver) down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.srv != nil {
		_ = f.srv.Close()
		f.srv = nil
	}
}

func (f *fakeConfigserver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	mode := f.mode.Load().(string)
	if r.URL.Path == "/config" {
		f.fetches.Add(1)
	}
	switch mode {
	case modeHang:
		select {
		case <-r.Context().Done():
		case <-f.release:
		}
		return
	case mode500:
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/v1/leaves/"):
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		_, _ = io.WriteString(w, "{}")
	case r.URL.Path == "/config" && mode == modeGarbage:
		_, _ = io.WriteString(w, "\x00\x01<html>{{{ this is no config")
	case r.URL.Path == "/config" && mode == modeRefused:
		_, _ = io.WriteString(w, "interval: 10ms\norigins:\n  - url: http://127.0.0.1:9/\n    mode: simple\n")
	case r.URL.Path == "/config":
		body := f.body.Load().(string)
		etag := config.ETag([]byte(body))
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = io.WriteString(w, body)
	default:
		http.NotFound(w, r)
	}
}

// resetter is an origin that resets every connection once it has read
// the request.
func resetter(t *testing.T) string {
	t.Helper()
	return testutil.ServeTCP(t, func(c net.Conn) {
		_, _ = http.ReadRequest(bufio.NewReader(c))
		_ = c.(*net.TCPConn).SetLinger(0)
		_ = c.Close()
	})
}

// metric returns the value of the one series of the metric name in m, 0
// when there is none.
func metric(t *testing.T, m prometheus.Gatherer, name string) float64 {
	t.Helper()
	v, _ := testutil.LookupMetric(t, m, name)
	return v
}

const (
	metricFailures = "oxcross_leaf_config_refresh_failures_total"
	metricSuccess  = "oxcross_leaf_config_last_refresh_success_timestamp_seconds"
)

// TestLeafConfigserverFaults: the configserver goes down, hangs, answers
// 500, garbage and a config beyond the leaf's limits. Through each the leaf
// keeps probing with its last good config on schedule, logs why, counts
// the failures and keeps its last success time; it picks up again when the
// configserver recovers. Restarted with the configserver down it starts
// from its cache; with a corrupt cache it stays up, unready, saying why,
// until the configserver answers.
func TestLeafConfigserverFaults(t *testing.T) {
	op := testutil.FreePort(t)
	originAddr := fmt.Sprintf("127.0.0.1:%d", op)
	start(t, "oxcross-origin", nil, "--web.listen-address="+originAddr)
	waitHealthy(t, originAddr)
	const interval = 500 * time.Millisecond
	config := fmt.Sprintf("interval: 500ms\ntimeout: 400ms\norigins:\n  - name: adv\n    url: http://%s\n    mode: advanced\n", originAddr)
	withResetter := config + fmt.Sprintf("  - name: resetter\n    url: http://%s/\n    mode: simple\n", resetter(t))
	cs := newFakeConfigserver(t, withResetter)
	cache := filepath.Join(t.TempDir(), "cache.json")
	leafAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	startLeaf := func() *proc {
		p := start(t, "oxcross-leaf", nil, "--web.listen-address="+leafAddr, "--leaf.id=leaf-faults",
			"--config.url="+cs.url(), "--config.refresh-interval=500ms", "--config.min-interval=100ms",
			"--config.cache-file="+cache, "--log.level=debug")
		waitHealthy(t, leafAddr)
		return p
	}
	leaf := startLeaf()
	testutil.EventuallyReason(t, 15*time.Second, "adv probed, the resetter failing", func() string {
		m := scrape(t, leafAddr)
		if okCount(t, m, "adv") < 2 {
			return "adv not probed yet"
		}
		if v := testutil.MetricSum(t, m, "oxcross_leaf_probe_results", "origin_id", "resetter", "reason", "connect"); v < 1 {
			return "resetter not failing with connect"
		}
		return ""
	})
	checkLabels(t, scrape(t, leafAddr), "leaf-faults", "adv", "resetter")

	faults := []struct {
		mode string
		log  string // what the leaf's log says about it
	}{
		{"down", "connection refused"},
		{modeHang, "deadline exceeded"},
		{mode500, "status 500"},
		{modeGarbage, "parsing config"},
		{modeRefused, "shorter than the minimum interval 100ms (--config.min-interval)"},
	}
	for _, fault := range faults {
		m := scrape(t, leafAddr)
		failures0, ok0, t0 := metric(t, m, metricFailures), okCount(t, m, "adv"), time.Now()
		// How late this machine runs timers meanwhile: a busy machine
		// costs the leaf's scheduler slots that no fault took.
		watch := testutil.WatchTimers(interval, interval/5)
		logBefore := len(leaf.log.String())
		if fault.mode == "down" {
			cs.down()
		} else {
			cs.mode.Store(fault.mode)
		}
		// Two failures counted; from then on the success time stays.
		var success float64
		testutil.EventuallyReason(t, 15*time.Second, fault.mode+": failures counted", func() string {
			m := scrape(t, leafAddr)
			if f := metric(t, m, metricFailures); f < failures0+2 {
				return fmt.Sprintf("%v refresh failures, were %v", f, failures0)
			}
			success = metric(t, m, metricSuccess)
			return ""
		})
		time.Sleep(time.Second)
		m = scrape(t, leafAddr)
		elapsed := time.Since(t0)
		lateWakes := watch.Stop()
		if s := metric(t, m, metricSuccess); s != success {
			t.Errorf("%s: last refresh success moved from %v to %v during the fault", fault.mode, success, s)
		}
		// The origin is probed on schedule all along: but for the slots
		// the machine's own lateness may have cost, at most one per late
		// wake of a timer at the same interval (none on an idle machine).
		if got, want := okCount(t, m, "adv")-ok0, float64(elapsed/interval)-2-float64(lateWakes); got < want {
			t.Errorf("%s: adv probed %v times in %s at %s, want at least %v (%d late wakes of the machine)", fault.mode, got, elapsed.Round(time.Millisecond), interval, want, lateWakes)
		}
		if resp := testutil.Do(t, nil, http.MethodGet, "http://"+leafAddr+"/-/ready", ""); resp.Code != http.StatusOK {
			t.Errorf("%s: /-/ready = %d %s, want 200 with the last good config", fault.mode, resp.Code, resp.Body)
		}
		log := leaf.log.String()[logBefore:]
		if !strings.Contains(log, "keeping the last good config") || !strings.Contains(log, fault.log) {
			t.Errorf("%s: the leaf's log does not say it keeps its config because of %q:\n%s", fault.mode, fault.log, log)
		}
		t.Logf("%s: %v failures in %s, adv probed %v times, success time kept", fault.mode,
			metric(t, m, metricFailures)-failures0, elapsed.Round(time.Millisecond), okCount(t, m, "adv")-ok0)

		// Recovery: the next refresh succeeds.
		if fault.mode == "down" {
			cs.up(t)
		}
		cs.mode.Store(modeOK)
		testutil.EventuallyReason(t, 10*time.Second, fault.mode+": recovered", func() string {
			if s := metric(t, scrape(t, leafAddr), metricSuccess); s <= success {
				return "no successful refresh yet"
			}
			return ""
		})
	}

	// An origin removed from the config loses its series.
	cs.body.Store(config)
	testutil.EventuallyReason(t, 10*time.Second, "removed origin's series gone", func() string {
		m := scrape(t, leafAddr)
		if hasSeries(t, m, "oxcross_leaf_probe_results", "origin_id", "resetter") {
			return "resetter still has series"
		}
		return ""
	})
	testutil.EventuallyReason(t, 10*time.Second, "cache written", func() string {
		if b, err := os.ReadFile(cache); err != nil || strings.Contains(string(b), "resetter") {
			return fmt.Sprintf("cache: %v %s", err, b)
		}
		return ""
	})

	// Restart with the configserver down: the leaf starts from its cache.
	if err := leaf.stop(t); err != nil {
		t.Fatalf("leaf exit: %v", err)
	}
	cs.down()
	leaf = startLeaf()
	testutil.EventuallyReason(t, 10*time.Second, "probing from the cache", func() string {
		m := scrape(t, leafAddr)
		if v := metric(t, m, "oxcross_leaf_config_from_cache"); v != 1 {
			return fmt.Sprintf("from_cache = %v", v)
		}
		if okCount(t, m, "adv") < 2 {
			return "adv not probed"
		}
		return ""
	})

	// A corrupt cache, the configserver still down: reported, ignored; the
	// leaf runs, unready, and says why.
	if err := leaf.stop(t); err != nil {
		t.Fatalf("leaf exit: %v", err)
	}
	testutil.WriteFile(t, cache, `{"interval": "500ms", "origins": [{"name": "adv", "url": "http://`)
	leaf = startLeaf()
	testutil.EventuallyReason(t, 10*time.Second, "unready with the reason", func() string {
		resp, err := testutil.TryDo(nil, http.MethodGet, "http://"+leafAddr+"/-/ready", "")
		if err != nil {
			return err.Error()
		}
		if resp.Code != http.StatusServiceUnavailable || !strings.Contains(resp.Body, "connection refused") || !strings.Contains(resp.Body, "cache") {
			return fmt.Sprintf("/-/ready = %d %q", resp.Code, resp.Body)
		}
		if !strings.Contains(leaf.log.String(), "No usable config cache") {
			return "the log does not report the cache"
		}
		return ""
	})
	if hasSeries(t, scrape(t, leafAddr), "oxcross_leaf_probe_results", "origin_id", "adv") {
		t.Errorf("the leaf probes with a corrupt cache")
	}
	// The configserver comes back: the leaf is ready and probing.
	cs.up(t)
	testutil.EventuallyReason(t, 15*time.Second, "ready once the configserver answers", func() string {
		resp, err := testutil.TryDo(nil, http.MethodGet, "http://"+leafAddr+"/-/ready", "")
		if err != nil {
			return err.Error()
		}
		if resp.Code != http.StatusOK {
			return fmt.Sprintf("/-/ready = %d %q", resp.Code, resp.Body)
		}
		if okCount(t, scrape(t, leafAddr), "adv") < 1 {
			return "adv not probed"
		}
		return ""
	})
	if err := leaf.stop(t); err != nil {
		t.Errorf("leaf exit: %v", err)
	}
}

// reasons and phases are the fixed sets label values come from.
var (
	fixedReasons = map[string]bool{"ok": true, "timeout": true, "dns": true, "connect": true, "tls": true, "http_status": true,
		"body_mismatch": true, "invalid_response": true, "cached": true, "body_too_large": true, "icmp": true, "dns_rcode": true, "error": true}
	fixedPhases = map[string]bool{"resolve": true, "connect": true, "tls": true, "processing": true, "transfer": true}
)

// checkLabels checks every label value of the leaf's oxcross_leaf_*
// series: origin ids from the config, the leaf's id, results, reasons and
// phases from their fixed sets; nothing longer than 128 characters.
func checkLabels(t *testing.T, m prometheus.Gatherer, leafID string, origins ...string) {
	t.Helper()
	known := map[string]bool{}
	for _, o := range origins {
		known[o] = true
	}
	mfs, err := m.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	series := 0
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "oxcross_leaf_") || name == "oxcross_leaf_build_info" {
			continue
		}
		for _, s := range mf.GetMetric() {
			series++
			for _, lp := range s.GetLabel() {
				v := lp.GetValue()
				ok := len(v) <= config.MaxNameLength
				switch lp.GetName() {
				case "origin_id":
					ok = ok && known[v]
				case "source_id":
					ok = ok && v == leafID
				case "result":
					ok = ok && (v == "true" || v == "false")
				case "reason":
					ok = ok && fixedReasons[v]
				case "phase":
					ok = ok && fixedPhases[v]
				default:
					ok = false
				}
				if !ok {
					t.Errorf("%s: label %s=%q is not from the config or a fixed set", name, lp.GetName(), v)
				}
			}
		}
	}
	if series == 0 {
		t.Errorf("no oxcross_leaf_ series")
	}
}

// sdLeafIDs returns the leaf ids /sd/leaves lists.
func sdLeafIDs(t *testing.T, csAddr string) map[string]bool {
	t.Helper()
	resp, err := testutil.TryDo(nil, http.MethodGet, "http://"+csAddr+"/sd/leaves", "")
	ids := map[string]bool{}
	if err != nil || resp.Code != http.StatusOK {
		return ids
	}
	for _, m := range regexp.MustCompile(`"leaf_id":"([^"]*)"`).FindAllStringSubmatch(resp.Body, -1) {
		ids[m[1]] = true
	}
	return ids
}

// TestLeafSIGTERMInFlight: SIGTERM while a probe of a slow origin is in
// flight: the probe is cut short (well within its timeout), the leaf
// deregisters (the configserver's /sd/leaves drops it at once) and exits 0.
func TestLeafSIGTERMInFlight(t *testing.T) {
	var inFlight, ended atomic.Int64
	started := make(chan struct{}, 10)
	slowDone := make(chan time.Time, 10)
	slow := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		started <- struct{}{}
		select {
		case <-r.Context().Done(): // the leaf hung up
			slowDone <- time.Now()
		case <-time.After(30 * time.Second):
		}
		ended.Add(1)
	})}
	sl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = slow.Serve(sl) }()
	t.Cleanup(func() { _ = slow.Close() })

	const probeTimeout = 8 * time.Second
	f := startFleet(t, fmt.Sprintf(`  - name: slow
    url: http://%s/
    mode: simple
    interval: 10s
    timeout: %s
`, sl.Addr(), probeTimeout))
	leaf, _ := f.startLeaf(t, filepath.Join(t.TempDir(), "cache.json"))
	testutil.EventuallyReason(t, 10*time.Second, "leaf registered", func() string {
		if !sdLeafIDs(t, f.csAddr)["leaf-e2e"] {
			return "leaf-e2e not in /sd/leaves"
		}
		return ""
	})
	select {
	case <-started: // the slow origin's first slot is somewhere in 10s
	case <-time.After(15 * time.Second):
		t.Fatal("the slow origin was not probed within 15s")
	}
	time.Sleep(200 * time.Millisecond)
	sent := time.Now()
	if err := leaf.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-leaf.done:
	case <-time.After(probeTimeout + 5*time.Second):
		t.Fatalf("the leaf did not exit within the probe timeout %s (and 5s) of SIGTERM", probeTimeout)
	}
	exited := time.Since(sent)
	if leaf.err != nil {
		t.Errorf("leaf exit after SIGTERM: %v, want status 0", leaf.err)
	}
	select {
	case at := <-slowDone:
		d := at.Sub(sent)
		if d > probeTimeout {
			t.Errorf("the in-flight probe ended %s after SIGTERM, beyond its timeout %s", d, probeTimeout)
		}
		t.Logf("the in-flight probe ended %s after SIGTERM", d.Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Errorf("the slow origin never saw the in-flight probe end")
	}
	if sdLeafIDs(t, f.csAddr)["leaf-e2e"] {
		t.Errorf("the configserver still lists the leaf after it exited")
	}
	if !strings.Contains(leaf.log.String(), "Stopped") || strings.Contains(leaf.log.String(), "Could not deregister") {
		t.Errorf("the leaf's log does not show a clean stop with deregistration")
	}
	// The race detector adds a second at exit (GORACE atexit_sleep_ms).
	t.Logf("exit 0 %s after SIGTERM with a probe (timeout %s) in flight; deregistered", exited.Round(time.Millisecond), probeTimeout)
}

// TestConfigserverRestartRegistry: after a configserver restart (its
// registry lives in memory) both leaves are listed again within one
// refresh interval of it answering.
func TestConfigserverRestartRegistry(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	testutil.WriteFile(t, cfg, "origins:\n  - url: http://127.0.0.1:9/\n    mode: simple\n")
	csAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	startCS := func() *proc {
		return start(t, "oxcross-configserver", nil, "--web.listen-address="+csAddr, "--config.file="+cfg)
	}
	cs := startCS()
	waitHealthy(t, csAddr)
	const refresh = time.Second
	for _, id := range []string{"leaf-a", "leaf-b"} {
		addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
		start(t, "oxcross-leaf", nil, "--web.listen-address="+addr, "--leaf.id="+id, "--config.url=http://"+csAddr,
			"--config.refresh-interval="+refresh.String(), "--config.cache-file="+filepath.Join(t.TempDir(), "cache.json"))
		waitHealthy(t, addr)
	}
	f := struct{ csAddr string }{csAddr}
	both := func() string {
		ids := sdLeafIDs(t, f.csAddr)
		if !ids["leaf-a"] || !ids["leaf-b"] {
			return fmt.Sprintf("/sd/leaves lists %v", ids)
		}
		return ""
	}
	testutil.EventuallyReason(t, 10*time.Second, "both leaves registered", both)

	// Restart the configserver on the same address: its registry starts
	// empty.
	if err := cs.stop(t); err != nil {
		t.Fatalf("configserver exit: %v", err)
	}
	time.Sleep(1500 * time.Millisecond) // a heartbeat or two go nowhere
	startCS()
	// Polled every 10ms rather than with testutil.Eventually's backoff:
	// the moment it answers starts the measured interval.
	for giveUp := time.Now().Add(20 * time.Second); ; {
		if resp, err := testutil.TryDo(nil, http.MethodGet, "http://"+f.csAddr+"/-/healthy", ""); err == nil && resp.Code == http.StatusOK {
			break
		}
		if time.Now().After(giveUp) {
			t.Fatalf("the restarted configserver not healthy within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	up := time.Now()
	if ids := sdLeafIDs(t, f.csAddr); len(ids) == 2 {
		t.Logf("both leaves already listed when the configserver answered")
	}
	deadline := up.Add(refresh + 500*time.Millisecond)
	for both() != "" {
		if time.Now().After(deadline) {
			t.Fatalf("registry not whole %s after the restart (refresh interval %s): %s", time.Since(up), refresh, both())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("registry whole again %s after the restarted configserver answered (refresh interval %s)", time.Since(up).Round(time.Millisecond), refresh)
}

// trickle writes s one byte every gap to addr and returns how long the
// server took to close the connection.
func trickle(t *testing.T, addr, s string, gap time.Duration) (time.Duration, int) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	begin := time.Now()
	sent := 0
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_, _ = io.Copy(io.Discard, c) // until the server closes
	}()
	for i := 0; i < len(s); i++ {
		if _, err := c.Write([]byte{s[i]}); err != nil {
			break
		}
		sent++
		select {
		case <-closed:
			return time.Since(begin), sent
		case <-time.After(gap):
		}
	}
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Errorf("the server kept a trickling connection open for 30s")
	}
	return time.Since(begin), sent
}

// endless is an endless request body.
type endless struct{ n atomic.Int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	e.n.Add(int64(len(p)))
	return len(p), nil
}

// TestConfigserverAbuse: the real configserver (built with -race) under
// abuse: headers trickled a byte at a time are cut off at
// --web.read-header-timeout; an endless PUT body gets 413 having cost
// nothing; thousands of registrations fill the registry to its limit and
// get 429 beyond it, memory bounded; invalid ids and bodies get 400; two
// reloads at once under request load race with nothing. Afterwards it
// serves as before and exits 0 (a data race would exit 66).
func TestConfigserverAbuse(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	good := "origins:\n  - url: http://127.0.0.1:9/\n    mode: simple\n"
	testutil.WriteFile(t, cfg, good)
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	const maxLeaves = 500
	cs := start(t, "oxcross-configserver", nil, "--web.listen-address="+addr, "--config.file="+cfg,
		"--config.watch-interval=50ms", "--web.read-header-timeout=1s", fmt.Sprintf("--registry.max-leaves=%d", maxLeaves),
		// Every registration comes from 127.0.0.1: no per-source limit,
		// so that the registry's own limit is what refuses.
		"--registry.max-leaves-per-source=0")
	waitHealthy(t, addr)
	base := "http://" + addr
	heap := func() float64 { return metric(t, scrape(t, addr), "go_memstats_heap_inuse_bytes") }

	// Slow headers.
	took, sent := trickle(t, addr, "PUT /api/v1/leaves/slow HTTP/1.1\r\nHost: x\r\nX-Slow: "+strings.Repeat("s", 200)+"\r\n\r\n", 100*time.Millisecond)
	if took < 900*time.Millisecond || took > 3*time.Second {
		t.Errorf("a client trickling its headers was cut off after %s (%d bytes), want about the 1s read-header timeout", took, sent)
	}
	t.Logf("trickled headers: closed after %s and %d bytes", took.Round(time.Millisecond), sent)

	heap0 := heap()
	// An endless body.
	body := &endless{}
	req, _ := http.NewRequest(http.MethodPut, base+"/api/v1/leaves/huge", body)
	req.Header.Set("Content-Type", "application/json")
	begin := time.Now()
	resp, err := http.DefaultClient.Do(req)
	switch {
	case err == nil:
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("PUT with an endless body: %d %s, want 413", resp.StatusCode, b)
		}
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		// The server answered 413 and closed while the client still wrote.
	default:
		t.Errorf("PUT with an endless body: %v", err)
	}
	t.Logf("endless PUT body: answered after %s, %d KiB sent", time.Since(begin).Round(time.Millisecond), body.n.Load()>>10)

	// Invalid ids and bodies.
	for _, tc := range []struct{ id, body string }{
		{"bad%20id", `{"address": ":9299"}`},
		{strings.Repeat("x", 200), `{"address": ":9299"}`},
		{"a%2Fb", `{"address": ":9299"}`},
		{"%00", `{"address": ":9299"}`},
		{"ok-id", `{"address": ":9299", "unknown": 1}`},
		{"ok-id", `{"address": `},
		{"ok-id", `[]`},
		{"ok-id", `{"address": ":99999"}`},
	} {
		if resp := testutil.Do(t, nil, http.MethodPut, base+"/api/v1/leaves/"+tc.id, tc.body); resp.Code != http.StatusBadRequest {
			t.Errorf("PUT %s %s: %d %s, want 400", tc.id, tc.body, resp.Code, resp.Body)
		}
	}

	// Thousands of registrations, while the file changes and two reloads
	// at a time run, and clients read.
	var (
		regs, wg               sync.WaitGroup // registrations, the rest
		okN, fullN, otherN     atomic.Int64
		reloadsOK, reloadsFail atomic.Int64
		next                   atomic.Int64
		stop                   atomic.Bool
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	const n = 3000
	for range 8 {
		regs.Go(func() {
			for {
				i := next.Add(1)
				if i > n {
					return
				}
				resp, err := testutil.TryDo(client, http.MethodPut, fmt.Sprintf("%s/api/v1/leaves/abuse-%d", base, i), fmt.Sprintf(`{"address": ":%d", "refresh_interval": "1h"}`, 1024+i))
				if err != nil {
					t.Errorf("PUT: %v", err)
					return
				}
				switch resp.Code {
				case http.StatusOK:
					okN.Add(1)
				case http.StatusTooManyRequests:
					fullN.Add(1)
				default:
					otherN.Add(1)
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				resp, err := testutil.TryDo(client, http.MethodPost, base+"/-/reload", "")
				if err != nil {
					t.Errorf("POST /-/reload: %v", err)
					return
				}
				if resp.Code == http.StatusOK {
					reloadsOK.Add(1)
				} else {
					reloadsFail.Add(1)
				}
			}
		})
	}
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			text := good
			if i%2 == 1 {
				text = "origins:\n  - url: http://127.0.0.1:10/\n    mode: simple\n"
			}
			testutil.WriteAtomic(t, cfg, text)
			for _, path := range []string{"/config", "/sd/leaves", "/config?leaf_id=abuse-1"} {
				if _, err := testutil.TryDo(client, http.MethodGet, base+path, ""); err != nil {
					t.Errorf("GET %s: %v", path, err)
					return
				}
			}
		}
	})
	regs.Wait()
	stop.Store(true)
	wg.Wait()
	heap1 := heap()
	t.Logf("%d registrations: %d ok, %d refused (429), %d other; %d + %d reloads meanwhile; heap in use %.1f MiB -> %.1f MiB",
		n, okN.Load(), fullN.Load(), otherN.Load(), reloadsOK.Load(), reloadsFail.Load(), heap0/(1<<20), heap1/(1<<20))
	if okN.Load() != maxLeaves || fullN.Load() != n-maxLeaves || otherN.Load() != 0 {
		t.Errorf("want %d registered and %d refused with 429", maxLeaves, n-maxLeaves)
	}
	if reloadsOK.Load() == 0 {
		t.Errorf("no reload succeeded")
	}
	if got := len(sdLeafIDs(t, addr)); got != maxLeaves {
		t.Errorf("/sd/leaves lists %d leaves, want %d", got, maxLeaves)
	}
	if heap1-heap0 > 32<<20 {
		t.Errorf("heap in use grew by %.1f MiB", (heap1-heap0)/(1<<20))
	}
	if resp := testutil.Do(t, nil, http.MethodGet, base+"/config", ""); resp.Code != http.StatusOK {
		t.Errorf("GET /config after the abuse: %d", resp.Code)
	}
	if err := cs.stop(t); err != nil {
		t.Errorf("configserver exit: %v (66 is the race detector's)", err)
	}
	if strings.Contains(cs.log.String(), "DATA RACE") {
		t.Errorf("data race in the configserver")
	}
}

// TestOriginAbuse: the real origin refuses a huge query, bad nonces and
// other methods with clear codes, cuts off trickled headers, and still
// answers.
func TestOriginAbuse(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	p := start(t, "oxcross-origin", nil, "--web.listen-address="+addr, "--web.read-header-timeout=1s")
	waitHealthy(t, addr)
	base := "http://" + addr + "/oxcross"
	for _, tc := range []struct {
		query string
		code  int
	}{
		{"nonce=" + strings.Repeat("a", 129), http.StatusBadRequest},
		{"nonce=" + strings.Repeat("a", 60<<10), http.StatusBadRequest},
		{"nonce=" + strings.Repeat("a", 100<<10), http.StatusRequestHeaderFieldsTooLarge},
		{"nonce=a%00b", http.StatusBadRequest},
		{"nonce=<script>", http.StatusBadRequest},
		{"nonce=a&nonce=b", http.StatusBadRequest},
		{"nonce=%zz", http.StatusBadRequest},
		{"nonce=ok-nonce_1", http.StatusOK},
	} {
		resp, err := testutil.TryDo(nil, http.MethodGet, base+"?"+tc.query, "")
		if err != nil {
			t.Errorf("GET /oxcross?%.40s…: %v, want %d", tc.query, err, tc.code)
		} else if resp.Code != tc.code {
			t.Errorf("GET /oxcross?%.40s…: %d %.100s, want %d", tc.query, resp.Code, resp.Body, tc.code)
		}
	}
	resp, err := http.Post(base, "application/json", io.LimitReader(&endless{}, 10<<20))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /oxcross with 10 MiB: %d, want 405", resp.StatusCode)
	}
	took, sent := trickle(t, addr, "GET /oxcross HTTP/1.1\r\nHost: x\r\nX-Slow: "+strings.Repeat("s", 200)+"\r\n\r\n", 100*time.Millisecond)
	if took < 900*time.Millisecond || took > 3*time.Second {
		t.Errorf("trickled headers cut off after %s (%d bytes), want about 1s", took, sent)
	}
	if resp := testutil.Do(t, nil, http.MethodGet, base+"?nonce=after", ""); resp.Code != http.StatusOK {
		t.Errorf("GET /oxcross after the abuse: %d", resp.Code)
	}
	if err := p.stop(t); err != nil {
		t.Errorf("origin exit: %v", err)
	}
}

// TestLimitFlags: the leaf's and the configserver's --config.check and
// the configserver's start apply --config.max-origins and
// --config.min-interval, with the defaults unless set.
func TestLimitFlags(t *testing.T) {
	dir := t.TempDir()
	fast := filepath.Join(dir, "fast.yaml")
	testutil.WriteFile(t, fast, "interval: 1ms\ntimeout: 1ms\norigins:\n  - url: http://127.0.0.1:9/\n    mode: simple\n")
	var many strings.Builder
	many.WriteString("origins:\n")
	for i := range 10001 {
		fmt.Fprintf(&many, "  - {name: o%d, url: 'http://127.0.0.1:9/', mode: simple}\n", i)
	}
	manyPath := filepath.Join(dir, "many.yaml")
	testutil.WriteFile(t, manyPath, many.String())
	run := func(bin string, args ...string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, filepath.Join(binDir, bin), args...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		return 0, string(out)
	}
	for _, bin := range []string{"oxcross-leaf", "oxcross-configserver"} {
		if code, out := run(bin, "--config.check="+fast); code != 1 || !strings.Contains(out, "shorter than the minimum interval 1s (--config.min-interval)") {
			t.Errorf("%s --config.check of a 1ms interval: %d %s", bin, code, out)
		}
		if code, out := run(bin, "--config.check="+fast, "--config.min-interval=1ms"); code != 0 {
			t.Errorf("%s --config.check --config.min-interval=1ms: %d %s", bin, code, out)
		}
		if code, out := run(bin, "--config.check="+manyPath); code != 1 || !strings.Contains(out, "10001 origins, more than the limit of 10000 (--config.max-origins)") {
			t.Errorf("%s --config.check of 10001 origins: %d %.300s", bin, code, out)
		}
	}
	code, out := run("oxcross-configserver", "--config.file="+manyPath, "--web.listen-address=127.0.0.1:0")
	if code == 0 || !strings.Contains(out, "--config.max-origins") {
		t.Errorf("configserver started with 10001 origins: %d %.300s", code, out)
	}
}
