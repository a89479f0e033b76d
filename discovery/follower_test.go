package discovery_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oxcross/oxcross/discovery"
)

const (
	metricRefreshFailures = "oxcross_leaf_config_refresh_failures_total"
	metricRefreshSuccess  = "oxcross_leaf_config_last_refresh_success_timestamp_seconds"
	metricLeafOrigins     = "oxcross_leaf_config_origins"
	metricFromCache       = "oxcross_leaf_config_from_cache"
)

// applied records the configs a Follower applies.
type applied chan *discovery.Config

func (a applied) apply(c *discovery.Config) { a <- c }

// next waits for the next applied config.
func (a applied) next(t testing.TB, timeout time.Duration) *discovery.Config {
	t.Helper()
	select {
	case c := <-a:
		return c
	case <-time.After(timeout):
		t.Fatalf("no config applied within %s", timeout)
		return nil
	}
}

// none checks that no config is applied for d.
func (a applied) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case c := <-a:
		t.Errorf("unexpected Apply with origins %+v", c.Origins)
	case <-time.After(d):
	}
}

func originID(c *discovery.Config) string {
	if c == nil || len(c.Origins) != 1 {
		return "<not one origin>"
	}
	return c.Origins[0].ID
}

// value returns a leaf config metric from the registry.
func value(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) != 1 {
			continue
		}
		m := mf.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// follow creates a Follower from o and runs it until the test ends; it
// checks that Run returns once its context is cancelled.
func follow(t *testing.T, o discovery.FollowerOptions) (*discovery.Follower, applied, *prometheus.Registry) {
	t.Helper()
	a := make(applied, 100)
	reg := prometheus.NewRegistry()
	o.Apply, o.Logger, o.Registerer = a.apply, discardLogger, reg
	f, err := discovery.NewFollower(o)
	if err != nil {
		t.Fatalf("NewFollower: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context was cancelled")
		}
	})
	return f, a, reg
}

