package discovery_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/discovery"
)

const registrarConfig = `origins:
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

// realConfigserver runs the configserver's mux on loopback, under prefix
// when it is not empty (as behind a reverse proxy's path), and records
// the user agents it sees.
type realConfigserver struct {
	s      *configserver.Server
	srv    *httptest.Server
	mu     sync.Mutex
	agents []string
}

func newRealConfigserver(t *testing.T, prefix string) *realConfigserver {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(registrarConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := configserver.New(path, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c := &realConfigserver{s: s}
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

func (c *realConfigserver) live() map[string]discovery.Leaf {
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
			c := newRealConfigserver(t, prefix)
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
			remote, err := discovery.NewRemote(base, c.srv.Client(), "oxcross-leaf/test")
			if err != nil {
				t.Fatal(err)
			}
			remote.SetLeafID("ams-1")
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
	c := newRealConfigserver(t, "")
	ctx := context.Background()
	for _, tc := range []struct {
		name, id string
		reg      discovery.Registration
		want     string
	}{
		{"foreign address", "evil", discovery.Registration{Address: "192.0.2.1:9299"}, "403 Forbidden: advertised address 192.0.2.1:9299 is not the request's source 127.0.0.1"},
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
	// A configserver that is not there.
	c.srv.Close()
	r, _ := discovery.NewRegistrar(c.srv.URL, http.DefaultClient, "t", "gone", discovery.Registration{Address: ":1"})
	if err := r.Heartbeat(ctx); err == nil || !strings.Contains(err.Error(), "PUT "+c.srv.URL+"/api/v1/leaves/gone") {
		t.Errorf("Heartbeat to a closed server: %v", err)
	}
	// A cancelled context stops it.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := r.Deregister(cctx); err == nil {
		t.Errorf("Deregister with a cancelled context: no error")
	}
}

func TestNewRegistrarValidates(t *testing.T) {
	for _, tc := range []struct {
		name, base, id string
		labels         map[string]string
		want           string
	}{
		{"bad id", "http://127.0.0.1:9300", "a b", nil, "leaf id"},
		{"empty id", "http://127.0.0.1:9300", "", nil, "leaf id"},
		{"reserved label", "http://127.0.0.1:9300", "ok", map[string]string{"leaf_id": "x"}, "leaf labels"},
		{"bad label", "http://127.0.0.1:9300", "ok", map[string]string{"a-b": "x"}, "leaf labels"},
		{"no scheme", "127.0.0.1:9300", "ok", nil, "config URL"},
		{"ftp", "ftp://127.0.0.1:9300", "ok", nil, "config URL"},
		{"no host", "http://", "ok", nil, "config URL"},
	} {
		_, err := discovery.NewRegistrar(tc.base, http.DefaultClient, "t", tc.id, discovery.Registration{Address: ":1", Labels: tc.labels})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	if k, v, err := discovery.ParseLabelFlag("region=eu=west"); err != nil || k != "region" || v != "eu=west" {
		t.Errorf("ParseLabelFlag with = in the value: %q %q %v", k, v, err)
	}
	for _, bad := range []string{"region", "=eu", "leaf_id=x", "__x=1"} {
		if _, _, err := discovery.ParseLabelFlag(bad); err == nil {
			t.Errorf("ParseLabelFlag(%q) accepted", bad)
		}
	}
}

// TestFollowerHeartbeats: a Follower with a Registrar registers before it
// fetches, so that its first config is already its own view.
func TestFollowerHeartbeats(t *testing.T) {
	c := newRealConfigserver(t, "")
	r, err := discovery.NewRegistrar(c.srv.URL, c.srv.Client(), "t", "eu-1", discovery.Registration{Address: ":9299", Labels: map[string]string{"region": "eu"}})
	if err != nil {
		t.Fatal(err)
	}
	remote, err := discovery.NewRemote(c.srv.URL, c.srv.Client(), "t")
	if err != nil {
		t.Fatal(err)
	}
	remote.SetLeafID("eu-1")
	got := make(applied, 4)
	f, err := discovery.NewFollower(discovery.FollowerOptions{
		Remote: remote, Heartbeat: r.Heartbeat, Apply: got.apply,
		Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	cfg := got.next(t, 5*time.Second)
	if len(cfg.Origins) != 2 {
		t.Errorf("first config of a region=eu leaf has %d origins, want 2 (registered before fetching)", len(cfg.Origins))
	}
	if _, ok := c.live()["eu-1"]; !ok {
		t.Errorf("follower did not register")
	}
}
