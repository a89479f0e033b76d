// Package e2e runs the real oxcross binaries on loopback and checks what
// they do together.
package e2e

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/oxcross/oxcross/internal/leafview"
	"github.com/oxcross/oxcross/internal/testutil"
)

// binDir holds the binaries built once for all tests.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "oxcross-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	build := exec.Command("go", "build", "-race", "-o", dir+"/", "../cmd/oxcross-origin", "../cmd/oxcross-configserver", "../cmd/oxcross-leaf")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building binaries:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  *testutil.SyncBuffer
	done chan struct{}
	err  error
}

// start runs a binary until the test ends; its log is printed when the
// test fails.
func start(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: &testutil.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, name), args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("--- log of %s %v:\n%s", name, args, p.log.String())
		}
	})
	return p
}

// stop sends SIGTERM and returns the exit error.
func (p *proc) stop(t *testing.T) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop within 20s of SIGTERM", p.name)
	}
	return p.err
}

func waitHealthy(t *testing.T, addr string) {
	t.Helper()
	testutil.EventuallyReason(t, 20*time.Second, addr+" healthy", func() string {
		resp, err := testutil.TryDo(nil, http.MethodGet, "http://"+addr+"/-/healthy", "")
		if err != nil {
			return err.Error()
		}
		if resp.Code != http.StatusOK {
			return fmt.Sprintf("status %d %s", resp.Code, resp.Body)
		}
		return ""
	})
}

// scrape reads the metrics of the leaf or configserver at addr for
// testutil's metric readers; none when it does not answer.
func scrape(t *testing.T, addr string) prometheus.Gatherer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := leafview.Scrape(ctx, http.DefaultClient, "http://"+addr+"/metrics")
	if err != nil {
		return gatherer(nil)
	}
	return gatherer(f)
}

// gatherer serves scraped metric families as a prometheus.Gatherer.
func gatherer(f leafview.Families) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return slices.SortedFunc(maps.Values(f), func(a, b *dto.MetricFamily) int {
			return strings.Compare(a.GetName(), b.GetName())
		}), nil
	})
}

// hasSeries reports whether m has a series of the metric name with labels,
// name, value pairs.
func hasSeries(t *testing.T, m prometheus.Gatherer, name string, labels ...string) bool {
	t.Helper()
	return len(testutil.MetricSeries(t, m, name, labels...)) > 0
}

// okCount is how many probes of origin succeeded.
func okCount(t *testing.T, m prometheus.Gatherer, origin string) float64 {
	t.Helper()
	return testutil.MetricSum(t, m, "oxcross_leaf_probe_results", "origin_id", origin, "result", "true", "reason", "ok")
}

// fleet is an origin and a configserver serving a config that probes it.
type fleet struct {
	originAddr, csAddr string
	configPath         string
}

const configTemplate = `
interval: 300ms
timeout: 250ms
origins:
  - name: adv
    scheme: http
    hostname: 127.0.0.1
    port: %[1]d
    mode: advanced
  - name: simple
    url: http://127.0.0.1:%[1]d/healthz
    mode: simple
%[2]s`

func startFleet(t *testing.T, extra string) *fleet {
	t.Helper()
	dir := t.TempDir()
	op, cp := testutil.FreePort(t), testutil.FreePort(t)
	f := &fleet{originAddr: fmt.Sprintf("127.0.0.1:%d", op), csAddr: fmt.Sprintf("127.0.0.1:%d", cp), configPath: filepath.Join(dir, "config.yaml")}
	if strings.Contains(extra, "%d") {
		extra = strings.ReplaceAll(extra, "%d", fmt.Sprint(op))
	}
	testutil.WriteFile(t, f.configPath, fmt.Sprintf(configTemplate, op, extra))
	// The original's environment variables set the origin's port and the
	// configserver's config file.
	start(t, "oxcross-origin", []string{fmt.Sprintf("OXCROSS_ORIGIN_PORT=%d", op)})
	start(t, "oxcross-configserver", []string{"OXCROSS_CONF=" + f.configPath},
		"--web.listen-address="+f.csAddr, "--config.watch-interval=100ms", "--config.min-interval=100ms", "--log.level=debug")
	waitHealthy(t, fmt.Sprintf("localhost:%d", op))
	waitHealthy(t, f.csAddr)
	return f
}

