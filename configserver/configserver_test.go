package configserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/internal/testutil"
	"github.com/oxcross/oxcross/prober"
)

const (
	metricReloadOK   = "oxcross_configserver_config_last_reload_successful"
	metricReloadTime = "oxcross_configserver_config_last_reload_success_timestamp_seconds"
	metricReloads    = "oxcross_configserver_config_reloads_total"
	metricOrigins    = "oxcross_configserver_config_origins"
	metricRequests   = "oxcross_configserver_config_requests_total"
)

var (
	discard = slog.New(slog.DiscardHandler)
	// kinds are the probe kinds the configserver validates modules with,
	// as its main does.
	kinds = prober.DefaultKinds(discard)
	// parser reads config files without limits.
	parser = kinds.Parser(config.Limits{})
)

// configYAML is a valid config with one origin at host:port.
func configYAML(host string, port int) string {
	return fmt.Sprintf("interval: 30\ntimeout: 10\norigins:\n  - scheme: http\n    hostname: %s\n    port: %d\n    mode: advanced\n", host, port)
}

// snapshotOf is what the configserver should serve for a config text.
func snapshotOf(t testing.TB, text string) *config.Snapshot {
	t.Helper()
	cfg, err := parser.Parse([]byte(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	l, err := config.NewSnapshot(cfg)
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	return l
}

// fakeClock is a registry clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a configserver for a config file, its routes (NewMux) served
// over real HTTP on loopback.
type fixture struct {
	path string
	// clock is the registry's clock, nil for the real one.
	clock *fakeClock
	reg   *prometheus.Registry
	s     *configserver.Server
	srv   *httptest.Server
}

// newFixture serves the config file at path, writing text to it first
// unless text is "", with a registry on the real clock.
func newFixture(t *testing.T, path, text string) *fixture {
	t.Helper()
	return startFixture(t, path, text, nil, configserver.RegistryOptions{})
}

// newRegFixture serves text from a new file, with a registry configured by
// opts whose clock, unless opts has one, is a fake one (f.clock).
func newRegFixture(t *testing.T, text string, opts configserver.RegistryOptions) *fixture {
	t.Helper()
	var clock *fakeClock
	if opts.Now == nil {
		clock = newClock()
		opts.Now = clock.Now
	}
	return startFixture(t, filepath.Join(t.TempDir(), "config.yaml"), text, clock, opts)
}

func startFixture(t *testing.T, path, text string, clock *fakeClock, opts configserver.RegistryOptions) *fixture {
	t.Helper()
	if text != "" {
		testutil.WriteFile(t, path, text)
	}
	reg := prometheus.NewRegistry()
	s, err := configserver.New(path, configserver.Options{Parser: parser, Registry: opts}, reg, discard)
	if err != nil {
		t.Fatalf("New(%s): %v", path, err)
	}
	srv := httptest.NewServer(configserver.NewMux(s))
	t.Cleanup(srv.Close)
	return &fixture{path: path, clock: clock, reg: reg, s: s, srv: srv}
}

// do sends a request with body (none when "") and header, name, value
// pairs, to the fixture's path.
func (f *fixture) do(t testing.TB, method, path, body string, header ...string) testutil.Response {
	t.Helper()
	return testutil.Do(t, f.srv.Client(), method, f.srv.URL+path, body, header...)
}

// served GETs /config and checks that the response is a consistent 200.
func (f *fixture) served(t testing.TB) testutil.Response {
	t.Helper()
	r := f.do(t, http.MethodGet, "/config", "")
	if r.Code != http.StatusOK {
		t.Fatalf("GET /config: status %d, body %q", r.Code, r.Body)
	}
	if et := r.Header.Get("ETag"); et != config.ETag([]byte(r.Body)) {
		t.Fatalf("GET /config: ETag %s, want config.ETag(body) = %s", et, config.ETag([]byte(r.Body)))
	}
	return r
}

// runWatch runs s.Watch until the test ends and checks that it returns.
func runWatch(t *testing.T, s *configserver.Server, interval time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(ctx, interval)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Watch did not return after its context ended")
		}
	})
}

