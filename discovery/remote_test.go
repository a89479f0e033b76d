package discovery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/testutil"
	"github.com/oxcross/oxcross/prober"
)

var (
	discardLogger = slog.New(slog.DiscardHandler)
	// kinds are the probe kinds Oxcross ships; parser reads configs with
	// them and no limits.
	kinds  = prober.DefaultKinds(discardLogger)
	parser = kinds.Parser(config.Limits{})
)

// srcConfig is a valid config with one origin at host:9301.
func srcConfig(host string) string {
	return fmt.Sprintf("interval: 30\ntimeout: 10\norigins:\n  - scheme: http\n    hostname: %s\n    port: 9301\n", host)
}

// snapshot parses text and normalizes it, as the configserver serves it.
func snapshot(t testing.TB, text string) *config.Snapshot {
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

// newRemote is a Remote of srv's config, fetched with srv's client and
// read with parser.
func newRemote(t testing.TB, srv *httptest.Server) *discovery.Remote {
	t.Helper()
	r, err := discovery.NewRemote(srv.URL, "", srv.Client(), "test", parser)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// configRequest is what configServer saw of a request and answered.
type configRequest struct {
	agent, accept, leafID, ifNoneMatch string
	code                               int
}

// configServer serves a config at /config as the configserver does: the
// normalized body with its ETag, and 304 to a request whose If-None-Match
// is that ETag. It records the requests it answers.
type configServer struct {
	*httptest.Server
	mu       sync.Mutex
	current  *config.Snapshot
	failWith int
	requests []configRequest
}

// newConfigServer serves the config text until the test ends.
func newConfigServer(t testing.TB, text string) *configServer {
	t.Helper()
	s := &configServer{current: snapshot(t, text)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *configServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/config" {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	cur, code := s.current, s.failWith
	switch {
	case code != 0:
	case r.Header.Get("If-None-Match") == cur.ETag:
		code = http.StatusNotModified
	default:
		code = http.StatusOK
	}
	s.requests = append(s.requests, configRequest{
		agent: r.UserAgent(), accept: r.Header.Get("Accept"), leafID: r.URL.Query().Get("leaf_id"),
		ifNoneMatch: r.Header.Get("If-None-Match"), code: code,
	})
	s.mu.Unlock()
	switch code {
	case http.StatusOK:
		w.Header().Set("ETag", cur.ETag)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(cur.Body)
	case http.StatusNotModified:
		w.Header().Set("ETag", cur.ETag)
		w.WriteHeader(code)
	default:
		http.Error(w, "configserver is unwell", code)
	}
}

// set makes the server serve the config text from now on, as the
// configserver does after a reload.
func (s *configServer) set(t testing.TB, text string) {
	t.Helper()
	l := snapshot(t, text)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current = l
}

// fail makes the server answer code to every request from now on; 0
// makes it serve the config again.
func (s *configServer) fail(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failWith = code
}

// Current returns the config being served.
func (s *configServer) Current() *config.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// seen returns the requests answered so far.
func (s *configServer) seen() []configRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]configRequest(nil), s.requests...)
}

// answered returns how many requests got code.
func (s *configServer) answered(code int) int {
	n := 0
	for _, r := range s.seen() {
		if r.code == code {
			n++
		}
	}
	return n
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
		if r, err := discovery.NewRemote(base, "", http.DefaultClient, "test", parser); err == nil {
			t.Errorf("NewRemote(%q) = %s, want an error", base, r.URL())
		} else if !strings.Contains(err.Error(), fmt.Sprintf("%q", base)) {
			t.Errorf("NewRemote(%q): error %q does not quote the URL", base, err)
		}
	}
	for _, tc := range []struct{ base, leafID, want string }{
		{"http://cs.example.com:9300", "", "http://cs.example.com:9300/config"},
		{"http://cs.example.com:9300/", "", "http://cs.example.com:9300/config"},
		{"https://cs.example.com", "", "https://cs.example.com/config"},
		{"https://cs.example.com/oxcross", "", "https://cs.example.com/oxcross/config"},
		{"https://cs.example.com/oxcross/", "", "https://cs.example.com/oxcross/config"},
		{"http://[2001:db8::1]:9300/a/b", "", "http://[2001:db8::1]:9300/a/b/config"},
		{"http://user:pw@cs.example.com:9300/", "", "http://user:xxxxx@cs.example.com:9300/config"}, // shown redacted
		{"http://cs.example.com:9300", "ams-1", "http://cs.example.com:9300/config?leaf_id=ams-1"},
		{"https://cs.example.com/oxcross/", "eu.west_2", "https://cs.example.com/oxcross/config?leaf_id=eu.west_2"},
	} {
		r, err := discovery.NewRemote(tc.base, tc.leafID, http.DefaultClient, "test", parser)
		if err != nil {
			t.Errorf("NewRemote(%q, %q): %v", tc.base, tc.leafID, err)
			continue
		}
		if r.URL() != tc.want {
			t.Errorf("NewRemote(%q, %q).URL() = %q, want %q", tc.base, tc.leafID, r.URL(), tc.want)
		}
	}
}