func (f *fleet) startLeaf(t *testing.T, cache string, args ...string) (*proc, string) {
	t.Helper()
	lp := testutil.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", lp)
	p := start(t, "oxcross-leaf", []string{fmt.Sprintf("OXCROSS_METRICS_PORT=%d", lp), "OXCROSS_LEAF_ID=leaf-e2e", "OXCROSS_CONFIG_API_BASE=http://" + f.csAddr},
		append([]string{"--config.refresh-interval=300ms", "--config.min-interval=100ms", "--config.cache-file=" + cache}, args...)...)
	waitHealthy(t, fmt.Sprintf("localhost:%d", lp))
	return p, addr
}

func TestEndToEnd(t *testing.T) {
	f := startFleet(t, "")
	cache := filepath.Join(t.TempDir(), "cache.json")
	leaf, leafAddr := f.startLeaf(t, cache)

	// Both modes probed, with the leaf id as source_id.
	testutil.EventuallyReason(t, 15*time.Second, "both modes probed", func() string {
		m := scrape(t, leafAddr)
		for _, o := range []string{"adv", "simple"} {
			if v := testutil.MetricSum(t, m, "oxcross_leaf_probe_results", "origin_id", o, "source_id", "leaf-e2e", "result", "true"); v < 3 {
				return fmt.Sprintf("%s: %v successful probes", o, v)
			}
			if v, ok := testutil.LookupMetric(t, m, "oxcross_leaf_origin_status", "origin_id", o); !ok || v != 1 {
				return fmt.Sprintf("%s: status %v", o, v)
			}
			if v, _ := testutil.LookupMetric(t, m, "oxcross_leaf_probe_timings", "origin_id", o); v < 3 {
				return fmt.Sprintf("%s: %v timings", o, v)
			}
		}
		return ""
	})
	if ready := testutil.Do(t, nil, http.MethodGet, "http://"+leafAddr+"/-/ready", ""); ready.Code != http.StatusOK {
		t.Errorf("/-/ready: %d %s", ready.Code, ready.Body)
	}

	// Drift near zero: origin and leaf share one clock.
	m := scrape(t, leafAddr)
	drift, ok := testutil.LookupMetric(t, m, "oxcross_leaf_origin_time_drift", "origin_id", "adv")
	unc, _ := testutil.LookupMetric(t, m, "oxcross_leaf_origin_time_drift_uncertainty_seconds", "origin_id", "adv")
	if !ok || math.Abs(drift) > 0.02 {
		t.Errorf("drift on one clock = %v (present %v), want |drift| < 20ms", drift, ok)
	}
	if unc <= 0 || unc > 0.1 {
		t.Errorf("drift uncertainty = %v, want in (0, 100ms]", unc)
	}
	if last, ok := testutil.LookupMetric(t, m, "oxcross_leaf_origin_time_drift_last_seconds", "origin_id", "adv"); !ok || math.Abs(last) > 0.02 {
		t.Errorf("last exchange's drift on one clock = %v (present %v), want |drift| < 20ms", last, ok)
	}
	// The leaf's own clock, from the kernel (Linux): whatever this
	// machine's NTP daemon says, the three series are there.
	if runtime.GOOS == "linux" {
		for _, name := range []string{"oxcross_leaf_clock_synchronized", "oxcross_leaf_clock_max_error_seconds", "oxcross_leaf_clock_estimated_error_seconds"} {
			if !hasSeries(t, m, name) {
				t.Errorf("no %s", name)
			}
		}
	}
	if hasSeries(t, m, "oxcross_leaf_origin_time_drift", "origin_id", "simple") {
		t.Errorf("simple mode has a drift series")
	}
	if _, err := os.Stat(cache); err != nil {
		t.Errorf("config cache not written: %v", err)
	}

	// An edit reaches the leaf without a restart: one origin renamed, one
	// added; the removed one's series disappear.
	etag := testutil.Do(t, nil, http.MethodGet, "http://"+f.csAddr+"/config", "").Header.Get("ETag")
	if resp := testutil.Do(t, nil, http.MethodGet, "http://"+f.csAddr+"/config", "", "If-None-Match", etag); resp.Code != http.StatusNotModified {
		t.Errorf("/config with If-None-Match = its ETag: %d, want 304", resp.Code)
	}
	port := f.originAddr[strings.LastIndex(f.originAddr, ":")+1:]
	testutil.WriteFile(t, f.configPath, fmt.Sprintf(`
interval: 300ms
timeout: 250ms
origins:
  - name: adv2
    url: http://127.0.0.1:%[1]s
  - name: simple
    url: http://127.0.0.1:%[1]s/healthz
    mode: simple
  - name: refused
    url: http://127.0.0.1:1/
    mode: simple
`, port))
	testutil.EventuallyReason(t, 10*time.Second, "edited config reaches the leaf", func() string {
		m := scrape(t, leafAddr)
		if okCount(t, m, "adv2") < 2 {
			return "adv2 not probed yet"
		}
		if v := testutil.MetricSum(t, m, "oxcross_leaf_probe_results", "origin_id", "refused", "result", "false", "reason", "connect"); v < 1 {
			return "refused origin not failing with reason connect"
		}
		if hasSeries(t, m, "oxcross_leaf_probe_results", "origin_id", "adv") {
			return "removed origin adv still has series"
		}
		return ""
	})

	// A broken edit is refused: the configserver keeps serving the last
	// good config and says so; the leaf keeps probing it.
	good := testutil.Do(t, nil, http.MethodGet, "http://"+f.csAddr+"/config", "")
	goodBody, goodETag := good.Body, good.Header.Get("ETag")
	testutil.WriteFile(t, f.configPath, "origins:\n  - scheme: ftp\n    hostname: x\n    port: 99999\n")
	testutil.EventuallyReason(t, 10*time.Second, "broken config refused", func() string {
		m := scrape(t, f.csAddr)
		if v, ok := testutil.LookupMetric(t, m, "oxcross_configserver_config_last_reload_successful"); !ok || v != 0 {
			return fmt.Sprintf("last_reload_successful = %v", v)
		}
		return ""
	})
	after := testutil.Do(t, nil, http.MethodGet, "http://"+f.csAddr+"/config", "")
	if after.Code != http.StatusOK || after.Body != goodBody || after.Header.Get("ETag") != goodETag {
		t.Errorf("after a broken edit /config = %d %q (ETag %s), want the last good config %q (ETag %s)", after.Code, after.Body, after.Header.Get("ETag"), goodBody, goodETag)
	}
	if resp := testutil.Do(t, nil, http.MethodGet, "http://"+f.csAddr+"/-/reload", ""); resp.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload = %d, want 405", resp.Code)
	}
	if resp := testutil.Do(t, nil, http.MethodPost, "http://"+f.csAddr+"/-/reload", ""); resp.Code != http.StatusInternalServerError || !strings.Contains(resp.Body, "port") {
		t.Errorf("POST /-/reload of a broken config = %d %q, want 500 naming the field", resp.Code, resp.Body)
	}
	before := okCount(t, scrape(t, leafAddr), "adv2")
	testutil.EventuallyReason(t, 10*time.Second, "leaf keeps probing", func() string {
		if n := okCount(t, scrape(t, leafAddr), "adv2"); n < before+3 {
			return fmt.Sprintf("adv2 ok count %v, was %v", n, before)
		}
		return ""
	})

	// SIGTERM: the leaf exits 0.
	if err := leaf.stop(t); err != nil {
		t.Errorf("leaf exit after SIGTERM: %v, want status 0", err)
	}
}