func TestServeConfig(t *testing.T) {
	text := configYAML("example.com", 9301)
	f := newFixture(t, filepath.Join(t.TempDir(), "config.yaml"), text)
	want := snapshotOf(t, text)

	r := f.served(t)
	if r.Body != string(want.Body) {
		t.Errorf("body = %s, want %s", r.Body, want.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	// The config under "oxcross"; beside it, the original leaf's view.
	var doc struct {
		Oxcross struct {
			Origins []struct {
				Name string `json:"name"`
				URL  string `json:"url"`
			} `json:"origins"`
		} `json:"oxcross"`
	}
	if err := json.Unmarshal([]byte(r.Body), &doc); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r.Body)
	}
	if o := doc.Oxcross.Origins; len(o) != 1 || o[0].Name != "example.com-9301-http" || o[0].URL != "http://example.com:9301/oxcross" {
		t.Errorf("origins = %+v", o)
	}
	etag := r.Header.Get("ETag")
	if etag != want.ETag || etag != f.s.Current().ETag {
		t.Errorf("ETag = %s, want %s", etag, want.ETag)
	}

	for _, tc := range []struct {
		name, inm string
		code      int
	}{
		{"same etag", etag, http.StatusNotModified},
		{"list", `"x", ` + etag, http.StatusNotModified},
		{"list without spaces", `"x",` + etag + `,"y"`, http.StatusNotModified},
		{"weak", "W/" + etag, http.StatusNotModified},
		{"star", "*", http.StatusNotModified},
		{"other etag", `"0123456789abcdef"`, http.StatusOK},
		{"unquoted", strings.Trim(etag, `"`), http.StatusOK},
		{"list without it", `"x", W/"y"`, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, http.MethodGet, "/config", "", "If-None-Match", tc.inm)
			if r.Code != tc.code {
				t.Fatalf("If-None-Match %s: status %d, want %d", tc.inm, r.Code, tc.code)
			}
			if r.Header.Get("ETag") != etag {
				t.Errorf("ETag = %q, want %s", r.Header.Get("ETag"), etag)
			}
			if tc.code == http.StatusNotModified && len(r.Body) != 0 {
				t.Errorf("304 with a body: %q", r.Body)
			}
			if tc.code == http.StatusOK && r.Body != string(want.Body) {
				t.Errorf("body = %s, want %s", r.Body, want.Body)
			}
		})
	}

	if r := f.do(t, http.MethodHead, "/config", ""); r.Code != http.StatusOK || len(r.Body) != 0 || r.Header.Get("ETag") != etag {
		t.Errorf("HEAD /config: status %d, body %q, ETag %q", r.Code, r.Body, r.Header.Get("ETag"))
	}
	if r := f.do(t, http.MethodPost, "/config", ""); r.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /config: status %d, want 405", r.Code)
	}
	// /healthz is the caller's now (cmd/oxcross-configserver adds it to
	// these routes): NewMux must not serve it, or that would panic.
	if r := f.do(t, http.MethodGet, "/healthz", ""); r.Code != http.StatusNotFound {
		t.Errorf("GET /healthz from NewMux: status %d, want 404 (main adds it)", r.Code)
	}
	if got := testutil.MetricValue(t, f.reg, metricRequests, "code", "304"); got < 4 {
		t.Errorf("%s{code=304} = %v, want >= 4", metricRequests, got)
	}
	if got := testutil.MetricValue(t, f.reg, metricOrigins); got != 1 {
		t.Errorf("%s = %v, want 1", metricOrigins, got)
	}
}

func TestNewBrokenFile(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"yaml":  "origins: [\n",
		"port":  configYAML("example.com", 70000),
		"empty": "",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".yaml")
			testutil.WriteFile(t, path, text)
			s, err := configserver.New(path, configserver.Options{Parser: parser}, prometheus.NewRegistry(), discard)
			if err == nil {
				t.Fatalf("New on a broken file: no error, serving %s", s.Current().Body)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file %s", err, path)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(dir, "missing.yaml")
		if _, err := configserver.New(path, configserver.Options{Parser: parser}, prometheus.NewRegistry(), discard); err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("New on a missing file: err = %v, want one naming %s", err, path)
		}
	})
}

