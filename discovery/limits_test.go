package discovery_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/discovery"
)

// manyOrigins is a config with n simple origins at interval.
func manyOrigins(n int, interval string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "interval: %s\norigins:\n", interval)
	for i := range n {
		fmt.Fprintf(&b, "  - {name: o%d, url: 'http://127.0.0.1:9/%d', mode: simple}\n", i, i)
	}
	return b.String()
}

func TestDefaultLimits(t *testing.T) {
	if discovery.DefaultLimits.MaxOrigins != 10000 || discovery.DefaultLimits.MinInterval != time.Second {
		t.Errorf("DefaultLimits = %+v, want 10000 origins and 1s (docs/configuration.md says so)", discovery.DefaultLimits)
	}
}

// TestLimitsMaxOrigins: a config with more origins than the limit is
// refused whole, with a message that gives the count, the limit and the
// flag; one at the limit loads; without limits anything goes.
func TestLimitsMaxOrigins(t *testing.T) {
	lim := discovery.Limits{MaxOrigins: 50}
	if cfg, err := lim.Parse([]byte(manyOrigins(50, "10s"))); err != nil || len(cfg.Origins) != 50 {
		t.Fatalf("50 origins with a limit of 50: %v", err)
	}
	_, err := lim.Parse([]byte(manyOrigins(51, "10s")))
	if err == nil || !containsAll(err.Error(), "line 3", "origins", "51 origins", "limit of 50", "--config.max-origins") {
		t.Errorf("51 origins with a limit of 50: %v", err)
	}
	// Served configs (the leaf's side) are held to the same limit.
	if _, err := lim.ParseServed([]byte(manyOrigins(51, "10s"))); err == nil {
		t.Errorf("ParseServed accepted 51 origins with a limit of 50")
	}
	if _, err := discovery.Parse([]byte(manyOrigins(51, "10s"))); err != nil {
		t.Errorf("Parse without limits: %v", err)
	}
}

// TestLimitsMaxOriginsDefault: the default limit refuses 10,001
// origins without validating each: an absurd list costs little more than
// reading it.
func TestLimitsMaxOriginsDefault(t *testing.T) {
	text := []byte(manyOrigins(discovery.DefaultLimits.MaxOrigins+1, "10s"))
	start := time.Now()
	_, err := discovery.DefaultLimits.Parse(text)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "10001 origins, more than the limit of 10000") {
		t.Fatalf("10001 origins: %v", err)
	}
	// One error only: the entries were not looked at.
	if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
		t.Errorf("%d errors, want the one about the count", n)
	}
	t.Logf("refused %d bytes, 10001 origins, in %s", len(text), took)
}

// TestLimitsMinInterval: an interval shorter than the minimum is refused at
// the top level and per origin, naming the entry, the field and the flag;
// the minimum itself is fine.
func TestLimitsMinInterval(t *testing.T) {
	lim := discovery.Limits{MinInterval: time.Second}
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"top level 1ms", "interval: 1ms\ntimeout: 1ms\norigins:\n  - url: http://h/\n    mode: simple\n",
			[]string{"line 1", "interval: 1ms is shorter than the minimum interval 1s", "--config.min-interval"}},
		{"top level in seconds", "interval: 0.001\norigins:\n  - url: http://h/\n", []string{"line 1", "interval: 1ms"}},
		{"per origin", "origins:\n  - url: http://h/\n  - name: fast\n    url: http://h/x\n    interval: 500ms\n",
			[]string{"line 5", `origins[1] ("fast"): interval: 500ms is shorter than the minimum interval 1s`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := lim.Parse([]byte(tc.text))
			if err == nil || !containsAll(err.Error(), tc.want...) {
				t.Errorf("error %v, want it to mention %q", err, tc.want)
			}
			if _, err := discovery.Parse([]byte(tc.text)); err != nil {
				t.Errorf("without limits: %v", err)
			}
		})
	}
	if _, err := lim.Parse([]byte("interval: 1s\norigins:\n  - url: http://h/\n    interval: 1000ms\n")); err != nil {
		t.Errorf("intervals at the minimum: %v", err)
	}
}

// TestLimitsSources: File, Remote and the cache apply their limits, so
// that neither a configserver nor a stale cache can hand the leaf a config
// beyond them.
func TestLimitsSources(t *testing.T) {
	lim := discovery.Limits{MaxOrigins: 2, MinInterval: time.Second}
	fast := "interval: 100ms\norigins:\n  - url: http://h/\n"
	dir := t.TempDir()

	path := filepath.Join(dir, "config.yaml")
	srcWrite(t, path, fast)
	f := discovery.NewFile(path)
	f.SetLimits(lim)
	if _, err := f.Load(false); err == nil || !strings.Contains(err.Error(), "minimum interval") {
		t.Errorf("File.Load beyond the limits: %v", err)
	}
	if _, err := discovery.NewFile(path).Load(false); err != nil {
		t.Errorf("File.Load without limits: %v", err)
	}

	cache := filepath.Join(dir, "cache.json")
	srcWrite(t, cache, manyOrigins(3, "10s"))
	if _, err := lim.ReadCache(cache); err == nil || !strings.Contains(err.Error(), "limit of 2") {
		t.Errorf("ReadCache beyond the limits: %v", err)
	}
	if _, err := discovery.ReadCache(cache); err != nil {
		t.Errorf("ReadCache without limits: %v", err)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(manyOrigins(3, "10s")))
	}))
	defer srv.Close()
	r, err := discovery.NewRemote(srv.URL, srv.Client(), "test")
	if err != nil {
		t.Fatal(err)
	}
	r.SetLimits(lim)
	if _, err := r.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "--config.max-origins") {
		t.Errorf("Remote.Fetch beyond the limits: %v", err)
	}
}

// TestCheckCommandLimits: --config.check applies the limits it is given
// (the flags' defaults unless set).
func TestCheckCommandLimits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	srcWrite(t, path, "interval: 1ms\ntimeout: 1ms\norigins:\n  - url: http://h/\n")
	var out, errOut bytes.Buffer
	if code := discovery.CheckCommand(path, discovery.DefaultLimits, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "minimum interval 1s") {
		t.Errorf("check with the default limits: %d %q %q", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := discovery.CheckCommand(path, discovery.Limits{MinInterval: time.Millisecond}, &out, &errOut); code != 0 {
		t.Errorf("check with a 1ms minimum: %d %q", code, errOut.String())
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
