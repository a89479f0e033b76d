package discovery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/testutil"
)

const (
	metricRefreshFailures = "oxcross_leaf_config_refresh_failures_total"
	metricRefreshSuccess  = "oxcross_leaf_config_last_refresh_success_timestamp_seconds"
	metricLeafOrigins     = "oxcross_leaf_config_origins"
	metricFromCache       = "oxcross_leaf_config_from_cache"
)

// applied records the configs a Follower applies.
type applied chan *config.Config

// next waits for the next applied config.
func (a applied) next(t testing.TB, timeout time.Duration) *config.Config {
	t.Helper()
	select {
	case c := <-a:
		return c
	case <-time.After(timeout):
		t.Fatalf("no config applied within %s", timeout)
		return nil
	}
}

// nextOrigin waits for the next applied config and checks that it is
// what, a config of the one origin want.
func (a applied) nextOrigin(t testing.TB, timeout time.Duration, want, what string) {
	t.Helper()
	if got := originID(a.next(t, timeout)); got != want {
		t.Fatalf("applied %s, want %s (%s)", got, want, what)
	}
}

// none checks that no config has been applied since the last next.
func (a applied) none(t testing.TB) {
	t.Helper()
	select {
	case c := <-a:
		t.Errorf("unexpected Apply with origins %+v", c.Origins)
	default:
	}
}

func originID(c *config.Config) string {
	switch {
	case c == nil:
		return "<no config>"
	case len(c.Origins) != 1:
		return "<not one origin>"
	}
	return c.Origins[0].ID
}

// follow creates a Follower from o (logging nowhere unless o has a
// Logger) and runs it until the test ends; it
// checks that Run returns once its context is cancelled, and that every
// config Apply gets is already the one Config returns.
func follow(t *testing.T, o discovery.FollowerOptions) (*discovery.Follower, applied, *prometheus.Registry) {
	t.Helper()
	a := make(applied, 100)
	reg := prometheus.NewRegistry()
	var f *discovery.Follower
	o.Apply = func(c *config.Config) {
		if cur := f.Config(); cur != c {
			t.Errorf("Apply got the config of %s (%p) while Config returns that of %s (%p)", originID(c), c, originID(cur), cur)
		}
		a <- c
	}
	if o.Logger == nil {
		o.Logger = discardLogger
	}
	o.Registerer = reg
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

// metric returns the value of a leaf config metric.
func metric(t testing.TB, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	return testutil.MetricValue(t, reg, name)
}

// notModifiedTwice waits until s has answered two more requests 304 than
// it had when called: by then the follower has handled the first of them
// to the end (it asks again only after that).
func notModifiedTwice(t testing.TB, s *configServer) {
	t.Helper()
	n := s.answered(http.StatusNotModified)
	testutil.Eventually(t, 3*time.Second, "two refreshes answered 304", func() bool {
		return s.answered(http.StatusNotModified) >= n+2
	})
}

func TestNewFollowerNeedsOneSource(t *testing.T) {
	r, err := discovery.NewRemote("http://127.0.0.1:9300", "", http.DefaultClient, "test", parser)
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]discovery.FollowerOptions{
		"neither": {},
		"both":    {Remote: r, File: config.NewFile("config.yaml", parser)},
	} {
		o.Logger, o.Registerer, o.Apply = discardLogger, prometheus.NewRegistry(), func(*config.Config) {}
		if _, err := discovery.NewFollower(o); err == nil {
			t.Errorf("NewFollower with %s of Remote and File: no error", name)
		}
	}
}