func TestReload(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "config.yaml"), configYAML("a.example.com", 9301))
	first := f.served(t)
	if got := testutil.MetricValue(t, f.reg, metricReloadOK); got != 1 {
		t.Errorf("%s after New = %v, want 1", metricReloadOK, got)
	}

	// A good edit: new body, new ETag.
	testutil.WriteFile(t, f.path, configYAML("b.example.com", 9301))
	before := time.Now().Unix()
	if err := f.s.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	second := f.served(t)
	if want := snapshotOf(t, configYAML("b.example.com", 9301)); second.Body != string(want.Body) {
		t.Fatalf("after Reload: body %s, want %s", second.Body, want.Body)
	}
	if second.Header.Get("ETag") == first.Header.Get("ETag") {
		t.Errorf("ETag did not change with the config: %s", second.Header.Get("ETag"))
	}
	if r := f.do(t, http.MethodGet, "/config", "", "If-None-Match", first.Header.Get("ETag")); r.Code != http.StatusOK {
		t.Errorf("old ETag after a change: status %d, want 200", r.Code)
	}
	if err := promtestutil.GatherAndCompare(f.reg, strings.NewReader(`
# HELP oxcross_configserver_config_last_reload_successful 1 if the last config reload succeeded, 0 if it failed and the previous config is still served.
# TYPE oxcross_configserver_config_last_reload_successful gauge
oxcross_configserver_config_last_reload_successful 1
`), metricReloadOK); err != nil {
		t.Error(err)
	}
	if ts := testutil.MetricValue(t, f.reg, metricReloadTime); ts < float64(before) || ts > float64(time.Now().Unix()+1) {
		t.Errorf("%s = %v, want about %d", metricReloadTime, ts, before)
	}
	successes := testutil.MetricValue(t, f.reg, metricReloads, "result", "success")

	// Broken edits: an error naming the file, the old config still served.
	for name, text := range map[string]string{
		"yaml": "interval: 30\norigins:\n  - scheme: http\n    hostname: [\n",
		"port": configYAML("c.example.com", 70000),
	} {
		t.Run(name, func(t *testing.T) {
			testutil.WriteFile(t, f.path, text)
			failures := testutil.MetricValue(t, f.reg, metricReloads, "result", "failure")
			err := f.s.Reload()
			if err == nil {
				t.Fatal("Reload of a broken file: no error")
			}
			if !strings.Contains(err.Error(), f.path) {
				t.Errorf("error %q does not name the file %s", err, f.path)
			}
			if name == "port" && !strings.Contains(err.Error(), "port") {
				t.Errorf("error %q does not name the field", err)
			}
			r := f.served(t)
			if r.Body != second.Body || r.Header.Get("ETag") != second.Header.Get("ETag") {
				t.Errorf("after a failed reload: body %s, want the previous %s", r.Body, second.Body)
			}
			if got := testutil.MetricValue(t, f.reg, metricReloadOK); got != 0 {
				t.Errorf("%s = %v, want 0", metricReloadOK, got)
			}
			if got := testutil.MetricValue(t, f.reg, metricReloads, "result", "failure"); got != failures+1 {
				t.Errorf("%s{result=failure} = %v, want %v", metricReloads, got, failures+1)
			}

			// Fixing it reloads again.
			testutil.WriteFile(t, f.path, configYAML("b.example.com", 9301))
			if err := f.s.Reload(); err != nil {
				t.Fatalf("Reload after the fix: %v", err)
			}
			if got := testutil.MetricValue(t, f.reg, metricReloadOK); got != 1 {
				t.Errorf("%s after the fix = %v, want 1", metricReloadOK, got)
			}
		})
	}
	if got := testutil.MetricValue(t, f.reg, metricReloads, "result", "success"); got != successes+2 {
		t.Errorf("%s{result=success} = %v, want %v", metricReloads, got, successes+2)
	}

	// A file that vanished keeps the config too.
	if err := os.Remove(f.path); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Reload(); err == nil || !strings.Contains(err.Error(), f.path) {
		t.Errorf("Reload of a missing file: err = %v, want one naming %s", err, f.path)
	}
	if r := f.served(t); r.Body != second.Body {
		t.Errorf("after the file vanished: body %s, want %s", r.Body, second.Body)
	}
}

