package discovery_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/testutil"
)

func TestCacheRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config-cache.json")
	want := snapshot(t, srcConfig("a.example.com"))
	if err := discovery.WriteCache(path, want.Body); err != nil {
		t.Fatalf("WriteCache: %v", err)
	}
	got, err := discovery.ReadCache(path, parser)
	if err != nil {
		t.Fatalf("ReadCache: %v", err)
	}
	if !bytes.Equal(got.Body, want.Body) || got.ETag != want.ETag {
		t.Errorf("ReadCache: body %s etag %s, want %s %s", got.Body, got.ETag, want.Body, want.ETag)
	}
	if len(got.Config.Origins) != 1 || got.Config.Origins[0].ID != "a.example.com-9301-http" {
		t.Errorf("ReadCache: origins %+v", got.Config.Origins)
	}

	// Overwriting replaces it.
	want2 := snapshot(t, srcConfig("b.example.com"))
	if err := discovery.WriteCache(path, want2.Body); err != nil {
		t.Fatalf("WriteCache over an existing cache: %v", err)
	}
	if got, err := discovery.ReadCache(path, parser); err != nil || got.ETag != want2.ETag {
		t.Errorf("ReadCache after an overwrite: %v, %v", got, err)
	}

	// Nothing but the cache is left in the directory.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "config-cache.json" {
		t.Errorf("directory holds %q, want only the cache file", names)
	}
}

func TestCacheErrors(t *testing.T) {
	dir := t.TempDir()

	corrupt := filepath.Join(dir, "corrupt.json")
	testutil.WriteFile(t, corrupt, `{"interval": "30s", "origins": [`)
	if _, err := discovery.ReadCache(corrupt, parser); err == nil || !strings.Contains(err.Error(), corrupt) {
		t.Errorf("ReadCache of a corrupt file: err = %v, want one naming %s", err, corrupt)
	}

	missing := filepath.Join(dir, "missing.json")
	if _, err := discovery.ReadCache(missing, parser); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("ReadCache of a missing file: err = %v, want one naming %s", err, missing)
	}

	body := snapshot(t, srcConfig("a.example.com")).Body
	inMissingDir := filepath.Join(dir, "no-such-dir", "cache.json")
	if err := discovery.WriteCache(inMissingDir, body); err == nil {
		t.Error("WriteCache into a missing directory: no error")
	}
	if _, err := os.Stat(filepath.Dir(inMissingDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WriteCache created the missing directory: %v", err)
	}

	// A failed write leaves the previous cache intact and no temp files.
	sub := filepath.Join(dir, "ro")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(sub, "cache.json")
	if err := discovery.WriteCache(cache, body); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sub, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(sub, 0o755) })
	if err := discovery.WriteCache(cache, snapshot(t, srcConfig("b.example.com")).Body); err == nil {
		if os.Geteuid() != 0 {
			t.Error("WriteCache into a read-only directory: no error")
		}
	} else if got, err := discovery.ReadCache(cache, parser); err != nil || !bytes.Equal(got.Body, body) {
		t.Errorf("after a failed WriteCache: %v, %v; want the previous cache", got, err)
	}
}

// TestCacheLimits: the cache is read with the limits of the parser it is
// given, so that a stale cache cannot hand the leaf a config beyond the
// limits it has now.
func TestCacheLimits(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache.json")
	testutil.WriteFile(t, cache, testutil.OriginsConfig(3, "10s"))
	lim := config.Limits{MaxOrigins: 2, MinInterval: time.Second}
	if _, err := discovery.ReadCache(cache, kinds.Parser(lim)); err == nil || !strings.Contains(err.Error(), "limit of 2") {
		t.Errorf("ReadCache beyond the limits: %v", err)
	}
	if _, err := discovery.ReadCache(cache, parser); err != nil {
		t.Errorf("ReadCache without limits: %v", err)
	}
}

// cacheWriterEnv makes TestCacheWriterProcess, run as a child process,
// write the cache file it names in a loop until it is killed.
const cacheWriterEnv = "OXCROSS_TEST_CACHE_WRITER"