// TestLeafStartsFromCache: a leaf that cannot reach its configserver at
// start probes with the config it cached before. The cache's directory
// does not exist at first: without systemd's StateDirectory the leaf makes
// it.
func TestLeafStartsFromCache(t *testing.T) {
	f := startFleet(t, "")
	cache := filepath.Join(t.TempDir(), "var/lib/oxcross-leaf/cache.json")
	leaf, _ := f.startLeaf(t, cache)
	testutil.EventuallyReason(t, 10*time.Second, "cache written", func() string {
		if _, err := os.Stat(cache); err != nil {
			return err.Error()
		}
		return ""
	})
	if err := leaf.stop(t); err != nil {
		t.Fatalf("leaf exit: %v", err)
	}

	// A configserver address where nothing listens.
	dead := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))
	_, leafAddr := f.startLeaf(t, cache, "--config.url="+dead)
	testutil.EventuallyReason(t, 10*time.Second, "probing from the cache", func() string {
		m := scrape(t, leafAddr)
		if v, _ := testutil.LookupMetric(t, m, "oxcross_leaf_config_from_cache"); v != 1 {
			return fmt.Sprintf("from_cache = %v", v)
		}
		if okCount(t, m, "adv") < 2 {
			return "adv not probed"
		}
		if v, _ := testutil.LookupMetric(t, m, "oxcross_leaf_config_refresh_failures_total"); v < 1 {
			return "no refresh failure counted"
		}
		return ""
	})
}