func TestReloadEndpoint(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "config.yaml"), configYAML("a.example.com", 9301))

	testutil.WriteFile(t, f.path, configYAML("b.example.com", 9301)+"  - url: https://c.example.com/\n    mode: simple\n")
	r := f.do(t, http.MethodPost, "/-/reload", "")
	if r.Code != http.StatusOK {
		t.Fatalf("POST /-/reload on a good file: status %d, body %q", r.Code, r.Body)
	}
	if !strings.Contains(r.Body, "2 origins") {
		t.Errorf("POST /-/reload body %q does not say how many origins", r.Body)
	}
	good := f.served(t)
	if !strings.Contains(good.Body, "b.example.com") {
		t.Errorf("after POST /-/reload: body %s", good.Body)
	}
	if got := testutil.MetricValue(t, f.reg, metricOrigins); got != 2 {
		t.Errorf("%s = %v, want 2", metricOrigins, got)
	}

	testutil.WriteFile(t, f.path, configYAML("d.example.com", 0))
	r = f.do(t, http.MethodPost, "/-/reload", "")
	if r.Code != http.StatusInternalServerError {
		t.Fatalf("POST /-/reload on a broken file: status %d, body %q", r.Code, r.Body)
	}
	if !strings.Contains(r.Body, f.path) || !strings.Contains(r.Body, "port") {
		t.Errorf("POST /-/reload failure body %q does not give the reason", r.Body)
	}
	if now := f.served(t); now.Body != good.Body {
		t.Errorf("after a failed POST /-/reload: body %s, want %s", now.Body, good.Body)
	}
	if got := testutil.MetricValue(t, f.reg, metricReloadOK); got != 0 {
		t.Errorf("%s = %v, want 0", metricReloadOK, got)
	}

	if r := f.do(t, http.MethodGet, "/-/reload", ""); r.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: status %d, want 405", r.Code)
	}
	if f.s.Current().ETag != good.Header.Get("ETag") {
		t.Error("GET /-/reload changed the config")
	}
}

func TestWatchEditInPlace(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "config.yaml"), configYAML("a.example.com", 9301))
	old := f.served(t)
	runWatch(t, f.s, 20*time.Millisecond)

	testutil.WriteFile(t, f.path, configYAML("b.example.com", 9301))
	want := snapshotOf(t, configYAML("b.example.com", 9301))
	testutil.Eventually(t, 2*time.Second, "the edited config to be served", func() bool {
		return f.served(t).Body == string(want.Body)
	})
	if f.served(t).Header.Get("ETag") == old.Header.Get("ETag") {
		t.Error("ETag did not change")
	}
	testutil.Eventually(t, 2*time.Second, metricReloadOK+" = 1", func() bool {
		return testutil.MetricValue(t, f.reg, metricReloadOK) == 1
	})

	// A broken edit is reported and the last good config stays.
	testutil.WriteFile(t, f.path, "origins: {\n")
	testutil.Eventually(t, 2*time.Second, metricReloadOK+" = 0", func() bool {
		return testutil.MetricValue(t, f.reg, metricReloadOK) == 0
	})
	if got := f.served(t); got.Body != string(want.Body) {
		t.Errorf("after a broken edit: body %s, want %s", got.Body, want.Body)
	}
}

func TestWatchConfigMap(t *testing.T) {
	files := func(text string) map[string]string { return map[string]string{"config.yaml": text} }
	cm := testutil.NewConfigMap(t, t.TempDir(), files(configYAML("a.example.com", 9301)))
	f := newFixture(t, cm.Path("config.yaml"), "")
	if want := snapshotOf(t, configYAML("a.example.com", 9301)); f.served(t).Body != string(want.Body) {
		t.Fatalf("initial body %s, want %s", f.served(t).Body, want.Body)
	}
	runWatch(t, f.s, 20*time.Millisecond)

	cm.Swap(t, files(configYAML("b.example.com", 9301)))
	want := snapshotOf(t, configYAML("b.example.com", 9301))
	testutil.Eventually(t, 2*time.Second, "the swapped ConfigMap to be served", func() bool {
		return f.served(t).Body == string(want.Body)
	})
	if got := testutil.MetricValue(t, f.reg, metricReloadOK); got != 1 {
		t.Errorf("%s = %v, want 1", metricReloadOK, got)
	}

	// A swap to a broken config keeps the last good one.
	cm.Swap(t, files(configYAML("c.example.com", 70000)))
	testutil.Eventually(t, 2*time.Second, metricReloadOK+" = 0", func() bool {
		return testutil.MetricValue(t, f.reg, metricReloadOK) == 0
	})
	if got := f.served(t); got.Body != string(want.Body) {
		t.Errorf("after a broken swap: body %s, want %s", got.Body, want.Body)
	}

	// And the next good swap is picked up.
	cm.Swap(t, files(configYAML("d.example.com", 9301)))
	want = snapshotOf(t, configYAML("d.example.com", 9301))
	testutil.Eventually(t, 2*time.Second, "the fixed ConfigMap to be served", func() bool {
		return f.served(t).Body == string(want.Body)
	})
	if got := testutil.MetricValue(t, f.reg, metricReloadOK); got != 1 {
		t.Errorf("%s = %v, want 1", metricReloadOK, got)
	}
}

