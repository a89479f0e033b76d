package configserver_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/discovery"
)

// limitsConfig lists n origins at interval.
func limitsConfig(n int, interval string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "interval: %s\norigins:\n", interval)
	for i := range n {
		fmt.Fprintf(&b, "  - {name: o%d, url: 'http://127.0.0.1:9/%d', mode: simple}\n", i, i)
	}
	return b.String()
}

// TestLimitsAtLoadAndReload: a config file beyond --config.max-origins or
// --config.min-interval stops the configserver at start, and on reload is
// refused like any broken edit: the previous config stays served.
func TestLimitsAtLoadAndReload(t *testing.T) {
	lim := discovery.Limits{MaxOrigins: 3, MinInterval: time.Second}
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, limitsConfig(4, "10s"))
	if _, err := configserver.NewWithOptions(path, configserver.Options{Limits: lim}, prometheus.NewRegistry(), discard); err == nil || !strings.Contains(err.Error(), "--config.max-origins") {
		t.Fatalf("start with 4 origins and a limit of 3: %v", err)
	}
	writeFile(t, path, limitsConfig(3, "10s"))
	reg := prometheus.NewRegistry()
	s, err := configserver.NewWithOptions(path, configserver.Options{Limits: lim}, reg, discard)
	if err != nil {
		t.Fatalf("start within the limits: %v", err)
	}
	good := s.Current().ETag
	for _, text := range []string{limitsConfig(4, "10s"), limitsConfig(1, "10ms")} {
		writeFile(t, path, text)
		err := s.Reload()
		if err == nil || !(strings.Contains(err.Error(), "--config.max-origins") || strings.Contains(err.Error(), "--config.min-interval")) {
			t.Errorf("reload beyond the limits: %v", err)
		}
		if s.Current().ETag != good {
			t.Errorf("a config beyond the limits replaced the good one")
		}
		if v := metricValue(t, reg, metricReloadOK); v != 0 {
			t.Errorf("%s = %v after a refused reload", metricReloadOK, v)
		}
	}
	srv := httptest.NewServer(configserver.NewMux(s))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "shorter than the minimum interval 1s") {
		t.Errorf("POST /-/reload beyond the limits: %d %q", resp.StatusCode, body)
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
		l := loadedOf(t, text)
		good[string(l.Body)] = true
		for _, labels := range []map[string]string{{}, {"region": "eu"}} {
			if v := l.Config.ForLeaf(labels); v != l.Config {
				vl, _ := discovery.NewLoaded(v)
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
		writeAtomic(t, path, []string{textA, broken, textB}[n%3])
		time.Sleep(time.Millisecond) // pacing the edits; not a wait
		return true
	})
	for range 2 {
		worker(func(int) bool {
			resp, err := client.Post(f.srv.URL+"/-/reload", "", nil)
			if err != nil {
				t.Errorf("POST /-/reload: %v", err)
				return false
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				reloads.Add(1)
			case http.StatusInternalServerError:
				refused.Add(1)
			default:
				t.Errorf("POST /-/reload: %d", resp.StatusCode)
				return false
			}
			return true
		})
	}
	for i := range 3 {
		worker(func(n int) bool {
			path := []string{"/config", "/config?leaf_id=someone", "/config?leaf_id=leaf-" + fmt.Sprint(n%5)}[i]
			resp, err := client.Get(f.srv.URL + path)
			if err != nil {
				t.Errorf("GET %s: %v", path, err)
				return false
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !good[string(body)] || resp.Header.Get("ETag") != discovery.ETag(body) {
				t.Errorf("GET %s: %d, ETag %s, body %s: not a good config with its ETag", path, resp.StatusCode, resp.Header.Get("ETag"), body)
				return false
			}
			gets.Add(1)
			return true
		})
	}
	worker(func(n int) bool {
		body := fmt.Sprintf(`{"address": ":%d", "labels": {"region": "eu"}, "refresh_interval": "1s"}`, 9000+n%5)
		req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/api/v1/leaves/leaf-%d", f.srv.URL, n%5), strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("PUT: %v", err)
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		for _, sd := range []string{"/sd/leaves", "/sd/origins"} {
			resp, err := client.Get(f.srv.URL + sd)
			if err != nil {
				t.Errorf("GET %s: %v", sd, err)
				return false
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(b, []byte("[")) {
				t.Errorf("GET %s: %d %s", sd, resp.StatusCode, b)
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