// switchable wraps a handler so that it answers code instead while
// *failing is set.
func switchable(failing *atomic.Bool, code int) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if failing.Load() {
				http.Error(w, "configserver is unwell", code)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

// writeReplace writes path by renaming a complete file over it, so that a
// poller never reads half of it.
func writeReplace(t testing.TB, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	srcWrite(t, tmp, text)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestNewFollowerNeedsOneSource(t *testing.T) {
	r, err := discovery.NewRemote("http://127.0.0.1:9300", http.DefaultClient, "test")
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]discovery.FollowerOptions{
		"neither": {},
		"both":    {Remote: r, File: discovery.NewFile("config.yaml")},
	} {
		o.Logger, o.Registerer, o.Apply = discardLogger, prometheus.NewRegistry(), func(*discovery.Config) {}
		if _, err := discovery.NewFollower(o); err == nil {
			t.Errorf("NewFollower with %s of Remote and File: no error", name)
		}
	}
}

func TestFollowerRemote(t *testing.T) {
	var failing atomic.Bool
	s, srv, path := newConfigServer(t, srcConfig("a.example.com"), switchable(&failing, http.StatusInternalServerError))
	remote, err := discovery.NewRemote(srv.URL, srv.Client(), "test")
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "cache.json")
	f, a, reg := follow(t, discovery.FollowerOptions{Remote: remote, CacheFile: cache, RefreshInterval: 50 * time.Millisecond})

	if got := originID(a.next(t, 3*time.Second)); got != "a.example.com-9301-http" {
		t.Fatalf("applied %s, want a.example.com-9301-http", got)
	}
	if err := f.Ready(); err != nil {
		t.Errorf("Ready after the first config: %v", err)
	}
	c, err := discovery.ReadCache(cache)
	if err != nil {
		t.Fatalf("cache after the first config: %v", err)
	}
	if !bytes.Equal(c.Body, s.Current().Body) {
		t.Errorf("cache holds %s, want %s", c.Body, s.Current().Body)
	}
	if got := value(t, reg, metricLeafOrigins); got != 1 {
		t.Errorf("%s = %v, want 1", metricLeafOrigins, got)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP oxcross_leaf_config_from_cache 1 while the leaf probes with the config from its cache file because the configserver has not answered since start.
# TYPE oxcross_leaf_config_from_cache gauge
oxcross_leaf_config_from_cache 0
# HELP oxcross_leaf_config_refresh_failures_total Config loads or refreshes that failed; the leaf kept its last good config.
# TYPE oxcross_leaf_config_refresh_failures_total counter
oxcross_leaf_config_refresh_failures_total 0
`), metricFromCache, metricRefreshFailures); err != nil {
		t.Error(err)
	}
	// Unchanged refreshes (304) count as successes and apply nothing.
	ts := value(t, reg, metricRefreshSuccess)
	if ts <= 0 {
		t.Errorf("%s = %v after a successful load", metricRefreshSuccess, ts)
	}
	a.none(t, 150*time.Millisecond)

	// The configserver's config changes: the follower picks it up.
	srcWrite(t, path, srcConfig("b.example.com"))
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := originID(a.next(t, 3*time.Second)); got != "b.example.com-9301-http" {
		t.Fatalf("applied %s after the change, want b.example.com-9301-http", got)
	}
	eventually(t, 2*time.Second, "the cache to hold the new config", func() bool {
		c, err := discovery.ReadCache(cache)
		return err == nil && bytes.Equal(c.Body, s.Current().Body)
	})

	// The configserver fails: failures are counted, the config is kept.
	failing.Store(true)
	before := value(t, reg, metricRefreshFailures)
	eventually(t, 3*time.Second, "refresh failures to be counted", func() bool {
		return value(t, reg, metricRefreshFailures) >= before+2
	})
	a.none(t, 100*time.Millisecond)
	if err := f.Ready(); err != nil {
		t.Errorf("Ready while the configserver fails: %v", err)
	}
	if c, err := discovery.ReadCache(cache); err != nil || !bytes.Equal(c.Body, s.Current().Body) {
		t.Errorf("cache after failures: %v, %v; want the last good config", c, err)
	}

	// It recovers with the same config: a 304 is a success, nothing new
	// is applied.
	ts = value(t, reg, metricRefreshSuccess)
	failing.Store(false)
	eventually(t, 3*time.Second, "a successful refresh", func() bool {
		return value(t, reg, metricRefreshSuccess) > ts
	})
	a.none(t, 50*time.Millisecond)
}

// closedURL returns the URL of a port nothing listens on.
func closedURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

func TestFollowerStartsFromCache(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache.json")
	cached := srcLoaded(t, srcConfig("cached.example.com"))
	if err := discovery.WriteCache(cache, cached.Body); err != nil {
		t.Fatal(err)
	}
	remote, err := discovery.NewRemote(closedURL(t), &http.Client{Timeout: time.Second}, "test")
	if err != nil {
		t.Fatal(err)
	}
	f, a, reg := follow(t, discovery.FollowerOptions{Remote: remote, CacheFile: cache, RefreshInterval: 50 * time.Millisecond})

	if got := originID(a.next(t, 3*time.Second)); got != "cached.example.com-9301-http" {
		t.Fatalf("applied %s, want the cached config", got)
	}
	if err := f.Ready(); err != nil {
		t.Errorf("Ready with the cached config: %v", err)
	}
	if got := value(t, reg, metricFromCache); got != 1 {
		t.Errorf("%s = %v, want 1", metricFromCache, got)
	}
	eventually(t, 3*time.Second, "refresh failures to be counted", func() bool {
		return value(t, reg, metricRefreshFailures) >= 3
	})
	a.none(t, 50*time.Millisecond)
	if got := value(t, reg, metricFromCache); got != 1 {
		t.Errorf("%s while the configserver is down = %v, want 1", metricFromCache, got)
	}
	if c, err := discovery.ReadCache(cache); err != nil || !bytes.Equal(c.Body, cached.Body) {
		t.Errorf("cache after failures: %v, %v; want it untouched", c, err)
	}
}

func TestFollowerCacheThenServer(t *testing.T) {
	// The configserver is unwell at start, then comes back with the config
	// the leaf has cached (a 304: nothing to apply) and then with a new one.
	var down atomic.Bool
	down.Store(true)
	s, srv, path := newConfigServer(t, srcConfig("a.example.com"), switchable(&down, http.StatusServiceUnavailable))
	cache := filepath.Join(t.TempDir(), "cache.json")
	if err := discovery.WriteCache(cache, s.Current().Body); err != nil {
		t.Fatal(err)
	}
	remote, err := discovery.NewRemote(srv.URL, srv.Client(), "test")
	if err != nil {
		t.Fatal(err)
	}
	_, a, reg := follow(t, discovery.FollowerOptions{Remote: remote, CacheFile: cache, RefreshInterval: 50 * time.Millisecond})

	if got := originID(a.next(t, 3*time.Second)); got != "a.example.com-9301-http" {
		t.Fatalf("applied %s, want the cached config", got)
	}
	if got := value(t, reg, metricFromCache); got != 1 {
		t.Errorf("%s = %v, want 1", metricFromCache, got)
	}
	down.Store(false)
	eventually(t, 3*time.Second, metricFromCache+" = 0", func() bool {
		return value(t, reg, metricFromCache) == 0
	})
	a.none(t, 100*time.Millisecond)

	srcWrite(t, path, srcConfig("b.example.com"))
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := originID(a.next(t, 3*time.Second)); got != "b.example.com-9301-http" {
		t.Fatalf("applied %s after the change, want b.example.com-9301-http", got)
	}
}

func TestFollowerWaitsForServer(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	s, srv, _ := newConfigServer(t, srcConfig("a.example.com"), switchable(&down, http.StatusServiceUnavailable))
	remote, err := discovery.NewRemote(srv.URL, srv.Client(), "test")
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "cache.json") // there is none yet
	f, a, reg := follow(t, discovery.FollowerOptions{Remote: remote, CacheFile: cache, RefreshInterval: 50 * time.Millisecond})

	if err := f.Ready(); err == nil || !strings.Contains(err.Error(), "no config yet") {
		t.Errorf("Ready before any config: %v, want an error saying no config yet", err)
	}
	eventually(t, 3*time.Second, "the failure to show in Ready", func() bool {
		err := f.Ready()
		return err != nil && strings.Contains(err.Error(), "503")
	})
	if err := f.Ready(); !strings.Contains(err.Error(), "no config yet") {
		t.Errorf("Ready after a failure: %v, want an error saying no config yet", err)
	}
	if got := value(t, reg, metricRefreshFailures); got < 1 {
		t.Errorf("%s = %v, want >= 1", metricRefreshFailures, got)
	}
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Errorf("cache file exists before any config: %v", err)
	}
	a.none(t, 50*time.Millisecond)

	down.Store(false)
	if got := originID(a.next(t, 5*time.Second)); got != "a.example.com-9301-http" {
		t.Fatalf("applied %s, want a.example.com-9301-http", got)
	}
	if err := f.Ready(); err != nil {
		t.Errorf("Ready after the configserver came up: %v", err)
	}
	if c, err := discovery.ReadCache(cache); err != nil || !bytes.Equal(c.Body, s.Current().Body) {
		t.Errorf("cache after the first config: %v, %v", c, err)
	}
	if got := value(t, reg, metricFromCache); got != 0 {
		t.Errorf("%s = %v, want 0", metricFromCache, got)
	}
}

func TestFollowerFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	srcWrite(t, path, srcConfig("a.example.com"))
	f, a, reg := follow(t, discovery.FollowerOptions{File: discovery.NewFile(path), WatchInterval: 20 * time.Millisecond})

	if got := originID(a.next(t, 3*time.Second)); got != "a.example.com-9301-http" {
		t.Fatalf("applied %s, want a.example.com-9301-http", got)
	}
	if err := f.Ready(); err != nil {
		t.Errorf("Ready: %v", err)
	}

	writeReplace(t, path, srcConfig("b.example.com"))
	if got := originID(a.next(t, 3*time.Second)); got != "b.example.com-9301-http" {
		t.Fatalf("applied %s after an edit, want b.example.com-9301-http", got)
	}

	// A broken edit is counted once and applies nothing.
	before := value(t, reg, metricRefreshFailures)
	writeReplace(t, path, srcConfig("c.example.com")+"    bogus: field\n")
	eventually(t, 3*time.Second, "the broken edit to be counted", func() bool {
		return value(t, reg, metricRefreshFailures) >= before+1
	})
	a.none(t, 150*time.Millisecond)
	if got := value(t, reg, metricRefreshFailures); got != before+1 {
		t.Errorf("%s = %v after one broken edit, want %v", metricRefreshFailures, got, before+1)
	}
	if err := f.Ready(); err != nil {
		t.Errorf("Ready with a broken file and a good config: %v", err)
	}

	// Fixing it applies the fixed config.
	writeReplace(t, path, srcConfig("c.example.com"))
	if got := originID(a.next(t, 3*time.Second)); got != "c.example.com-9301-http" {
		t.Fatalf("applied %s after the fix, want c.example.com-9301-http", got)
	}
	if got := value(t, reg, metricLeafOrigins); got != 1 {
		t.Errorf("%s = %v, want 1", metricLeafOrigins, got)
	}
}

func TestFollowerFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	srcWrite(t, path, srcConfig("a.example.com"))
	// The watch interval is long: only Reload makes the follower look again.
	f, a, reg := follow(t, discovery.FollowerOptions{File: discovery.NewFile(path), WatchInterval: time.Hour})

	if got := originID(a.next(t, 3*time.Second)); got != "a.example.com-9301-http" {
		t.Fatalf("applied %s, want a.example.com-9301-http", got)
	}
	writeReplace(t, path, srcConfig("b.example.com"))
	a.none(t, 50*time.Millisecond)
	f.Reload()
	if got := originID(a.next(t, 2*time.Second)); got != "b.example.com-9301-http" {
		t.Fatalf("applied %s after Reload, want b.example.com-9301-http", got)
	}

	// Reloading an unchanged file applies nothing.
	f.Reload()
	a.none(t, 100*time.Millisecond)

	// Reloading a broken file counts a failure and keeps the config.
	writeReplace(t, path, "origins: []\n")
	f.Reload()
	eventually(t, 2*time.Second, "the failed reload to be counted", func() bool {
		return value(t, reg, metricRefreshFailures) == 1
	})
	a.none(t, 50*time.Millisecond)
	if err := f.Ready(); err != nil {
		t.Errorf("Ready after a failed reload: %v", err)
	}
}

func TestFollowerFileMissingAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	f, a, _ := follow(t, discovery.FollowerOptions{File: discovery.NewFile(path), WatchInterval: 20 * time.Millisecond})
	eventually(t, 2*time.Second, "Ready to report the missing file", func() bool {
		err := f.Ready()
		return err != nil && strings.Contains(err.Error(), "no config yet") && strings.Contains(err.Error(), path)
	})
	// Reload cuts the start backoff short.
	writeReplace(t, path, srcConfig("a.example.com"))
	f.Reload()
	if got := originID(a.next(t, 3*time.Second)); got != "a.example.com-9301-http" {
		t.Fatalf("applied %s, want a.example.com-9301-http", got)
	}
	if err := f.Ready(); err != nil {
		t.Errorf("Ready: %v", err)
	}
}