func TestConcurrentReloadAndServe(t *testing.T) {
	textA, textB := configYAML("a.example.com", 9301), configYAML("b.example.com", 9302)
	f := newFixture(t, filepath.Join(t.TempDir(), "config.yaml"), textA)
	bodies := map[string]bool{string(snapshotOf(t, textA).Body): true, string(snapshotOf(t, textB).Body): true}
	runWatch(t, f.s, time.Millisecond)

	var (
		wg       sync.WaitGroup
		stop     atomic.Bool
		gets     atomic.Int64
		reloads  atomic.Int64
		failures atomic.Int64
	)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				switch i % 4 {
				case 0: // edit the file, atomically as editors and kubelet do
					text := textA
					if n%2 == 1 {
						text = textB
					}
					testutil.WriteAtomic(t, f.path, text)
				case 1: // reload
					if err := f.s.Reload(); err != nil {
						failures.Add(1)
						t.Errorf("Reload: %v", err)
						return
					}
					reloads.Add(1)
				default: // serve
					r, err := testutil.TryDo(f.srv.Client(), http.MethodGet, f.srv.URL+"/config", "")
					if err != nil {
						t.Errorf("GET /config: %v", err)
						return
					}
					if r.Code != http.StatusOK {
						t.Errorf("GET /config: status %d", r.Code)
						return
					}
					if !bodies[r.Body] {
						t.Errorf("GET /config served an unexpected body %s", r.Body)
						return
					}
					if et := r.Header.Get("ETag"); et != config.ETag([]byte(r.Body)) {
						t.Errorf("GET /config: ETag %s does not match the body %s", et, r.Body)
						return
					}
					gets.Add(1)
					if c := f.s.Current(); c == nil || !bodies[string(c.Body)] {
						t.Error("Current returned an unexpected config")
						return
					}
				}
			}
		}()
	}
	// Run until each has happened many times over, however long that
	// takes on a busy machine, or until a worker has failed.
	const wantGets, wantReloads = 200, 50
	deadline := time.Now().Add(time.Minute)
	for (gets.Load() < wantGets || reloads.Load() < wantReloads) && !t.Failed() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling the counts
	}
	stop.Store(true)
	wg.Wait()
	if gets.Load() < wantGets || reloads.Load() < wantReloads {
		t.Errorf("gets = %d, reloads = %d: want at least %d and %d", gets.Load(), reloads.Load(), wantGets, wantReloads)
	}
	if got := testutil.MetricValue(t, f.reg, metricReloadOK); got != 1 {
		t.Errorf("%s = %v, want 1", metricReloadOK, got)
	}
}

