package configserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/discovery"
)

const (
	metricReloadOK   = "oxcross_configserver_config_last_reload_successful"
	metricReloadTime = "oxcross_configserver_config_last_reload_success_timestamp_seconds"
	metricReloads    = "oxcross_configserver_config_reloads_total"
	metricOrigins    = "oxcross_configserver_config_origins"
	metricRequests   = "oxcross_configserver_config_requests_total"
)

var discard = slog.New(slog.DiscardHandler)

// configYAML is a valid config with one origin at host:port.
func configYAML(host string, port int) string {
	return fmt.Sprintf("interval: 30\ntimeout: 10\norigins:\n  - scheme: http\n    hostname: %s\n    port: %d\n    mode: advanced\n", host, port)
}

// loadedOf is what the configserver should serve for a config text.
func loadedOf(t testing.TB, text string) *discovery.Loaded {
	t.Helper()
	cfg, err := discovery.Parse([]byte(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	l, err := discovery.NewLoaded(cfg)
	if err != nil {
		t.Fatalf("NewLoaded: %v", err)
	}
	return l
}

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeAtomic replaces path by renaming a complete file over it.
func writeAtomic(t testing.TB, path, text string) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		t.Error(err)
		return
	}
	if _, err := tmp.WriteString(text); err != nil {
		t.Error(err)
	}
	if err := tmp.Close(); err != nil {
		t.Error(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Error(err)
	}
}

// metricValue returns the value of the single series of a gauge or counter
// (with the given label pairs), failing when there is none.
func metricValue(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type fixture struct {
	path string
	reg  *prometheus.Registry
	s    *configserver.Server
	srv  *httptest.Server
}

func newFixture(t *testing.T, path, text string) *fixture {
	t.Helper()
	if text != "" {
		writeFile(t, path, text)
	}
	reg := prometheus.NewRegistry()
	s, err := configserver.New(path, reg, discard)
	if err != nil {
		t.Fatalf("New(%s): %v", path, err)
	}
	srv := httptest.NewServer(configserver.NewMux(s))
	t.Cleanup(srv.Close)
	return &fixture{path: path, reg: reg, s: s, srv: srv}
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (f *fixture) do(t testing.TB, method, path string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: body}
}

// served GETs /config and checks that the response is a consistent 200.
func (f *fixture) served(t testing.TB) response {
	t.Helper()
	r := f.do(t, http.MethodGet, "/config")
	if r.code != http.StatusOK {
		t.Fatalf("GET /config: status %d, body %q", r.code, r.body)
	}
	if et := r.header.Get("ETag"); et != discovery.ETag(r.body) {
		t.Fatalf("GET /config: ETag %s, want discovery.ETag(body) = %s", et, discovery.ETag(r.body))
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
	want := loadedOf(t, text)

	r := f.served(t)
	if !bytes.Equal(r.body, want.Body) {
		t.Errorf("body = %s, want %s", r.body, want.Body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var doc struct {
		Origins []struct {
			Name string `json:"name"`
			URL  string `json:"url"`
		} `json:"origins"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r.body)
	}
	if len(doc.Origins) != 1 || doc.Origins[0].Name != "example.com-9301-http" || doc.Origins[0].URL != "http://example.com:9301/oxcross" {
		t.Errorf("origins = %+v", doc.Origins)
	}
	etag := r.header.Get("ETag")
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
			r := f.do(t, http.MethodGet, "/config", "If-None-Match", tc.inm)
			if r.code != tc.code {
				t.Fatalf("If-None-Match %s: status %d, want %d", tc.inm, r.code, tc.code)
			}
			if r.header.Get("ETag") != etag {
				t.Errorf("ETag = %q, want %s", r.header.Get("ETag"), etag)
			}
			if tc.code == http.StatusNotModified && len(r.body) != 0 {
				t.Errorf("304 with a body: %q", r.body)
			}
			if tc.code == http.StatusOK && !bytes.Equal(r.body, want.Body) {
				t.Errorf("body = %s, want %s", r.body, want.Body)
			}
		})
	}

	if r := f.do(t, http.MethodHead, "/config"); r.code != http.StatusOK || len(r.body) != 0 || r.header.Get("ETag") != etag {
		t.Errorf("HEAD /config: status %d, body %q, ETag %q", r.code, r.body, r.header.Get("ETag"))
	}
	if r := f.do(t, http.MethodPost, "/config"); r.code != http.StatusMethodNotAllowed {
		t.Errorf("POST /config: status %d, want 405", r.code)
	}
	if r := f.do(t, http.MethodGet, "/healthz"); r.code != http.StatusOK {
		t.Errorf("GET /healthz: status %d", r.code)
	}
	if got := metricValue(t, f.reg, metricRequests, "code", "304"); got < 4 {
		t.Errorf("%s{code=304} = %v, want >= 4", metricRequests, got)
	}
	if got := metricValue(t, f.reg, metricOrigins); got != 1 {
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
			writeFile(t, path, text)
			s, err := configserver.New(path, prometheus.NewRegistry(), discard)
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
		if _, err := configserver.New(path, prometheus.NewRegistry(), discard); err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("New on a missing file: err = %v, want one naming %s", err, path)
		}
	})
}

func TestReload(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "config.yaml"), configYAML("a.example.com", 9301))
	first := f.served(t)
	if got := metricValue(t, f.reg, metricReloadOK); got != 1 {
		t.Errorf("%s after New = %v, want 1", metricReloadOK, got)
	}

	// A good edit: new body, new ETag.
	writeFile(t, f.path, configYAML("b.example.com", 9301))
	before := time.Now().Unix()
	if err := f.s.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	second := f.served(t)
	if want := loadedOf(t, configYAML("b.example.com", 9301)); !bytes.Equal(second.body, want.Body) {
		t.Fatalf("after Reload: body %s, want %s", second.body, want.Body)
	}
	if second.header.Get("ETag") == first.header.Get("ETag") {
		t.Errorf("ETag did not change with the config: %s", second.header.Get("ETag"))
	}
	if r := f.do(t, http.MethodGet, "/config", "If-None-Match", first.header.Get("ETag")); r.code != http.StatusOK {
		t.Errorf("old ETag after a change: status %d, want 200", r.code)
	}
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(`
# HELP oxcross_configserver_config_last_reload_successful 1 if the last config reload succeeded, 0 if it failed and the previous config is still served.
# TYPE oxcross_configserver_config_last_reload_successful gauge
oxcross_configserver_config_last_reload_successful 1
`), metricReloadOK); err != nil {
		t.Error(err)
	}
	if ts := metricValue(t, f.reg, metricReloadTime); ts < float64(before) || ts > float64(time.Now().Unix()+1) {
		t.Errorf("%s = %v, want about %d", metricReloadTime, ts, before)
	}
	successes := metricValue(t, f.reg, metricReloads, "result", "success")

	// Broken edits: an error naming the file, the old config still served.
	for name, text := range map[string]string{
		"yaml": "interval: 30\norigins:\n  - scheme: http\n    hostname: [\n",
		"port": configYAML("c.example.com", 70000),
	} {
		t.Run(name, func(t *testing.T) {
			writeFile(t, f.path, text)
			failures := metricValue(t, f.reg, metricReloads, "result", "failure")
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
			if !bytes.Equal(r.body, second.body) || r.header.Get("ETag") != second.header.Get("ETag") {
				t.Errorf("after a failed reload: body %s, want the previous %s", r.body, second.body)
			}
			if got := metricValue(t, f.reg, metricReloadOK); got != 0 {
				t.Errorf("%s = %v, want 0", metricReloadOK, got)
			}
			if got := metricValue(t, f.reg, metricReloads, "result", "failure"); got != failures+1 {
				t.Errorf("%s{result=failure} = %v, want %v", metricReloads, got, failures+1)
			}

			// Fixing it reloads again.
			writeFile(t, f.path, configYAML("b.example.com", 9301))
			if err := f.s.Reload(); err != nil {
				t.Fatalf("Reload after the fix: %v", err)
			}
			if got := metricValue(t, f.reg, metricReloadOK); got != 1 {
				t.Errorf("%s after the fix = %v, want 1", metricReloadOK, got)
			}
		})
	}
	if got := metricValue(t, f.reg, metricReloads, "result", "success"); got != successes+2 {
		t.Errorf("%s{result=success} = %v, want %v", metricReloads, got, successes+2)
	}

	// A file that vanished keeps the config too.
	if err := os.Remove(f.path); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Reload(); err == nil || !strings.Contains(err.Error(), f.path) {
		t.Errorf("Reload of a missing file: err = %v, want one naming %s", err, f.path)
	}
	if r := f.served(t); !bytes.Equal(r.body, second.body) {
		t.Errorf("after the file vanished: body %s, want %s", r.body, second.body)
	}
}

func TestReloadEndpoint(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "config.yaml"), configYAML("a.example.com", 9301))

	writeFile(t, f.path, configYAML("b.example.com", 9301)+"  - url: https://c.example.com/\n    mode: simple\n")
	r := f.do(t, http.MethodPost, "/-/reload")
	if r.code != http.StatusOK {
		t.Fatalf("POST /-/reload on a good file: status %d, body %q", r.code, r.body)
	}
	if !strings.Contains(string(r.body), "2 origins") {
		t.Errorf("POST /-/reload body %q does not say how many origins", r.body)
	}
	good := f.served(t)
	if !strings.Contains(string(good.body), "b.example.com") {
		t.Errorf("after POST /-/reload: body %s", good.body)
	}
	if got := metricValue(t, f.reg, metricOrigins); got != 2 {
		t.Errorf("%s = %v, want 2", metricOrigins, got)
	}

	writeFile(t, f.path, configYAML("d.example.com", 0))
	r = f.do(t, http.MethodPost, "/-/reload")
	if r.code != http.StatusInternalServerError {
		t.Fatalf("POST /-/reload on a broken file: status %d, body %q", r.code, r.body)
	}
	if !strings.Contains(string(r.body), f.path) || !strings.Contains(string(r.body), "port") {
		t.Errorf("POST /-/reload failure body %q does not give the reason", r.body)
	}
	if now := f.served(t); !bytes.Equal(now.body, good.body) {
		t.Errorf("after a failed POST /-/reload: body %s, want %s", now.body, good.body)
	}
	if got := metricValue(t, f.reg, metricReloadOK); got != 0 {
		t.Errorf("%s = %v, want 0", metricReloadOK, got)
	}

	if r := f.do(t, http.MethodGet, "/-/reload"); r.code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: status %d, want 405", r.code)
	}
	if f.s.Current().ETag != good.header.Get("ETag") {
		t.Error("GET /-/reload changed the config")
	}
}

func TestWatchEditInPlace(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "config.yaml"), configYAML("a.example.com", 9301))
	old := f.served(t)
	runWatch(t, f.s, 20*time.Millisecond)

	writeFile(t, f.path, configYAML("b.example.com", 9301))
	want := loadedOf(t, configYAML("b.example.com", 9301))
	waitFor(t, 2*time.Second, "the edited config to be served", func() bool {
		return bytes.Equal(f.served(t).body, want.Body)
	})
	if f.served(t).header.Get("ETag") == old.header.Get("ETag") {
		t.Error("ETag did not change")
	}
	waitFor(t, 2*time.Second, metricReloadOK+" = 1", func() bool {
		return metricValue(t, f.reg, metricReloadOK) == 1
	})

	// A broken edit is reported and the last good config stays.
	writeFile(t, f.path, "origins: {\n")
	waitFor(t, 2*time.Second, metricReloadOK+" = 0", func() bool {
		return metricValue(t, f.reg, metricReloadOK) == 0
	})
	if got := f.served(t); !bytes.Equal(got.body, want.Body) {
		t.Errorf("after a broken edit: body %s, want %s", got.body, want.Body)
	}
}

// configMap lays out dir like a Kubernetes ConfigMap volume and returns the
// path of config.yaml in it.
func configMap(t *testing.T, dir, text string) string {
	t.Helper()
	version := filepath.Join(dir, "..2026_01_01_v1")
	if err := os.Mkdir(version, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(version, "config.yaml"), text)
	if err := os.Symlink("..2026_01_01_v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), path); err != nil {
		t.Fatal(err)
	}
	return path
}

// swapConfigMap updates a ConfigMap volume the way the kubelet does: a new
// timestamped directory, a new ..data_tmp symlink to it, renamed over ..data.
func swapConfigMap(t *testing.T, dir, version, text string) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(dir, version), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, version, "config.yaml"), text)
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

func TestWatchConfigMap(t *testing.T) {
	dir := t.TempDir()
	path := configMap(t, dir, configYAML("a.example.com", 9301))
	f := newFixture(t, path, "")
	if want := loadedOf(t, configYAML("a.example.com", 9301)); !bytes.Equal(f.served(t).body, want.Body) {
		t.Fatalf("initial body %s, want %s", f.served(t).body, want.Body)
	}
	runWatch(t, f.s, 20*time.Millisecond)

	swapConfigMap(t, dir, "..2026_01_01_v2", configYAML("b.example.com", 9301))
	want := loadedOf(t, configYAML("b.example.com", 9301))
	waitFor(t, 2*time.Second, "the swapped ConfigMap to be served", func() bool {
		return bytes.Equal(f.served(t).body, want.Body)
	})
	if got := metricValue(t, f.reg, metricReloadOK); got != 1 {
		t.Errorf("%s = %v, want 1", metricReloadOK, got)
	}

	// A swap to a broken config keeps the last good one.
	swapConfigMap(t, dir, "..2026_01_01_v3", configYAML("c.example.com", 70000))
	waitFor(t, 2*time.Second, metricReloadOK+" = 0", func() bool {
		return metricValue(t, f.reg, metricReloadOK) == 0
	})
	if got := f.served(t); !bytes.Equal(got.body, want.Body) {
		t.Errorf("after a broken swap: body %s, want %s", got.body, want.Body)
	}

	// And the next good swap is picked up.
	swapConfigMap(t, dir, "..2026_01_01_v4", configYAML("d.example.com", 9301))
	want = loadedOf(t, configYAML("d.example.com", 9301))
	waitFor(t, 2*time.Second, "the fixed ConfigMap to be served", func() bool {
		return bytes.Equal(f.served(t).body, want.Body)
	})
	if got := metricValue(t, f.reg, metricReloadOK); got != 1 {
		t.Errorf("%s = %v, want 1", metricReloadOK, got)
	}
}

func TestConcurrentReloadAndServe(t *testing.T) {
	textA, textB := configYAML("a.example.com", 9301), configYAML("b.example.com", 9302)
	f := newFixture(t, filepath.Join(t.TempDir(), "config.yaml"), textA)
	bodies := map[string]bool{string(loadedOf(t, textA).Body): true, string(loadedOf(t, textB).Body): true}
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
					writeAtomic(t, f.path, text)
				case 1: // reload
					if err := f.s.Reload(); err != nil {
						failures.Add(1)
						t.Errorf("Reload: %v", err)
						return
					}
					reloads.Add(1)
				default: // serve
					req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/config", nil)
					resp, err := f.srv.Client().Do(req)
					if err != nil {
						t.Errorf("GET /config: %v", err)
						return
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != http.StatusOK {
						t.Errorf("GET /config: status %d, err %v", resp.StatusCode, err)
						return
					}
					if !bodies[string(body)] {
						t.Errorf("GET /config served an unexpected body %s", body)
						return
					}
					if et := resp.Header.Get("ETag"); et != discovery.ETag(body) {
						t.Errorf("GET /config: ETag %s does not match the body %s", et, body)
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
	if got := metricValue(t, f.reg, metricReloadOK); got != 1 {
		t.Errorf("%s = %v, want 1", metricReloadOK, got)
	}
}
