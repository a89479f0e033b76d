package discovery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/discovery"
)

var discardLogger = slog.New(slog.DiscardHandler)

// srcConfig is a valid config with one origin at host:9301.
func srcConfig(host string) string {
	return fmt.Sprintf("interval: 30\ntimeout: 10\norigins:\n  - scheme: http\n    hostname: %s\n    port: 9301\n", host)
}

func srcLoaded(t testing.TB, text string) *discovery.Loaded {
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

func srcWrite(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newConfigServer serves the config text through a real configserver,
// its handler passed through wrap when wrap is not nil.
func newConfigServer(t testing.TB, text string, wrap func(http.Handler) http.Handler) (*configserver.Server, *httptest.Server, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	srcWrite(t, path, text)
	s, err := configserver.New(path, prometheus.NewRegistry(), discardLogger)
	if err != nil {
		t.Fatalf("configserver.New: %v", err)
	}
	var h http.Handler = configserver.NewMux(s)
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return s, srv, path
}

func TestFileLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	srcWrite(t, path, srcConfig("a.example.com"))
	f := discovery.NewFile(path)
	if f.Path() != path {
		t.Errorf("Path() = %q, want %q", f.Path(), path)
	}

	l, err := f.Load(true)
	if err != nil {
		t.Fatalf("first Load(true): %v", err)
	}
	if want := srcLoaded(t, srcConfig("a.example.com")); !bytes.Equal(l.Body, want.Body) || l.ETag != want.ETag || l.ETag != discovery.ETag(l.Body) {
		t.Errorf("Load: body %s etag %s, want %s %s", l.Body, l.ETag, want.Body, want.ETag)
	}
	if len(l.Config.Origins) != 1 || l.Config.Origins[0].ID != "a.example.com-9301-http" {
		t.Errorf("Load: origins %+v", l.Config.Origins)
	}
	if _, err := f.Load(true); !errors.Is(err, discovery.ErrNotModified) {
		t.Errorf("Load(true) of an unchanged file: err = %v, want ErrNotModified", err)
	}
	if l2, err := f.Load(false); err != nil || l2.ETag != l.ETag {
		t.Errorf("Load(false) of an unchanged file: %v, %v; want the config again", l2, err)
	}

	// The same config written differently is new content, but the same body.
	srcWrite(t, path, srcConfig("a.example.com")+"# a comment\n")
	if l2, err := f.Load(true); err != nil || l2.ETag != l.ETag {
		t.Errorf("Load(true) after a comment was added: %v, %v; want the same normalized config", l2, err)
	}

	// A broken file is reported once, then not again while it is unchanged.
	srcWrite(t, path, srcConfig("b.example.com")+"  - scheme: gopher\n")
	_, err = f.Load(true)
	if err == nil || errors.Is(err, discovery.ErrNotModified) {
		t.Fatalf("Load(true) of a broken file: err = %v, want a parse error", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "scheme") {
		t.Errorf("error %q does not name the file and the field", err)
	}
	for range 3 {
		if _, err := f.Load(true); !errors.Is(err, discovery.ErrNotModified) {
			t.Errorf("Load(true) of an unchanged broken file: err = %v, want ErrNotModified", err)
		}
	}
	if _, err := f.Load(false); err == nil || errors.Is(err, discovery.ErrNotModified) {
		t.Errorf("Load(false) of a broken file: err = %v, want the parse error", err)
	}

	// Going back to the previous good content is a change.
	srcWrite(t, path, srcConfig("a.example.com"))
	if l2, err := f.Load(true); err != nil || l2.ETag != l.ETag {
		t.Errorf("Load(true) after the fix: %v, %v", l2, err)
	}

	// A missing file is an error naming it, every time.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := f.Load(true); err == nil || errors.Is(err, discovery.ErrNotModified) || !strings.Contains(err.Error(), path) {
			t.Errorf("Load(true) of a missing file: err = %v, want one naming %s", err, path)
		}
	}
}

func TestFileLoadTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	big := srcConfig("a.example.com") + "#" + strings.Repeat("x", discovery.MaxConfigBytes) + "\n"
	srcWrite(t, path, big)
	_, err := discovery.NewFile(path).Load(false)
	if err == nil || !strings.Contains(err.Error(), "larger than") || !strings.Contains(err.Error(), path) {
		t.Errorf("Load of a file larger than MaxConfigBytes: err = %v", err)
	}
}

func TestNewRemote(t *testing.T) {
	for _, base := range []string{
		"",
		"localhost:9300",
		"ftp://example.com/",
		"file:///etc/oxcross.yaml",
		"http://",
		"https:///config",
		"example.com",
		"http://exa mple.com",
	} {
		if r, err := discovery.NewRemote(base, http.DefaultClient, "test"); err == nil {
			t.Errorf("NewRemote(%q) = %s, want an error", base, r.URL())
		} else if !strings.Contains(err.Error(), fmt.Sprintf("%q", base)) {
			t.Errorf("NewRemote(%q): error %q does not quote the URL", base, err)
		}
	}
	for base, want := range map[string]string{
		"http://cs.example.com:9300":          "http://cs.example.com:9300/config",
		"http://cs.example.com:9300/":         "http://cs.example.com:9300/config",
		"https://cs.example.com":              "https://cs.example.com/config",
		"https://cs.example.com/oxcross":      "https://cs.example.com/oxcross/config",
		"https://cs.example.com/oxcross/":     "https://cs.example.com/oxcross/config",
		"http://[2001:db8::1]:9300/a/b":       "http://[2001:db8::1]:9300/a/b/config",
		"http://user:pw@cs.example.com:9300/": "http://user:pw@cs.example.com:9300/config",
	} {
		r, err := discovery.NewRemote(base, http.DefaultClient, "test")
		if err != nil {
			t.Errorf("NewRemote(%q): %v", base, err)
			continue
		}
		if r.URL() != want {
			t.Errorf("NewRemote(%q).URL() = %q, want %q", base, r.URL(), want)
		}
	}
}

func TestRemoteFetch(t *testing.T) {
	var agent, accept string
	s, proxy, path := newConfigServer(t, srcConfig("a.example.com"), func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			agent, accept = r.UserAgent(), r.Header.Get("Accept")
			h.ServeHTTP(w, r)
		})
	})

	r, err := discovery.NewRemote(proxy.URL+"/", proxy.Client(), "oxcross-leaf/test")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := r.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if cur := s.Current(); !bytes.Equal(l.Body, cur.Body) || l.ETag != cur.ETag {
		t.Errorf("Fetch: body %s etag %s, want %s %s", l.Body, l.ETag, cur.Body, cur.ETag)
	}
	if len(l.Config.Origins) != 1 || l.Config.Origins[0].ID != "a.example.com-9301-http" {
		t.Errorf("Fetch: origins %+v", l.Config.Origins)
	}
	if agent != "oxcross-leaf/test" || accept != "application/json" {
		t.Errorf("request had User-Agent %q, Accept %q", agent, accept)
	}

	if _, err := r.Fetch(ctx); !errors.Is(err, discovery.ErrNotModified) {
		t.Errorf("second Fetch: err = %v, want ErrNotModified", err)
	}

	// A changed config is fetched, then not modified again.
	srcWrite(t, path, srcConfig("b.example.com"))
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	l2, err := r.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch after a change: %v", err)
	}
	if l2.ETag == l.ETag || l2.Config.Origins[0].ID != "b.example.com-9301-http" {
		t.Errorf("Fetch after a change: etag %s, origins %+v", l2.ETag, l2.Config.Origins)
	}
	if _, err := r.Fetch(ctx); !errors.Is(err, discovery.ErrNotModified) {
		t.Errorf("Fetch after the change was fetched: err = %v, want ErrNotModified", err)
	}

	// SetETag makes the next Fetch conditional on a cached config.
	r2, err := discovery.NewRemote(proxy.URL, proxy.Client(), "test")
	if err != nil {
		t.Fatal(err)
	}
	r2.SetETag(l2.ETag)
	if _, err := r2.Fetch(ctx); !errors.Is(err, discovery.ErrNotModified) {
		t.Errorf("Fetch after SetETag(current): err = %v, want ErrNotModified", err)
	}
	r2.SetETag(l.ETag)
	if got, err := r2.Fetch(ctx); err != nil || got.ETag != l2.ETag {
		t.Errorf("Fetch after SetETag(old): %v, %v; want the current config", got, err)
	}
}

