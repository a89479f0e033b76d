package discovery_test

// The new leaf and the original Oxcross' configserver.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/testutil"
	"github.com/oxcross/oxcross/origin"
	"github.com/oxcross/oxcross/prober"
)

// originalConfigserver answers GET /config as the original configserver
// did: its config file read as the original read it, encoded with
// encoding/json (the URL key on each origin included), no ETag; any other
// request gets 404, as its router answered.
func originalConfigserver(t *testing.T, file string) *httptest.Server {
	t.Helper()
	cfg, err := testutil.ParseOriginalConfig([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/config" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestFollowOriginalConfigserver: the new leaf follows the original
// configserver's /config, the URL key included, and probes every origin
// it lists: an oxcross origin in advanced mode and a health check in
// simple mode, both on loopback, with the original's origin ids. Its
// cache holds that config for its next start.
func TestFollowOriginalConfigserver(t *testing.T) {
	oxcross, err := origin.NewHandler(origin.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// On ports the original probes: it skips those above 32767.
	start := func(h http.Handler) *httptest.Server {
		srv := httptest.NewUnstartedServer(h)
		srv.Listener.Close()
		srv.Listener = testutil.ListenOriginalPort(t)
		srv.Start()
		t.Cleanup(srv.Close)
		return srv
	}
	advanced := start(oxcross)
	simple := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
		}
	}))
	hostPort := func(srv *httptest.Server) (string, string) {
		u, err := url.Parse(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		return u.Hostname(), u.Port()
	}
	ah, ap := hostPort(advanced)
	sh, sp := hostPort(simple)
	// The original's config file, with an origin it skips.
	file := fmt.Sprintf(`{"timeout": 1, "interval": 1, "origins": [
		{"scheme": "http", "hostname": %q, "port": %s, "mode": "advanced"},
		{"scheme": "http", "hostname": %q, "port": %s, "mode": "simple"},
		{"scheme": "ftp", "hostname": %q, "port": 21, "mode": "simple"}]}`, ah, ap, sh, sp, sh)
	cs := originalConfigserver(t, file)
	if body := testutil.Do(t, cs.Client(), http.MethodGet, cs.URL+"/config", "").Body; !strings.Contains(body, `"URL":"http://`+ah+":"+ap+`/oxcross"`) {
		t.Fatalf("the original configserver serves %s", body)
	}

	remote, err := discovery.NewRemote(cs.URL, "leaf-1", cs.Client(), "oxcross-leaf/test", parser)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	sched := prober.NewScheduler(prober.SchedulerOptions{
		Prober: prober.NewProber("oxcross-leaf/test", kinds), Metrics: prober.NewMetrics(reg), LeafID: "leaf-1", Logger: discardLogger,
	})
	t.Cleanup(sched.Stop)
	var (
		mu   sync.Mutex
		last *config.Config
	)
	cache := filepath.Join(t.TempDir(), "config.json")
	var logs testutil.SyncBuffer
	f, err := discovery.NewFollower(discovery.FollowerOptions{
		Remote: remote, CacheFile: cache, RefreshInterval: time.Second,
		Apply: func(c *config.Config) {
			mu.Lock()
			last = c
			mu.Unlock()
			sched.Apply(c)
		},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	advancedID, simpleID := fmt.Sprintf("%s-%s-http", ah, ap), fmt.Sprintf("%s-%s-http", sh, sp)
	testutil.Eventually(t, 10*time.Second, "the config applied", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return last != nil
	})
	mu.Lock()
	cfg := last
	mu.Unlock()
	want := []config.Target{
		{ID: advancedID, URL: "http://" + ah + ":" + ap + "/oxcross", Module: "advanced", Interval: time.Second, Timeout: time.Second},
		{ID: simpleID, URL: "http://" + sh + ":" + sp + "/", Module: "simple", Interval: time.Second, Timeout: time.Second},
	}
	if !reflect.DeepEqual(cfg.Origins, want) {
		t.Errorf("applied\n %+v\nwant\n %+v", cfg.Origins, want)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("warnings: %q", cfg.Warnings)
	}
	// Both probed, successfully, under the original's origin ids.
	for _, id := range []string{advancedID, simpleID} {
		testutil.Eventually(t, 15*time.Second, "a successful probe of "+id, func() bool {
			v, ok := testutil.LookupMetric(t, reg, "oxcross_leaf_probe_results", "origin_id", id, "result", "true")
			return ok && v > 0
		})
	}
	if v, ok := testutil.LookupMetric(t, reg, "oxcross_leaf_origin_time_drift", "origin_id", advancedID); !ok {
		t.Errorf("no drift of the advanced origin (%v)", v)
	}
	// The config did not change between refreshes: applied once.
	if n := strings.Count(logs.String(), "Loaded config"); n != 1 {
		t.Errorf("loaded %d times:\n%s", n, logs.String())
	}
	// The cache holds it, for a start without the configserver.
	testutil.Eventually(t, 5*time.Second, "the cache written", func() bool {
		_, err := os.Stat(cache)
		return err == nil
	})
	cached, err := discovery.ReadCache(cache, parser)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cached.Config.Origins, want) {
		t.Errorf("cached\n %+v\nwant\n %+v", cached.Config.Origins, want)
	}
}

// TestStandaloneOriginalFileWarnings: a standalone leaf loads the
// original's config file with its warnings in the log, at the first load
// and when the file changes.
func TestStandaloneOriginalFileWarnings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oxcross_config.json")
	testutil.WriteFile(t, path, `{"comment": "x", "interval": 30, "origins": [{"scheme": "http", "hostname": "h", "port": 9301}]}`)
	var logs testutil.SyncBuffer
	got := make(applied, 4)
	f, err := discovery.NewFollower(discovery.FollowerOptions{
		File: config.NewFile(path, parser), WatchInterval: 10 * time.Millisecond,
		Apply:  func(c *config.Config) { got <- c },
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	got.nextOrigin(t, 5*time.Second, "h-9301-http", "the original's file")
	if want := `file=` + path + ` warning="line 1: unknown field \"comment\" ignored`; !strings.Contains(logs.String(), want) {
		t.Errorf("the log lacks %s:\n%s", want, logs.String())
	}
	testutil.WriteFile(t, path, `{"interval": 30, "origins": [{"scheme": "ftp", "hostname": "f", "port": 21}, {"scheme": "http", "hostname": "g", "port": 9301}]}`)
	got.nextOrigin(t, 5*time.Second, "g-9301-http", "the changed file")
	if want := `warning="line 1: origins[0]: scheme: \"ftp\" is not http or https; skipped`; !strings.Contains(logs.String(), want) {
		t.Errorf("the log lacks %s:\n%s", want, logs.String())
	}
}
