package configserver_test

// The leaf's side of the configserver's API, discovery's Registrar, Remote
// and Follower, against the real configserver.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/testutil"
	"github.com/oxcross/oxcross/prober"
)

const discoveryConfig = `origins:
  - name: everywhere
    url: http://127.0.0.1:9/
    mode: simple
  - name: eu-only
    url: http://127.0.0.1:10/
    mode: simple
    leaf_selector: {region: eu}
leaves:
  - id: static-1
    address: 127.0.0.1:9999
`

// discoveryParser reads configs with the kinds Oxcross ships, as the
// configserver and the leaf do.
var discoveryParser = prober.DefaultKinds(slog.New(slog.DiscardHandler)).Parser(config.Limits{})

// discoveryFixture runs the configserver's mux on loopback with the config
// file text, under prefix when it is not empty (as behind a reverse
// proxy's path), and records the methods and user agents it sees.
type discoveryFixture struct {
	s      *configserver.Server
	srv    *httptest.Server
	path   string
	mu     sync.Mutex
	agents []string
}

func newDiscoveryFixture(t *testing.T, text, prefix string) *discoveryFixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	testutil.WriteFile(t, path, text)
	s, err := configserver.New(path, configserver.Options{Parser: discoveryParser}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c := &discoveryFixture{s: s, path: path}
	var h http.Handler = configserver.NewMux(s)
	if prefix != "" {
		h = http.StripPrefix(prefix, h)
	}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.agents = append(c.agents, r.Method+" "+r.UserAgent())
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *discoveryFixture) live() map[string]discovery.Leaf {
	leaves, _, _ := c.s.Registry().Live()
	out := map[string]discovery.Leaf{}
	for _, l := range leaves {
		out[l.ID] = l
	}
	return out
}

func TestRegistrar(t *testing.T) {
	for _, prefix := range []string{"", "/oxcross"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			c := newDiscoveryFixture(t, discoveryConfig, prefix)
			ctx := context.Background()
			base := c.srv.URL + prefix + "/"
			r, err := discovery.NewRegistrar(base, c.srv.Client(), "oxcross-leaf/test", "ams-1", discovery.Registration{
				Address: ":9299", Labels: map[string]string{"region": "eu"}, Version: "1.2.3", RefreshInterval: "1m",
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Heartbeat(ctx); err != nil {
				t.Fatalf("Heartbeat: %v", err)
			}
			leaf, ok := c.live()["ams-1"]
			if !ok || leaf.Address != "127.0.0.1:9299" || leaf.Labels["region"] != "eu" || leaf.Version != "1.2.3" {
				t.Errorf("after Heartbeat: %+v (live %v)", leaf, ok)
			}
			// Again: a renewal.
			if err := r.Heartbeat(ctx); err != nil {
				t.Errorf("second Heartbeat: %v", err)
			}
			// The leaf's labels pick its view of the config.
			remote, err := discovery.NewRemote(base, "ams-1", c.srv.Client(), "oxcross-leaf/test", discoveryParser)
			if err != nil {
				t.Fatal(err)
			}
			l, err := remote.Fetch(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Config.Origins) != 2 {
				t.Errorf("ams-1 (region=eu) gets %d origins, want 2", len(l.Config.Origins))
			}
			if err := r.Deregister(ctx); err != nil {
				t.Fatalf("Deregister: %v", err)
			}
			if _, ok := c.live()["ams-1"]; ok {
				t.Errorf("live after Deregister")
			}
			// Deregistering twice says why.
			if err := r.Deregister(ctx); err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "not registered") {
				t.Errorf("second Deregister: %v, want 404 not registered", err)
			}
			c.mu.Lock()
			agents := c.agents
			c.mu.Unlock()
			for _, want := range []string{"PUT oxcross-leaf/test", "DELETE oxcross-leaf/test"} {
				found := false
				for _, a := range agents {
					found = found || a == want
				}
				if !found {
					t.Errorf("requests %v lack %q", agents, want)
				}
			}
		})
	}
}