// TestLimitsAtLoadAndReload: a config file beyond --config.max-origins or
// --config.min-interval stops the configserver at start, and on reload is
// refused like any broken edit: the previous config stays served.
func TestLimitsAtLoadAndReload(t *testing.T) {
	opts := configserver.Options{Parser: kinds.Parser(config.Limits{MaxOrigins: 3, MinInterval: time.Second})}
	path := filepath.Join(t.TempDir(), "config.yaml")
	testutil.WriteFile(t, path, testutil.OriginsConfig(4, "10s"))
	if _, err := configserver.New(path, opts, prometheus.NewRegistry(), discard); err == nil || !strings.Contains(err.Error(), "--config.max-origins") {
		t.Fatalf("start with 4 origins and a limit of 3: %v", err)
	}
	testutil.WriteFile(t, path, testutil.OriginsConfig(3, "10s"))
	reg := prometheus.NewRegistry()
	s, err := configserver.New(path, opts, reg, discard)
	if err != nil {
		t.Fatalf("start within the limits: %v", err)
	}
	good := s.Current().ETag
	for _, text := range []string{testutil.OriginsConfig(4, "10s"), testutil.OriginsConfig(1, "10ms")} {
		testutil.WriteFile(t, path, text)
		err := s.Reload()
		if err == nil || !(strings.Contains(err.Error(), "--config.max-origins") || strings.Contains(err.Error(), "--config.min-interval")) {
			t.Errorf("reload beyond the limits: %v", err)
		}
		if s.Current().ETag != good {
			t.Errorf("a config beyond the limits replaced the good one")
		}
		if v := testutil.MetricValue(t, reg, metricReloadOK); v != 0 {
			t.Errorf("%s = %v after a refused reload", metricReloadOK, v)
		}
	}
	srv := httptest.NewServer(configserver.NewMux(s))
	defer srv.Close()
	r := testutil.Do(t, srv.Client(), http.MethodPost, srv.URL+"/-/reload", "")
	if r.Code != http.StatusInternalServerError || !strings.Contains(r.Body, "shorter than the minimum interval 1s") {
		t.Errorf("POST /-/reload beyond the limits: %d %q", r.Code, r.Body)
	}
}

// TestReloadsUnderHTTPLoad: reloads through POST /-/reload, two or more at
// once, with the file edited between good and broken content, while
// clients GET /config (plain and per leaf), /sd/leaves and /sd/origins and
// leaves register: under -race nothing races, every answer is one of the
// good configs with its own ETag, and a broken edit is never served.
func TestReloadsUnderHTTPLoad(t *testing.T) {
	textA := configYAML("a.example.com", 9301) + "    leaf_selector: {region: eu}\n  - url: http://b.example.com/\n    mode: simple\n"
	textB := configYAML("c.example.com", 9302)
	broken := "origins:\n  - scheme: ftp\n"
	path := filepath.Join(t.TempDir(), "config.yaml")
	f := newFixture(t, path, textA)
	runWatch(t, f.s, time.Millisecond)
	good := map[string]bool{}
	for _, text := range []string{textA, textB} {
		l := snapshotOf(t, text)
		good[string(l.Body)] = true
		for _, labels := range []map[string]string{{}, {"region": "eu"}} {
			if v := l.Config.ForLeaf(labels); v != l.Config {
				vl, err := config.NewSnapshot(v)
				if err != nil {
					t.Fatalf("NewSnapshot of a leaf's view: %v", err)
				}
				good[string(vl.Body)] = true
			}
		}
	}

	var (
		wg                     sync.WaitGroup
		stop                   atomic.Bool
		gets, reloads, refused atomic.Int64
	)
	client := f.srv.Client()
	worker := func(fn func(n int) bool) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				if !fn(n) {
					return
				}
			}
		}()
	}
	// The file alternates between two good configs and a broken one.
	worker(func(n int) bool {
		testutil.WriteAtomic(t, path, []string{textA, broken, textB}[n%3])
		time.Sleep(time.Millisecond) // pacing the edits; not a wait
		return true
	})
	for range 2 {
		worker(func(int) bool {
			r, err := testutil.TryDo(client, http.MethodPost, f.srv.URL+"/-/reload", "")
			if err != nil {
				t.Errorf("POST /-/reload: %v", err)
				return false
			}
			switch r.Code {
			case http.StatusOK:
				reloads.Add(1)
			case http.StatusInternalServerError:
				refused.Add(1)
			default:
				t.Errorf("POST /-/reload: %d", r.Code)
				return false
			}
			return true
		})
	}
	for i := range 3 {
		worker(func(n int) bool {
			path := []string{"/config", "/config?leaf_id=someone", "/config?leaf_id=leaf-" + fmt.Sprint(n%5)}[i]
			r, err := testutil.TryDo(client, http.MethodGet, f.srv.URL+path, "")
			if err != nil {
				t.Errorf("GET %s: %v", path, err)
				return false
			}
			if r.Code != http.StatusOK || !good[r.Body] || r.Header.Get("ETag") != config.ETag([]byte(r.Body)) {
				t.Errorf("GET %s: %d, ETag %s, body %s: not a good config with its ETag", path, r.Code, r.Header.Get("ETag"), r.Body)
				return false
			}
			gets.Add(1)
			return true
		})
	}
	worker(func(n int) bool {
		body := fmt.Sprintf(`{"address": ":%d", "labels": {"region": "eu"}, "refresh_interval": "1s"}`, 9000+n%5)
		if _, err := testutil.TryDo(client, http.MethodPut, fmt.Sprintf("%s/api/v1/leaves/leaf-%d", f.srv.URL, n%5), body); err != nil {
			t.Errorf("PUT: %v", err)
			return false
		}
		for _, sd := range []string{"/sd/leaves", "/sd/origins"} {
			r, err := testutil.TryDo(client, http.MethodGet, f.srv.URL+sd, "")
			if err != nil {
				t.Errorf("GET %s: %v", sd, err)
				return false
			}
			if r.Code != http.StatusOK || !strings.HasPrefix(r.Body, "[") {
				t.Errorf("GET %s: %d %s", sd, r.Code, r.Body)
				return false
			}
		}
		return true
	})
	// Run until each has happened many times over, however long that
	// takes on a busy machine, or until a worker has failed.
	const wantGets, wantReloads, wantRefused = 500, 100, 50
	deadline := time.Now().Add(time.Minute)
	for (gets.Load() < wantGets || reloads.Load() < wantReloads || refused.Load() < wantRefused) && !t.Failed() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling the counts
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d GETs, %d reloads, %d refused reloads, %d goroutines", gets.Load(), reloads.Load(), refused.Load(), runtime.NumGoroutine())
	if gets.Load() < wantGets || reloads.Load() < wantReloads || refused.Load() < wantRefused {
		t.Errorf("want at least %d GETs, %d reloads and %d refused reloads, got %d, %d, %d", wantGets, wantReloads, wantRefused, gets.Load(), reloads.Load(), refused.Load())
	}
}