func TestRemoteFetch(t *testing.T) {
	s := newConfigServer(t, srcConfig("a.example.com"))
	r, err := discovery.NewRemote(s.URL+"/", "ams-1", s.Client(), "oxcross-leaf/test", parser)
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
	if req := s.seen()[0]; req.agent != "oxcross-leaf/test" || req.accept != "application/json" || req.leafID != "ams-1" || req.ifNoneMatch != "" {
		t.Errorf("first request had User-Agent %q, Accept %q, leaf_id %q, If-None-Match %q", req.agent, req.accept, req.leafID, req.ifNoneMatch)
	}

	if _, err := r.Fetch(ctx); !errors.Is(err, config.ErrNotModified) {
		t.Errorf("second Fetch: err = %v, want ErrNotModified", err)
	}
	if req := s.seen()[1]; req.ifNoneMatch != l.ETag {
		t.Errorf("second request had If-None-Match %q, want %q", req.ifNoneMatch, l.ETag)
	}

	// A changed config is fetched, then not modified again.
	s.set(t, srcConfig("b.example.com"))
	l2, err := r.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch after a change: %v", err)
	}
	if l2.ETag == l.ETag || l2.Config.Origins[0].ID != "b.example.com-9301-http" {
		t.Errorf("Fetch after a change: etag %s, origins %+v", l2.ETag, l2.Config.Origins)
	}
	if _, err := r.Fetch(ctx); !errors.Is(err, config.ErrNotModified) {
		t.Errorf("Fetch after the change was fetched: err = %v, want ErrNotModified", err)
	}

	// SetETag makes the next Fetch conditional on a cached config.
	r2 := newRemote(t, s.Server)
	r2.SetETag(l2.ETag)
	if _, err := r2.Fetch(ctx); !errors.Is(err, config.ErrNotModified) {
		t.Errorf("Fetch after SetETag(current): err = %v, want ErrNotModified", err)
	}
	r2.SetETag(l.ETag)
	if got, err := r2.Fetch(ctx); err != nil || got.ETag != l2.ETag {
		t.Errorf("Fetch after SetETag(old): %v, %v; want the current config", got, err)
	}
}

// TestRemoteServerETag: the ETag the server sends is the one the next
// request is conditional on, even when it is not the body's own.
func TestRemoteServerETag(t *testing.T) {
	body := snapshot(t, srcConfig("a.example.com")).Body
	var (
		mu          sync.Mutex
		ifNoneMatch []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ifNoneMatch = append(ifNoneMatch, r.Header.Get("If-None-Match"))
		mu.Unlock()
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	r := newRemote(t, srv)
	if l, err := r.Fetch(context.Background()); err != nil || l.ETag != `"v1"` || !bytes.Equal(l.Body, body) {
		t.Fatalf("Fetch: %v, %v; want the body with the server's ETag", l, err)
	}
	if _, err := r.Fetch(context.Background()); !errors.Is(err, config.ErrNotModified) {
		t.Errorf("second Fetch: %v, want ErrNotModified", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(ifNoneMatch) != `[ "v1"]` {
		t.Errorf("requests had If-None-Match %q, want none, then the server's ETag", ifNoneMatch)
	}
}

func TestRemoteFetchErrors(t *testing.T) {
	good := snapshot(t, srcConfig("a.example.com"))
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
			_, _ = w.Write(bytes.Repeat([]byte(" "), config.MaxConfigBytes))
			_, _ = w.Write([]byte("}"))
		}, []string{"larger than"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			r := newRemote(t, srv)
			l, err := r.Fetch(context.Background())
			if err == nil {
				t.Fatalf("Fetch: no error, got %s", l.Body)
			}
			if errors.Is(err, config.ErrNotModified) {
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
		r, err := discovery.NewRemote(testutil.ClosedURL(t), "", http.DefaultClient, "test", parser)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Fetch(context.Background()); err == nil || errors.Is(err, config.ErrNotModified) {
			t.Errorf("Fetch from a closed port: err = %v", err)
		}
	})

	t.Run("context", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}))
		defer srv.Close()
		r := newRemote(t, srv)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := r.Fetch(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Fetch with an expiring context: err = %v, want DeadlineExceeded", err)
		}
	})
}

// TestRemoteLimits: Remote applies its parser's limits, so that a
// configserver cannot hand the leaf a config beyond them.
func TestRemoteLimits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(testutil.OriginsConfig(3, "10s")))
	}))
	defer srv.Close()
	r, err := discovery.NewRemote(srv.URL, "", srv.Client(), "test", kinds.Parser(config.Limits{MaxOrigins: 2, MinInterval: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "--config.max-origins") {
		t.Errorf("Remote.Fetch beyond the limits: %v", err)
	}
	r = newRemote(t, srv)
	if _, err := r.Fetch(context.Background()); err != nil {
		t.Errorf("Remote.Fetch without limits: %v", err)
	}
}