func TestRegistrarRefused(t *testing.T) {
	c := newDiscoveryFixture(t, discoveryConfig, "")
	ctx := context.Background()
	for _, tc := range []struct {
		name, id string
		reg      discovery.Registration
		want     string
	}{
		{"foreign address", "evil", discovery.Registration{Address: "192.0.2.1:9299"}, "403 Forbidden: advertised address 192.0.2.1:9299 is not the request's source address 127.0.0.1"},
		{"static id elsewhere", "static-1", discovery.Registration{Address: ":9298"}, "409 Conflict: leaf id \"static-1\" is listed in the config"},
		{"bad address", "x", discovery.Registration{Address: "nowhere"}, "400 Bad Request: address"},
	} {
		r, err := discovery.NewRegistrar(c.srv.URL, c.srv.Client(), "t", tc.id, tc.reg)
		if err != nil {
			t.Fatalf("%s: NewRegistrar: %v", tc.name, err)
		}
		err = r.Heartbeat(ctx)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Heartbeat: %v, want %q", tc.name, err, tc.want)
		}
	}
	if n := len(c.live()); n != 0 {
		t.Errorf("%d refused registrations are live", n)
	}
}

// TestRemoteFetchesConfig: Remote's conditional requests against the
// configserver's ETags: the config once, then 304 until it changes.
func TestRemoteFetchesConfig(t *testing.T) {
	c := newDiscoveryFixture(t, discoveryConfig, "")
	r, err := discovery.NewRemote(c.srv.URL, "", c.srv.Client(), "oxcross-leaf/test", discoveryParser)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := r.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if cur := c.s.Current(); !bytes.Equal(l.Body, cur.Body) || l.ETag != cur.ETag {
		t.Errorf("Fetch: body %s etag %s, want %s %s", l.Body, l.ETag, cur.Body, cur.ETag)
	}
	if len(l.Config.Origins) != 2 {
		t.Errorf("Fetch: origins %+v, want 2", l.Config.Origins)
	}
	if _, err := r.Fetch(ctx); !errors.Is(err, config.ErrNotModified) {
		t.Errorf("second Fetch: err = %v, want ErrNotModified", err)
	}

	// A changed config is fetched, then not modified again.
	testutil.WriteFile(t, c.path, "origins:\n  - {name: only, url: 'http://127.0.0.1:11/', mode: simple}\n")
	if err := c.s.Reload(); err != nil {
		t.Fatal(err)
	}
	l2, err := r.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch after a change: %v", err)
	}
	if cur := c.s.Current(); l2.ETag == l.ETag || l2.ETag != cur.ETag || len(l2.Config.Origins) != 1 || l2.Config.Origins[0].ID != "only" {
		t.Errorf("Fetch after a change: etag %s (served %s), origins %+v", l2.ETag, cur.ETag, l2.Config.Origins)
	}
	if _, err := r.Fetch(ctx); !errors.Is(err, config.ErrNotModified) {
		t.Errorf("Fetch after the change was fetched: err = %v, want ErrNotModified", err)
	}

	// A leaf starting from its cache asks conditionally on the cached ETag.
	r2, err := discovery.NewRemote(c.srv.URL, "", c.srv.Client(), "test", discoveryParser)
	if err != nil {
		t.Fatal(err)
	}
	r2.SetETag(l2.ETag)
	if _, err := r2.Fetch(ctx); !errors.Is(err, config.ErrNotModified) {
		t.Errorf("Fetch after SetETag(current): err = %v, want ErrNotModified", err)
	}
	r2.SetETag(l.ETag)
	if got, err := r2.Fetch(ctx); err != nil || got.ETag != l2.ETag {
		t.Errorf("Fetch after SetETag(old): %v, %v; want the current config", got, err)
	}
}

// TestFollowerHeartbeats: a Follower with a Registrar registers before it
// fetches, so that its first config is already its own view.
func TestFollowerHeartbeats(t *testing.T) {
	c := newDiscoveryFixture(t, discoveryConfig, "")
	r, err := discovery.NewRegistrar(c.srv.URL, c.srv.Client(), "t", "eu-1", discovery.Registration{Address: ":9299", Labels: map[string]string{"region": "eu"}})
	if err != nil {
		t.Fatal(err)
	}
	remote, err := discovery.NewRemote(c.srv.URL, "eu-1", c.srv.Client(), "t", discoveryParser)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *config.Config, 4)
	f, err := discovery.NewFollower(discovery.FollowerOptions{
		Remote: remote, Heartbeat: r.Heartbeat, Apply: func(c *config.Config) { got <- c },
		Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	var cfg *config.Config
	select {
	case cfg = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no config applied within 5s")
	}
	if len(cfg.Origins) != 2 {
		t.Errorf("first config of a region=eu leaf has %d origins, want 2 (registered before fetching)", len(cfg.Origins))
	}
	if _, ok := c.live()["eu-1"]; !ok {
		t.Errorf("follower did not register")
	}
}