func TestRemoteFetchErrors(t *testing.T) {
	good := srcLoaded(t, srcConfig("a.example.com"))
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    []string
	}{
		{"500", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}, []string{"500", "/config"}},
		{"404", http.NotFound, []string{"404"}},
		{"garbage", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("<html>this is not a config</html>"))
		}, []string{"/config"}},
		{"invalid config", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"origins": [{"url": "ftp://x"}]}`))
		}, []string{"origins"}},
		{"too large", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write(good.Body[:len(good.Body)-1])
			_, _ = w.Write(bytes.Repeat([]byte(" "), discovery.MaxConfigBytes))
			_, _ = w.Write([]byte("}"))
		}, []string{"larger than"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			r, err := discovery.NewRemote(srv.URL, srv.Client(), "test")
			if err != nil {
				t.Fatal(err)
			}
			l, err := r.Fetch(context.Background())
			if err == nil {
				t.Fatalf("Fetch: no error, got %s", l.Body)
			}
			if errors.Is(err, discovery.ErrNotModified) {
				t.Fatalf("Fetch: ErrNotModified, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		r, err := discovery.NewRemote(url, http.DefaultClient, "test")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Fetch(context.Background()); err == nil || errors.Is(err, discovery.ErrNotModified) {
			t.Errorf("Fetch from a closed port: err = %v", err)
		}
	})

	t.Run("context", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}))
		defer srv.Close()
		r, err := discovery.NewRemote(srv.URL, srv.Client(), "test")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := r.Fetch(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Fetch with an expiring context: err = %v, want DeadlineExceeded", err)
		}
	})
}

func TestCacheRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config-cache.json")
	want := srcLoaded(t, srcConfig("a.example.com"))
	if err := discovery.WriteCache(path, want.Body); err != nil {
		t.Fatalf("WriteCache: %v", err)
	}
	got, err := discovery.ReadCache(path)
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
	want2 := srcLoaded(t, srcConfig("b.example.com"))
	if err := discovery.WriteCache(path, want2.Body); err != nil {
		t.Fatalf("WriteCache over an existing cache: %v", err)
	}
	if got, err := discovery.ReadCache(path); err != nil || got.ETag != want2.ETag {
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
	srcWrite(t, corrupt, `{"interval": "30s", "origins": [`)
	if _, err := discovery.ReadCache(corrupt); err == nil || !strings.Contains(err.Error(), corrupt) {
		t.Errorf("ReadCache of a corrupt file: err = %v, want one naming %s", err, corrupt)
	}

	missing := filepath.Join(dir, "missing.json")
	if _, err := discovery.ReadCache(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("ReadCache of a missing file: err = %v, want one naming %s", err, missing)
	}

	body := srcLoaded(t, srcConfig("a.example.com")).Body
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
	if err := discovery.WriteCache(cache, srcLoaded(t, srcConfig("b.example.com")).Body); err == nil {
		if os.Geteuid() != 0 {
			t.Error("WriteCache into a read-only directory: no error")
		}
	} else if got, err := discovery.ReadCache(cache); err != nil || !bytes.Equal(got.Body, body) {
		t.Errorf("after a failed WriteCache: %v, %v; want the previous cache", got, err)
	}
}