// originsOf GETs /config?leaf_id=id and returns the origin ids, checking
// that the body parses as a served config.
func (f *fixture) originsOf(t testing.TB, id string) (ids []string, etag string) {
	t.Helper()
	path := "/config"
	if id != "" {
		path += "?leaf_id=" + id
	}
	r := f.do(t, http.MethodGet, path, "")
	if r.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.Code, r.Body)
	}
	if et := r.Header.Get("ETag"); et != config.ETag([]byte(r.Body)) {
		t.Errorf("GET %s: ETag %s does not match the body", path, et)
	}
	cfg, err := parser.ParseView([]byte(r.Body))
	if err != nil {
		t.Fatalf("GET %s: the leaf cannot parse %s: %v", path, r.Body, err)
	}
	for _, o := range cfg.Origins {
		ids = append(ids, o.ID)
		if id != "" && len(o.LeafSelector) > 0 {
			t.Errorf("GET %s: origin %s still has its leaf_selector", path, o.ID)
		}
	}
	if id != "" && len(cfg.Leaves) > 0 {
		t.Errorf("GET %s: a leaf's view lists the static leaves", path)
	}
	return ids, r.Header.Get("ETag")
}

func TestPerLeafConfig(t *testing.T) {
	f := newRegFixture(t, regConfig, configserver.RegistryOptions{})
	all := "everywhere eu-only tcp-origin"
	unselected := "everywhere tcp-origin"
	got := func(id string) (string, string) {
		ids, etag := f.originsOf(t, id)
		return strings.Join(ids, " "), etag
	}
	// Without leaf_id (an older leaf): the whole config.
	if ids, _ := got(""); ids != all {
		t.Errorf("/config: %s, want %s", ids, all)
	}
	// An unknown leaf sees only the origins without a selector.
	ids, unknownTag := got("stranger")
	if ids != unselected {
		t.Errorf("unknown leaf: %s, want %s", ids, unselected)
	}
	// A static leaf is selected by the labels of its entry.
	ids, staticTag := got("static-1")
	if ids != all {
		t.Errorf("static leaf with region=eu: %s, want %s", ids, all)
	}
	if staticTag == unknownTag {
		t.Errorf("two different views have the same ETag %s", staticTag)
	}
	// A registered leaf by the labels it registered with.
	if r := f.put(t, "ams-1", `{"address": ":9299", "labels": {"region": "eu"}}`); r.Code != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.Code, r.Body)
	}
	if r := f.put(t, "nyc-1", `{"address": ":9298", "labels": {"region": "us"}}`); r.Code != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.Code, r.Body)
	}
	amsIDs, amsTag := got("ams-1")
	nycIDs, nycTag := got("nyc-1")
	if amsIDs != all || nycIDs != unselected {
		t.Errorf("ams-1 (eu) sees %s, nyc-1 (us) sees %s; want %s and %s", amsIDs, nycIDs, all, unselected)
	}
	if amsTag != staticTag || nycTag != unknownTag {
		t.Errorf("the same view has different ETags: %s %s %s %s", amsTag, staticTag, nycTag, unknownTag)
	}
	// 304 per view: each leaf's own ETag, not another view's.
	for _, c := range []struct {
		id, etag string
		code     int
	}{
		{"ams-1", amsTag, http.StatusNotModified},
		{"nyc-1", nycTag, http.StatusNotModified},
		{"ams-1", nycTag, http.StatusOK},
		{"nyc-1", amsTag, http.StatusOK},
	} {
		r := f.do(t, http.MethodGet, "/config?leaf_id="+c.id, "", "If-None-Match", c.etag)
		if r.Code != c.code {
			t.Errorf("/config?leaf_id=%s with If-None-Match %s: %d, want %d", c.id, c.etag, r.Code, c.code)
		}
	}
	// A leaf that changes its labels gets its new view.
	if r := f.put(t, "nyc-1", `{"address": ":9298", "labels": {"region": "eu"}}`); r.Code != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.Code, r.Body)
	}
	if r := f.do(t, http.MethodGet, "/config?leaf_id=nyc-1", "", "If-None-Match", nycTag); r.Code != http.StatusOK {
		t.Errorf("after a label change the old view's ETag still gives %d", r.Code)
	}
	if ids, _ := got("nyc-1"); ids != all {
		t.Errorf("nyc-1 moved to eu sees %s", ids)
	}
	// An expired registration falls back to the unknown view.
	f.clock.Advance(4 * time.Minute)
	if ids, _ := got("ams-1"); ids != unselected {
		t.Errorf("expired ams-1 sees %s, want %s", ids, unselected)
	}
}