// TestLeafWithoutConfig: with neither configserver nor cache the leaf runs,
// is not ready, and says why.
func TestLeafWithoutConfig(t *testing.T) {
	lp := testutil.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", lp)
	p := start(t, "oxcross-leaf", nil, "--web.listen-address="+addr, "--leaf.id=lonely",
		fmt.Sprintf("--config.url=http://127.0.0.1:%d", testutil.FreePort(t)), "--config.cache-file="+filepath.Join(t.TempDir(), "none.json"))
	waitHealthy(t, addr)
	testutil.EventuallyReason(t, 10*time.Second, "not ready with a reason", func() string {
		resp, err := testutil.TryDo(nil, http.MethodGet, "http://"+addr+"/-/ready", "")
		if err != nil {
			return err.Error()
		}
		if resp.Code != http.StatusServiceUnavailable || !strings.Contains(resp.Body, "no config yet") {
			return fmt.Sprintf("/-/ready = %d %q", resp.Code, resp.Body)
		}
		if !strings.Contains(p.log.String(), "retrying") {
			return "log does not say it is retrying"
		}
		return ""
	})
}

// TestStandaloneLeaf: a leaf with a local config file and no configserver
// follows edits of the file.
func TestStandaloneLeaf(t *testing.T) {
	dir := t.TempDir()
	op := testutil.FreePort(t)
	start(t, "oxcross-origin", nil, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", op))
	waitHealthy(t, fmt.Sprintf("127.0.0.1:%d", op))
	cfg := filepath.Join(dir, "config.json")
	// The original Oxcross JSON format, with integer seconds.
	testutil.WriteFile(t, cfg, fmt.Sprintf(`{"timeout": 1, "interval": 1, "origins": [{"scheme": "http", "hostname": "127.0.0.1", "port": %d, "mode": "advanced"}]}`, op))
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	p := start(t, "oxcross-leaf", nil, "--web.listen-address="+addr, "--leaf.id=solo", "--config.file="+cfg, "--config.watch-interval=100ms")
	waitHealthy(t, addr)
	id := fmt.Sprintf("127.0.0.1-%d-http", op)
	testutil.EventuallyReason(t, 10*time.Second, "original JSON probed", func() string {
		if okCount(t, scrape(t, addr), id) < 1 {
			return id + " not probed"
		}
		return ""
	})
	testutil.WriteFile(t, cfg, fmt.Sprintf(`{"timeout": 1, "interval": 1, "origins": [{"name": "renamed", "scheme": "http", "hostname": "127.0.0.1", "port": %d, "mode": "simple", "path": "/healthz"}]}`, op))
	testutil.EventuallyReason(t, 10*time.Second, "file edit followed", func() string {
		m := scrape(t, addr)
		if okCount(t, m, "renamed") < 1 {
			return "renamed not probed"
		}
		if hasSeries(t, m, "oxcross_leaf_origin_status", "origin_id", id) {
			return "old origin still has series"
		}
		return ""
	})
	testutil.WriteFile(t, cfg, `{"origins": []}`)
	refused := func() string {
		if v, _ := testutil.LookupMetric(t, scrape(t, addr), "oxcross_leaf_config_refresh_failures_total"); v < 1 {
			return "failure not counted"
		}
		return ""
	}
	testutil.EventuallyReason(t, 10*time.Second, "broken file refused", refused)
	n := okCount(t, scrape(t, addr), "renamed")
	testutil.EventuallyReason(t, 10*time.Second, "broken file ignored", func() string {
		m := scrape(t, addr)
		if okCount(t, m, "renamed") < n+1 {
			return "renamed no longer probed"
		}
		if v, _ := testutil.LookupMetric(t, m, "oxcross_leaf_config_refresh_failures_total"); v < 1 {
			return "failure not counted"
		}
		return ""
	})
	if err := p.stop(t); err != nil {
		t.Errorf("leaf exit: %v", err)
	}
}

// TestConfigserverSIGHUP: with file watching effectively off, an edit is
// served only after SIGHUP; --version tells the program's name.
func TestConfigserverSIGHUP(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	testutil.WriteFile(t, cfg, "origins:\n  - url: http://127.0.0.1:9/\n    mode: simple\n")
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	p := start(t, "oxcross-configserver", nil, "--web.listen-address="+addr, "--config.file="+cfg, "--config.watch-interval=1h")
	waitHealthy(t, addr)
	first := testutil.Do(t, nil, http.MethodGet, "http://"+addr+"/config", "").Header.Get("ETag")
	testutil.WriteFile(t, cfg, "origins:\n  - url: http://127.0.0.1:10/\n    mode: simple\n")
	time.Sleep(300 * time.Millisecond)
	if resp := testutil.Do(t, nil, http.MethodGet, "http://"+addr+"/config", ""); resp.Header.Get("ETag") != first {
		t.Fatalf("config changed without SIGHUP and with watching off")
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyReason(t, 5*time.Second, "SIGHUP reload", func() string {
		resp, err := testutil.TryDo(nil, http.MethodGet, "http://"+addr+"/config", "")
		if err != nil {
			return err.Error()
		}
		if resp.Header.Get("ETag") == first || !strings.Contains(resp.Body, "127.0.0.1:10/") {
			return "still the old config: " + resp.Body
		}
		return ""
	})
	if err := p.stop(t); err != nil {
		t.Errorf("configserver exit after SIGTERM: %v", err)
	}

	out, err := exec.Command(filepath.Join(binDir, "oxcross-configserver"), "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "oxcross-configserver, version") {
		t.Errorf("--version on stdout: %v %q, want it to start with the program's name", err, out)
	}
	if out, err := exec.Command(filepath.Join(binDir, "oxcross-configserver"), "--help").Output(); err != nil || !strings.Contains(string(out), "--config.file") {
		t.Errorf("--help on stdout: %v %q", err, out)
	}
	// A config that does not load stops the configserver at start, with
	// one log line per problem.
	testutil.WriteFile(t, cfg, "origins: []\n")
	out, err = exec.Command(filepath.Join(binDir, "oxcross-configserver"), "--config.file="+cfg, "--web.listen-address=127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "origins") {
		t.Errorf("configserver with an empty config: err %v, output %q; want a failure naming origins", err, out)
	}
	testutil.WriteFile(t, cfg, "origins:\n  - url: ftp://x/\n  - url: gopher://y/\n")
	out, _ = exec.Command(filepath.Join(binDir, "oxcross-configserver"), "--config.file="+cfg, "--web.listen-address=127.0.0.1:0").CombinedOutput()
	if n := strings.Count(string(out), `msg="Cannot load the config"`); n != 2 || strings.Contains(string(out), `\n`) {
		t.Errorf("configserver with two bad origins: %d log lines, want one per problem and no escaped newlines:\n%s", n, out)
	}
}

// TestProbeEndpointAndModules: the leaf's /probe answers for built-in
// modules and for modules the configserver's config defines, and the
// scheduled probes export their phases.
func TestProbeEndpointAndModules(t *testing.T) {
	f := startFleet(t, `  - name: tcp-origin
    address: 127.0.0.1:%d
    mode: tcp
  - name: strict
    url: http://127.0.0.1:%d/healthz
    module: want_204
modules:
  want_204:
    kind: http
    http:
      valid_status_codes: [204]
`)
	_ = f
	_, leafAddr := f.startLeaf(t, filepath.Join(t.TempDir(), "cache.json"))
	testutil.EventuallyReason(t, 15*time.Second, "tcp origin probed, strict module failing with http_status", func() string {
		m := scrape(t, leafAddr)
		if okCount(t, m, "tcp-origin") < 1 {
			return "tcp origin not probed"
		}
		if v := testutil.MetricSum(t, m, "oxcross_leaf_probe_results", "origin_id", "strict", "reason", "http_status"); v < 1 {
			return "strict module not failing with http_status"
		}
		if v, ok := testutil.LookupMetric(t, m, "oxcross_leaf_probe_phase_seconds", "origin_id", "adv", "phase", "processing"); !ok || v <= 0 {
			return fmt.Sprintf("adv processing phase = %v", v)
		}
		if v, _ := testutil.LookupMetric(t, m, "oxcross_leaf_probe_http_status_code", "origin_id", "strict"); v != 200 {
			return fmt.Sprintf("strict status code %v", v)
		}
		return ""
	})
	probe := func(query string) (int, prometheus.Gatherer, string) {
		resp := testutil.Do(t, nil, http.MethodGet, "http://"+leafAddr+"/probe?"+query, "")
		if resp.Code != http.StatusOK {
			return resp.Code, gatherer(nil), resp.Body
		}
		fams, err := leafview.Parse(strings.NewReader(resp.Body))
		if err != nil {
			t.Fatalf("parsing /probe?%s: %v", query, err)
		}
		return resp.Code, gatherer(fams), resp.Body
	}
	_, m, _ := probe("module=advanced&target=" + f.originAddr)
	if v, _ := testutil.LookupMetric(t, m, "probe_success"); v != 1 {
		t.Errorf("/probe advanced: probe_success %v", v)
	}
	if !hasSeries(t, m, "probe_oxcross_time_drift_seconds") {
		t.Errorf("/probe advanced: no drift")
	}
	_, m, _ = probe("module=want_204&target=http://" + f.originAddr + "/healthz")
	if v, _ := testutil.LookupMetric(t, m, "probe_oxcross_reason", "reason", "http_status"); v != 1 {
		t.Errorf("/probe with the config's module: reason http_status = %v", v)
	}
	if code, _, body := probe("module=nope&target=x"); code != http.StatusBadRequest || !strings.Contains(body, "nope") {
		t.Errorf("/probe with an unknown module: %d %q", code, body)
	}
}
