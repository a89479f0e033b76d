package discovery_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/testutil"
)

// replica is a configserver replica: /config as configServer serves it,
// and a registry answering heartbeats with putCode; it counts both.
type replica struct {
	*configServer
	mu      sync.Mutex
	putCode int
	puts    int
}

func newReplica(t *testing.T) *replica {
	t.Helper()
	r := &replica{configServer: &configServer{current: snapshot(t, srcConfig("127.0.0.1"))}, putCode: http.StatusOK}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, "/api/v1/leaves/") {
			r.mu.Lock()
			r.puts++
			code := r.putCode
			r.mu.Unlock()
			w.WriteHeader(code)
			return
		}
		r.serve(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *replica) counts() (puts, fetches int) {
	r.mu.Lock()
	puts = r.puts
	r.mu.Unlock()
	r.configServer.mu.Lock()
	defer r.configServer.mu.Unlock()
	return puts, len(r.requests)
}

func (r *replica) setPut(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.putCode = code
}

// TestConfigserversFailover: a leaf given several configservers sends its
// heartbeat and its fetch to the current one; one that does not answer, or
// answers 5xx, passes the request to the next, which stays current; a 4xx
// is an answer, not a reason to fail over. The ETag carries over: the
// replicas serve the same config.
func TestConfigserversFailover(t *testing.T) {
	a, b := newReplica(t), newReplica(t)
	closed := testutil.ClosedURL(t)
	servers, err := discovery.NewConfigservers([]string{closed, a.URL, b.URL}, discardLogger)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := discovery.NewRegistrarFrom(servers, http.DefaultClient, "test", "leaf-1", discovery.Registration{Address: ":9299"})
	if err != nil {
		t.Fatal(err)
	}
	remote := discovery.NewRemoteFrom(servers, "leaf-1", http.DefaultClient, "test", parser)
	ctx := context.Background()

	// The first does not answer: A takes the heartbeat and the fetch.
	if err := reg.Heartbeat(ctx); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	if _, err := remote.Fetch(ctx); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if got := servers.Current(); got != a.URL {
		t.Errorf("current %s after the first did not answer, want A %s", got, a.URL)
	}
	if p, f := a.counts(); p != 1 || f != 1 {
		t.Errorf("A saw %d heartbeats and %d fetches, want 1 and 1", p, f)
	}

	// A answers 503 to heartbeats: B takes them, and the fetch after,
	// conditional on the ETag A gave.
	a.setPut(http.StatusServiceUnavailable)
	if err := reg.Heartbeat(ctx); err != nil {
		t.Fatalf("Heartbeat with A unwell: %v", err)
	}
	if got := servers.Current(); got != b.URL {
		t.Errorf("current %s after A's 503, want B %s", got, b.URL)
	}
	if _, err := remote.Fetch(ctx); !errors.Is(err, config.ErrNotModified) {
		t.Errorf("Fetch from B: %v, want ErrNotModified (same config, same ETag)", err)
	}
	if p, f := b.counts(); p != 1 || f != 1 {
		t.Errorf("B saw %d heartbeats and %d fetches, want 1 and 1", p, f)
	}

	// A 4xx is B's answer: no failover.
	b.setPut(http.StatusForbidden)
	if err := reg.Heartbeat(ctx); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("Heartbeat refused with 403: %v", err)
	}
	if got := servers.Current(); got != b.URL {
		t.Errorf("current %s after B's 403, want B still", got)
	}

	// None answers well: the last error, and the next request starts after B.
	b.setPut(http.StatusBadGateway)
	a.Close()
	if err := reg.Heartbeat(ctx); err == nil {
		t.Errorf("Heartbeat with every configserver down succeeded")
	}
	if got := servers.Current(); got != closed {
		t.Errorf("current %s after all failed from B, want the next, %s", got, closed)
	}
}