func TestFollowerRemote(t *testing.T) {
	s := newConfigServer(t, srcConfig("a.example.com"))
	remote := newRemote(t, s.Server)
	cache := filepath.Join(t.TempDir(), "cache.json")
	f, a, reg := follow(t, discovery.FollowerOptions{Remote: remote, CacheFile: cache, RefreshInterval: 50 * time.Millisecond})

	a.nextOrigin(t, 3*time.Second, "a.example.com-9301-http", "the first config")
	if err := f.Ready(); err != nil {
		t.Errorf("Ready after the first config: %v", err)
	}
	c, err := discovery.ReadCache(cache, parser)
	if err != nil {
		t.Fatalf("cache after the first config: %v", err)
	}
	if !bytes.Equal(c.Body, s.Current().Body) {
		t.Errorf("cache holds %s, want %s", c.Body, s.Current().Body)
	}
	if got := metric(t, reg, metricLeafOrigins); got != 1 {
		t.Errorf("%s = %v, want 1", metricLeafOrigins, got)
	}
	if err := promtestutil.GatherAndCompare(reg, strings.NewReader(`
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
	ts := metric(t, reg, metricRefreshSuccess)
	if ts <= 0 {
		t.Errorf("%s = %v after a successful load", metricRefreshSuccess, ts)
	}
	notModifiedTwice(t, s)
	a.none(t)
	if got := metric(t, reg, metricRefreshSuccess); got <= ts {
		t.Errorf("%s = %v after refreshes answered 304, want later than %v", metricRefreshSuccess, got, ts)
	}

	// The configserver's config changes: the follower picks it up.
	s.set(t, srcConfig("b.example.com"))
	a.nextOrigin(t, 3*time.Second, "b.example.com-9301-http", "the changed config")
	testutil.Eventually(t, 2*time.Second, "the cache to hold the new config", func() bool {
		c, err := discovery.ReadCache(cache, parser)
		return err == nil && bytes.Equal(c.Body, s.Current().Body)
	})

	// The configserver fails: failures are counted, the config is kept.
	s.fail(http.StatusInternalServerError)
	before := metric(t, reg, metricRefreshFailures)
	testutil.Eventually(t, 3*time.Second, "refresh failures to be counted", func() bool {
		return metric(t, reg, metricRefreshFailures) >= before+2
	})
	a.none(t)
	if err := f.Ready(); err != nil {
		t.Errorf("Ready while the configserver fails: %v", err)
	}
	if c, err := discovery.ReadCache(cache, parser); err != nil || !bytes.Equal(c.Body, s.Current().Body) {
		t.Errorf("cache after failures: %v, %v; want the last good config", c, err)
	}

	// It recovers with the same config: a 304 is a success, nothing new
	// is applied.
	ts = metric(t, reg, metricRefreshSuccess)
	s.fail(0)
	notModifiedTwice(t, s)
	if got := metric(t, reg, metricRefreshSuccess); got <= ts {
		t.Errorf("%s = %v after the recovery, want later than %v", metricRefreshSuccess, got, ts)
	}
	a.none(t)
}

func TestFollowerStartsFromCache(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache.json")
	cached := snapshot(t, srcConfig("cached.example.com"))
	if err := discovery.WriteCache(cache, cached.Body); err != nil {
		t.Fatal(err)
	}
	remote, err := discovery.NewRemote(testutil.ClosedURL(t), "", &http.Client{Timeout: time.Second}, "test", parser)
	if err != nil {
		t.Fatal(err)
	}
	f, a, reg := follow(t, discovery.FollowerOptions{Remote: remote, CacheFile: cache, RefreshInterval: 50 * time.Millisecond})

	a.nextOrigin(t, 3*time.Second, "cached.example.com-9301-http", "the cached config")
	if err := f.Ready(); err != nil {
		t.Errorf("Ready with the cached config: %v", err)
	}
	if got := metric(t, reg, metricFromCache); got != 1 {
		t.Errorf("%s = %v, want 1", metricFromCache, got)
	}
	testutil.Eventually(t, 3*time.Second, "refresh failures to be counted", func() bool {
		return metric(t, reg, metricRefreshFailures) >= 3
	})
	a.none(t)
	if got := metric(t, reg, metricFromCache); got != 1 {
		t.Errorf("%s while the configserver is down = %v, want 1", metricFromCache, got)
	}
	if got := originID(f.Config()); got != "cached.example.com-9301-http" {
		t.Errorf("Config() while the configserver is down has %s, want the cached config", got)
	}
	if c, err := discovery.ReadCache(cache, parser); err != nil || !bytes.Equal(c.Body, cached.Body) {
		t.Errorf("cache after failures: %v, %v; want it untouched", c, err)
	}
}

// TestFollowerCacheBeyondLimits: the cache is read with Remote's parser,
// so a cache written under looser limits is no use, and Ready says why.
func TestFollowerCacheBeyondLimits(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache.json")
	if err := discovery.WriteCache(cache, snapshot(t, testutil.OriginsConfig(3, "10s")).Body); err != nil {
		t.Fatal(err)
	}
	lim := kinds.Parser(config.Limits{MaxOrigins: 2})
	remote, err := discovery.NewRemote(testutil.ClosedURL(t), "", &http.Client{Timeout: time.Second}, "test", lim)
	if err != nil {
		t.Fatal(err)
	}
	f, a, _ := follow(t, discovery.FollowerOptions{Remote: remote, CacheFile: cache, RefreshInterval: 50 * time.Millisecond})
	testutil.EventuallyReason(t, 3*time.Second, "Ready to say why the cache is no use", func() string {
		err := f.Ready()
		if err == nil || !strings.Contains(err.Error(), "the cache is no use") || !strings.Contains(err.Error(), "limit of 2") {
			return "Ready: " + errString(err)
		}
		return ""
	})
	a.none(t)
	if c := f.Config(); c != nil {
		t.Errorf("Config() has %d origins from a cache beyond the limits, want nil", len(c.Origins))
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestFollowerCacheThenServer(t *testing.T) {
	// The configserver is unwell at start, then comes back with the config
	// the leaf has cached (a 304: nothing to apply) and then with a new one.
	s := newConfigServer(t, srcConfig("a.example.com"))
	s.fail(http.StatusServiceUnavailable)
	cache := filepath.Join(t.TempDir(), "cache.json")
	if err := discovery.WriteCache(cache, s.Current().Body); err != nil {
		t.Fatal(err)
	}
	remote := newRemote(t, s.Server)
	_, a, reg := follow(t, discovery.FollowerOptions{Remote: remote, CacheFile: cache, RefreshInterval: 50 * time.Millisecond})

	a.nextOrigin(t, 3*time.Second, "a.example.com-9301-http", "the cached config")
	if got := metric(t, reg, metricFromCache); got != 1 {
		t.Errorf("%s = %v, want 1", metricFromCache, got)
	}
	s.fail(0)
	testutil.Eventually(t, 3*time.Second, metricFromCache+" = 0", func() bool {
		return metric(t, reg, metricFromCache) == 0
	})
	notModifiedTwice(t, s)
	a.none(t)
	if n := s.answered(http.StatusOK); n != 0 {
		t.Errorf("the configserver sent the cached config %d times, want none (304s)", n)
	}

	s.set(t, srcConfig("b.example.com"))
	a.nextOrigin(t, 3*time.Second, "b.example.com-9301-http", "the changed config")
}

func TestFollowerWaitsForServer(t *testing.T) {
	s := newConfigServer(t, srcConfig("a.example.com"))
	s.fail(http.StatusServiceUnavailable)
	remote := newRemote(t, s.Server)
	cache := filepath.Join(t.TempDir(), "cache.json") // there is none yet
	f, a, reg := follow(t, discovery.FollowerOptions{Remote: remote, CacheFile: cache, RefreshInterval: 50 * time.Millisecond})

	if err := f.Ready(); err == nil || !strings.Contains(err.Error(), "no config yet") {
		t.Errorf("Ready before any config: %v, want an error saying no config yet", err)
	}
	testutil.Eventually(t, 3*time.Second, "the failure to show in Ready", func() bool {
		err := f.Ready()
		return err != nil && strings.Contains(err.Error(), "503")
	})
	if err := f.Ready(); !strings.Contains(err.Error(), "no config yet") {
		t.Errorf("Ready after a failure: %v, want an error saying no config yet", err)
	}
	if got := metric(t, reg, metricRefreshFailures); got < 1 {
		t.Errorf("%s = %v, want >= 1", metricRefreshFailures, got)
	}
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Errorf("cache file exists before any config: %v", err)
	}
	a.none(t)

	s.fail(0)
	a.nextOrigin(t, 5*time.Second, "a.example.com-9301-http", "the first config")
	if err := f.Ready(); err != nil {
		t.Errorf("Ready after the configserver came up: %v", err)
	}
	if c, err := discovery.ReadCache(cache, parser); err != nil || !bytes.Equal(c.Body, s.Current().Body) {
		t.Errorf("cache after the first config: %v, %v", c, err)
	}
	if got := metric(t, reg, metricFromCache); got != 0 {
		t.Errorf("%s = %v, want 0", metricFromCache, got)
	}
}

// TestFollowerConfig: Config is nil until the first config, then the
// current one after every change, and already the new one when Apply
// gets it; a failed refresh or a 304 keeps it.
func TestFollowerConfig(t *testing.T) {
	s := newConfigServer(t, srcConfig("a.example.com"))
	s.fail(http.StatusServiceUnavailable)
	remote := newRemote(t, s.Server)
	// call is one Apply: its config, and what Config returned then.
	type call struct{ cfg, current *config.Config }
	calls := make(chan call, 10)
	reg := prometheus.NewRegistry()
	var f *discovery.Follower
	f, err := discovery.NewFollower(discovery.FollowerOptions{
		Remote: remote, RefreshInterval: 50 * time.Millisecond,
		Apply:  func(c *config.Config) { calls <- call{c, f.Config()} },
		Logger: discardLogger, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := f.Config(); c != nil {
		t.Fatalf("Config() before Run is the config of %s, want nil", originID(c))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	next := func(want string) *config.Config {
		t.Helper()
		select {
		case c := <-calls:
			if c.current != c.cfg {
				t.Errorf("Config() returned the config of %s (%p) when Apply got that of %s (%p), want the same config", originID(c.current), c.current, originID(c.cfg), c.cfg)
			}
			if got := originID(c.cfg); got != want {
				t.Errorf("applied %s, want %s", got, want)
			}
			if cur := f.Config(); cur != c.cfg {
				t.Errorf("Config() after Apply is the config of %s (%p), want the applied one (%p)", originID(cur), cur, c.cfg)
			}
			return c.cfg
		case <-time.After(5 * time.Second):
			t.Fatalf("no config applied, want %s", want)
			return nil
		}
	}

	testutil.Eventually(t, 3*time.Second, "a failed first load", func() bool {
		return metric(t, reg, metricRefreshFailures) >= 1
	})
	if c := f.Config(); c != nil {
		t.Errorf("Config() before the first config is the config of %s, want nil", originID(c))
	}

	s.fail(0)
	first := next("a.example.com-9301-http")
	s.set(t, srcConfig("b.example.com"))
	second := next("b.example.com-9301-http")
	if first == second {
		t.Errorf("Config() is the same after a change")
	}

	// A failed refresh keeps the config.
	s.fail(http.StatusInternalServerError)
	before := metric(t, reg, metricRefreshFailures)
	testutil.Eventually(t, 3*time.Second, "a failed refresh", func() bool {
		return metric(t, reg, metricRefreshFailures) > before
	})
	if cur := f.Config(); cur != second {
		t.Errorf("Config() after a failed refresh is the config of %s (%p), want the last good one (%p)", originID(cur), cur, second)
	}
	// So does a 304.
	s.fail(0)
	notModifiedTwice(t, s)
	if cur := f.Config(); cur != second {
		t.Errorf("Config() after a 304 is the config of %s (%p), want the last good one (%p)", originID(cur), cur, second)
	}
	select {
	case c := <-calls:
		t.Errorf("unexpected Apply with origins %+v", c.cfg.Origins)
	default:
	}
}

// TestFollowerHeartbeatBeforeFetch: the heartbeat goes before every fetch,
// so that the configserver knows the leaf's labels when it picks the
// leaf's view; a failed heartbeat does not stop the fetch.
func TestFollowerHeartbeatBeforeFetch(t *testing.T) {
	s := newConfigServer(t, srcConfig("a.example.com"))
	var (
		mu     sync.Mutex
		events []string
	)
	heartbeat := func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the heartbeat's context has no deadline")
		}
		mu.Lock()
		defer mu.Unlock()
		events = append(events, fmt.Sprintf("heartbeat after %d fetches", len(s.seen())))
		return errors.New("the configserver refuses the heartbeat")
	}
	remote := newRemote(t, s.Server)
	_, a, _ := follow(t, discovery.FollowerOptions{Remote: remote, Heartbeat: heartbeat, RefreshInterval: 50 * time.Millisecond})
	a.nextOrigin(t, 3*time.Second, "a.example.com-9301-http", "the first config")
	notModifiedTwice(t, s)
	mu.Lock()
	defer mu.Unlock()
	fetches := len(s.seen())
	if len(events) < fetches || len(events) > fetches+1 {
		t.Fatalf("%d heartbeats for %d fetches, want one before each", len(events), fetches)
	}
	for i := range fetches {
		if want := fmt.Sprintf("heartbeat after %d fetches", i); events[i] != want {
			t.Errorf("heartbeat %d: %q, want %q", i, events[i], want)
		}
	}
}

func TestFollowerFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	testutil.WriteFile(t, path, srcConfig("a.example.com"))
	const watch = 20 * time.Millisecond
	f, a, reg := follow(t, discovery.FollowerOptions{File: config.NewFile(path, parser), WatchInterval: watch})

	a.nextOrigin(t, 3*time.Second, "a.example.com-9301-http", "the first config")
	if err := f.Ready(); err != nil {
		t.Errorf("Ready: %v", err)
	}

	testutil.WriteAtomic(t, path, srcConfig("b.example.com"))
	a.nextOrigin(t, 3*time.Second, "b.example.com-9301-http", "the edited config")

	// A broken edit is counted once and applies nothing.
	before := metric(t, reg, metricRefreshFailures)
	testutil.WriteAtomic(t, path, srcConfig("c.example.com")+"    bogus: field\n")
	testutil.Eventually(t, 3*time.Second, "the broken edit to be counted", func() bool {
		return metric(t, reg, metricRefreshFailures) >= before+1
	})
	// The assertion is that nothing more happens while the follower polls
	// the unchanged broken file: there is no condition to wait for (an
	// unchanged file leaves no trace), only a window of several watch
	// intervals in which to see none.
	time.Sleep(8 * watch)
	a.none(t)
	if got := metric(t, reg, metricRefreshFailures); got != before+1 {
		t.Errorf("%s = %v after one broken edit, want %v", metricRefreshFailures, got, before+1)
	}
	if err := f.Ready(); err != nil {
		t.Errorf("Ready with a broken file and a good config: %v", err)
	}

	// Fixing it applies the fixed config.
	testutil.WriteAtomic(t, path, srcConfig("c.example.com"))
	a.nextOrigin(t, 3*time.Second, "c.example.com-9301-http", "the fixed config")
	if got := metric(t, reg, metricLeafOrigins); got != 1 {
		t.Errorf("%s = %v, want 1", metricLeafOrigins, got)
	}
}

// reload calls f.Reload and waits until the reload has loaded the file:
// the success timestamp moves.
func reload(t *testing.T, f *discovery.Follower, reg prometheus.Gatherer) {
	t.Helper()
	ts := metric(t, reg, metricRefreshSuccess)
	if err := f.Reload(context.Background()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	// Reload returns once the load is done: no waiting.
	if got := metric(t, reg, metricRefreshSuccess); got <= ts {
		t.Errorf("%s = %v after Reload returned, want later than %v", metricRefreshSuccess, got, ts)
	}
}

func TestFollowerFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	testutil.WriteFile(t, path, srcConfig("a.example.com"))
	// The watch interval is long: only Reload makes the follower look again.
	f, a, reg := follow(t, discovery.FollowerOptions{File: config.NewFile(path, parser), WatchInterval: time.Hour})

	a.nextOrigin(t, 3*time.Second, "a.example.com-9301-http", "the first config")
	testutil.WriteAtomic(t, path, srcConfig("b.example.com"))
	// The assertion is that the follower does not look by itself: there
	// is nothing to wait for, only a window in which to see nothing.
	time.Sleep(50 * time.Millisecond)
	a.none(t)
	if err := f.Reload(context.Background()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	a.nextOrigin(t, 2*time.Second, "b.example.com-9301-http", "the reloaded config")

	// Reloading an unchanged file applies nothing. The second reload
	// starts once the first is wholly done, Apply included.
	reload(t, f, reg)
	reload(t, f, reg)
	a.none(t)

	// Reloading a broken file counts a failure and keeps the config.
	testutil.WriteAtomic(t, path, "origins: []\n")
	if err := f.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "origins: empty") {
		t.Errorf("Reload of a broken file: %v, want the parser's error", err)
	}
	if got := metric(t, reg, metricRefreshFailures); got != 1 {
		t.Errorf("%s = %v after the failed Reload returned, want 1", metricRefreshFailures, got)
	}
	a.none(t)
	if err := f.Ready(); err != nil {
		t.Errorf("Ready after a failed reload: %v", err)
	}
	if got := originID(f.Config()); got != "b.example.com-9301-http" {
		t.Errorf("Config() after a failed reload has %s, want the last good config", got)
	}
}

func TestFollowerFileMissingAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	f, a, _ := follow(t, discovery.FollowerOptions{File: config.NewFile(path, parser), WatchInterval: 20 * time.Millisecond})
	testutil.Eventually(t, 2*time.Second, "Ready to report the missing file", func() bool {
		err := f.Ready()
		return err != nil && strings.Contains(err.Error(), "no config yet") && strings.Contains(err.Error(), path)
	})
	// Reload cuts the start backoff short.
	testutil.WriteAtomic(t, path, srcConfig("a.example.com"))
	if err := f.Reload(context.Background()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	a.nextOrigin(t, 3*time.Second, "a.example.com-9301-http", "the first config")
	if err := f.Ready(); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

// TestFollowerServeReload: the leaf's POST /-/reload rereads the file at
// once and answers when it is done; a broken file answers 500 with the
// reason and keeps the config; GET is 405.
func TestFollowerServeReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	testutil.WriteFile(t, path, srcConfig("a.example.com"))
	f, a, _ := follow(t, discovery.FollowerOptions{File: config.NewFile(path, parser), WatchInterval: time.Hour})
	a.nextOrigin(t, 3*time.Second, "a.example.com-9301-http", "the first config")
	mux := http.NewServeMux()
	mux.HandleFunc("POST /-/reload", f.ServeReload)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	testutil.WriteAtomic(t, path, srcConfig("b.example.com"))
	if r := testutil.Do(t, nil, http.MethodPost, srv.URL+"/-/reload", ""); r.Code != http.StatusOK || r.Body != "Reloaded: 1 origins.\n" {
		t.Errorf("POST /-/reload: %d %q", r.Code, r.Body)
	}
	// Answered once done: the new config is in use already.
	if got := originID(f.Config()); got != "b.example.com-9301-http" {
		t.Errorf("Config() right after the reload answered: %s", got)
	}
	a.nextOrigin(t, 2*time.Second, "b.example.com-9301-http", "the reloaded config")

	testutil.WriteAtomic(t, path, "origins: []\n")
	if r := testutil.Do(t, nil, http.MethodPost, srv.URL+"/-/reload", ""); r.Code != http.StatusInternalServerError || !strings.Contains(r.Body, "keeping the last good config") || !strings.Contains(r.Body, "origins: empty") {
		t.Errorf("POST /-/reload of a broken file: %d %q", r.Code, r.Body)
	}
	if got := originID(f.Config()); got != "b.example.com-9301-http" {
		t.Errorf("Config() after a failed reload: %s", got)
	}
	if r := testutil.Do(t, nil, http.MethodGet, srv.URL+"/-/reload", ""); r.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: %d, want 405", r.Code)
	}
}