// bigConfig is a config of n origins, a few MiB for n in the ten
// thousands: long enough to write that a kill lands mid-write. It is built
// as text, cheaply: the child process builds it before every run.
func bigConfig(n int, tag string) []byte {
	var b strings.Builder
	b.WriteString(`{"interval": "30s", "origins": [`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"name": "%s-%d", "url": "http://127.0.0.1:9/%s/%d", "mode": "simple"}`, tag, i, strings.Repeat("p", 64), i)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

// TestCacheWriterProcess is the child of TestCacheCrashSafe: it writes two
// configs to the cache in turn, forever, printing a line after each write.
func TestCacheWriterProcess(t *testing.T) {
	path := os.Getenv(cacheWriterEnv)
	if path == "" {
		t.Skip("runs as TestCacheCrashSafe's child")
	}
	bodies := [][]byte{bigConfig(20000, "a"), bigConfig(20000, "b")}
	for i := 0; ; i++ {
		if err := discovery.WriteCache(path, bodies[i%2]); err != nil {
			t.Fatal(err)
		}
		fmt.Println("wrote")
	}
}

// TestCacheCrashSafe kills (SIGKILL) a process while it rewrites the
// cache, again and again: every time, the cache reads back whole as one
// of the two configs, never half of one. Temporary files a kill leaves
// behind are removed by a later write once they are stale.
func TestCacheCrashSafe(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	want := map[string]bool{string(bigConfig(20000, "a")): true, string(bigConfig(20000, "b")): true}
	const kills = 15
	leftovers := map[string]bool{}
	for i := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCacheWriterProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), cacheWriterEnv+"="+path)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the child has written the cache twice: the cache
		// exists, so every kill must leave a whole one behind, and the
		// time between the two writes is how long one takes on this
		// machine now (much longer when it is busy).
		lines := bufio.NewScanner(out)
		var wrote []time.Time
		for len(wrote) < 2 && lines.Scan() {
			wrote = append(wrote, time.Now())
		}
		if len(wrote) < 2 {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("kill %d: the child stopped before writing the cache twice: %v\n%s", i, lines.Err(), stderr.String())
		}
		// The child is now rewriting the cache: kill it at a random
		// point of that write. This sleep picks the point; it waits for
		// nothing.
		time.Sleep(rand.N(max(wrote[1].Sub(wrote[0]), time.Millisecond)))
		_ = cmd.Process.Kill()
		_ = cmd.Wait()

		temps, _ := filepath.Glob(filepath.Join(dir, ".config.json.*"))
		for _, tmp := range temps {
			leftovers[tmp] = true
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("kill %d: %v", i, err)
		}
		if !want[string(data)] {
			t.Fatalf("kill %d: the cache holds %d bytes that are neither config", i, len(data))
		}
	}
	if l, err := discovery.ReadCache(path, parser); err != nil || len(l.Config.Origins) != 20000 {
		t.Fatalf("ReadCache after the kills: %v", err)
	}
	t.Logf("%d kills while rewriting a %d KiB cache: whole each time; %d kills left a temporary file behind", kills, len(bigConfig(20000, "a"))>>10, len(leftovers))
	if len(leftovers) == 0 {
		t.Errorf("no kill left a temporary file behind: none landed mid-write, so none tested crash safety")
	}

	// Temporary files from crashes: a write removes the stale ones.
	temps, _ := filepath.Glob(filepath.Join(dir, ".config.json.*"))
	fresh := filepath.Join(dir, ".config.json.fresh")
	if err := os.WriteFile(fresh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Minute)
	for _, tmp := range temps {
		_ = os.Chtimes(tmp, old, old)
	}
	if err := discovery.WriteCache(path, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".config.json.*"))
	if len(left) != 1 || left[0] != fresh {
		t.Errorf("after a write, temporary files %v are left, want only the fresh %s", left, fresh)
	}
}
