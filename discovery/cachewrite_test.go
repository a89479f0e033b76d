package discovery_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/testutil"
)

const (
	metricCacheWriteFailures = "oxcross_leaf_config_cache_write_failures_total"
	metricCacheWriteSuccess  = "oxcross_leaf_config_cache_last_write_success_timestamp_seconds"
)

// logBuffer is a log sink safe for the follower's writes and the test's
// reads.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// logger logs everything, debug included, as text to a new buffer.
func logger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// TestFollowerCacheWriteRetried replays issue 13, #13: with the cache
// directory missing or unusable, the leaf logged one WARN and never wrote
// the cache while the config stayed the same. Now the write is retried at
// every refresh, 304s included, each failure counted in
// oxcross_leaf_config_cache_write_failures_total, and once the directory
// is there the cache is written and the time of the write exported. Tests
// run as root, whom permissions do not stop: the directory is missing,
// or its path is a regular file.
func TestFollowerCacheWriteRetried(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"directory missing", func(*testing.T, string) {}},
		{"directory is a file", func(t *testing.T, dir string) { testutil.WriteFile(t, dir, "not a directory") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			tc.setup(t, dir)
			cache := filepath.Join(dir, "config.json")
			s := newConfigServer(t, srcConfig("a.example.com"))
			remote, err := discovery.NewRemote(s.URL, "", s.Client(), "test", parser)
			if err != nil {
				t.Fatal(err)
			}
			log, logs := logger()
			_, a, reg := follow(t, discovery.FollowerOptions{Remote: remote, CacheFile: cache, RefreshInterval: 50 * time.Millisecond, Logger: log})
			a.next(t, 3*time.Second)

			// The config does not change (304), and every refresh tries
			// the cache again.
			ok := s.answered(http.StatusNotModified)
			testutil.Eventually(t, 5*time.Second, "three failed cache writes", func() bool {
				return metric(t, reg, metricCacheWriteFailures) >= 3
			})
			if s.answered(http.StatusNotModified) <= ok {
				t.Errorf("cache writes retried without a refresh answered 304")
			}
			if got := metric(t, reg, metricCacheWriteSuccess); got != 0 {
				t.Errorf("%s = %v while every write fails, want 0", metricCacheWriteSuccess, got)
			}
			// One warning, not one per refresh.
			if n := strings.Count(logs.String(), `level=WARN msg="Could not write the config cache; retrying at every refresh"`); n != 1 {
				t.Errorf("%d warnings about the cache, want 1; log:\n%s", n, logs.String())
			}

			// The directory appears: the next refresh writes the cache.
			_ = os.Remove(dir)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			start := float64(time.Now().Unix())
			testutil.Eventually(t, 5*time.Second, "the cache written", func() bool {
				return metric(t, reg, metricCacheWriteSuccess) >= start
			})
			c, err := discovery.ReadCache(cache, parser)
			if err != nil || !bytes.Equal(c.Body, s.Current().Body) {
				t.Fatalf("cache after the directory appeared: %v, %v; want the current config", c, err)
			}
			failures := metric(t, reg, metricCacheWriteFailures)
			written := metric(t, reg, metricCacheWriteSuccess)
			notModifiedTwice(t, s)
			if got := metric(t, reg, metricCacheWriteFailures); got != failures {
				t.Errorf("%s rose from %v to %v after the cache was written", metricCacheWriteFailures, failures, got)
			}
			if got := metric(t, reg, metricCacheWriteSuccess); got != written {
				t.Errorf("an unchanged config was written again (%s %v, then %v)", metricCacheWriteSuccess, written, got)
			}
			if !strings.Contains(logs.String(), `level=INFO msg="Wrote the config cache again"`) {
				t.Errorf("no word of the recovery; log:\n%s", logs.String())
			}
		})
	}
}

// TestFollowerCacheMetrics: the cache metrics exist when the leaf follows
// a configserver with a cache file, and only then; a written cache sets
// the time of the write.
func TestFollowerCacheMetrics(t *testing.T) {
	s := newConfigServer(t, srcConfig("a.example.com"))
	remote, err := discovery.NewRemote(s.URL, "", s.Client(), "test", parser)
	if err != nil {
		t.Fatal(err)
	}
	start := float64(time.Now().Unix())
	_, a, reg := follow(t, discovery.FollowerOptions{Remote: remote, CacheFile: filepath.Join(t.TempDir(), "c.json"), RefreshInterval: 50 * time.Millisecond})
	a.next(t, 3*time.Second)
	if got := metric(t, reg, metricCacheWriteSuccess); got < start {
		t.Errorf("%s = %v after the first config, want the time of the write", metricCacheWriteSuccess, got)
	}
	if got := metric(t, reg, metricCacheWriteFailures); got != 0 {
		t.Errorf("%s = %v, want 0", metricCacheWriteFailures, got)
	}

	remote2, err := discovery.NewRemote(s.URL, "", s.Client(), "test", parser)
	if err != nil {
		t.Fatal(err)
	}
	_, a2, reg2 := follow(t, discovery.FollowerOptions{Remote: remote2, RefreshInterval: 50 * time.Millisecond})
	a2.next(t, 3*time.Second)
	for _, name := range []string{metricCacheWriteFailures, metricCacheWriteSuccess} {
		if _, ok := testutil.LookupMetric(t, reg2, name); ok {
			t.Errorf("%s exported without a cache file", name)
		}
	}
}