// TestPerLeafConfigEmpty: a leaf none of whose origins is meant for it
// gets a valid config without origins, which it accepts.
func TestPerLeafConfigEmpty(t *testing.T) {
	f := newRegFixture(t, `interval: 15
origins:
  - url: http://127.0.0.1:9/
    mode: simple
    leaf_selector: {region: eu}
`, configserver.RegistryOptions{})
	r := f.do(t, http.MethodGet, "/config?leaf_id=lonely", "")
	if r.Code != http.StatusOK {
		t.Fatalf("GET /config?leaf_id=lonely: %d %s", r.Code, r.Body)
	}
	cfg, err := parser.ParseView([]byte(r.Body))
	if err != nil {
		t.Fatalf("ParseView(%s): %v", r.Body, err)
	}
	if len(cfg.Origins) != 0 || cfg.Interval != 15*time.Second {
		t.Errorf("empty view: %d origins, interval %s", len(cfg.Origins), cfg.Interval)
	}
	// The file itself must list an origin; only views may be empty.
	if _, err := parser.Parse([]byte(r.Body)); err == nil {
		t.Errorf("Parse accepts a config without origins")
	}
	etag := r.Header.Get("ETag")
	if r := f.do(t, http.MethodGet, "/config?leaf_id=lonely", "", "If-None-Match", etag); r.Code != http.StatusNotModified {
		t.Errorf("empty view with its ETag: %d, want 304", r.Code)
	}
	// Many made-up ids all get the same view.
	for i := range 50 {
		r := f.do(t, http.MethodGet, "/config?leaf_id=made-up-"+strings.Repeat("x", i), "")
		if r.Header.Get("ETag") != etag {
			t.Fatalf("made-up id %d: ETag %s, want %s", i, r.Header.Get("ETag"), etag)
		}
	}
}

// TestServerReady: a server that has loaded its config is ready.
func TestServerReady(t *testing.T) {
	fx := newFixture(t, filepath.Join(t.TempDir(), "config.yaml"), configYAML("a.example.com", 9301))
	if err := fx.s.Ready(); err != nil {
		t.Errorf("Ready with a config: %v", err)
	}
}
