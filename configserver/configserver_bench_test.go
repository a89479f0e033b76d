package configserver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/testutil"
)

// benchServer returns a configserver's routes for a config of origins
// origins, with leaves registered leaves.
func benchServer(b *testing.B, origins, leaves int) (*configserver.Server, http.Handler) {
	b.Helper()
	var cfg strings.Builder
	cfg.WriteString("interval: 10s\norigins:\n")
	for i := range origins {
		fmt.Fprintf(&cfg, "  - name: edge-%d\n    url: https://edge%d.example.com/\n    mode: simple\n", i, i)
	}
	path := filepath.Join(b.TempDir(), "config.yaml")
	testutil.WriteFile(b, path, cfg.String())
	s, err := configserver.New(path, configserver.Options{Parser: parser}, prometheus.NewRegistry(), discard)
	if err != nil {
		b.Fatal(err)
	}
	src := netip.MustParseAddr("127.0.0.1")
	for i := range leaves {
		reg := discovery.Registration{Address: fmt.Sprintf(":%d", 20000+i), Labels: map[string]string{"region": fmt.Sprintf("r%d", i%10)}, Version: "bench", RefreshInterval: "1h"}
		if _, _, err := s.Registry().Put(context.Background(), fmt.Sprintf("leaf-%04d", i), reg, configserver.Caller{Addr: src}, nil); err != nil {
			b.Fatal(err)
		}
	}
	return s, configserver.NewMux(s)
}

// benchSink is a ResponseWriter that counts the body.
type benchSink struct {
	h    http.Header
	code int
	n    int
}

func (w *benchSink) Header() http.Header { return w.h }
func (w *benchSink) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}
func (w *benchSink) WriteHeader(code int) { w.code = code }

func serveBench(b *testing.B, h http.Handler, req *http.Request, want int) {
	b.Helper()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &benchSink{h: make(http.Header)}
		for pb.Next() {
			clear(w.h)
			w.code, w.n = http.StatusOK, 0
			h.ServeHTTP(w, req)
			if w.code != want {
				b.Errorf("status %d, want %d", w.code, want)
				return
			}
		}
	})
}

// BenchmarkConfigNotModified answers GET /config with a matching
// If-None-Match (a leaf's refresh of an unchanged config) for a
// 1,000-origin config.
func BenchmarkConfigNotModified(b *testing.B) {
	s, h := benchServer(b, 1000, 0)
	req := httptest.NewRequest(http.MethodGet, "/config", nil)
	req.Header.Set("If-None-Match", s.Current().ETag)
	serveBench(b, h, req, http.StatusNotModified)
}

// BenchmarkConfigNotModifiedLeafID is BenchmarkConfigNotModified for a
// leaf that sends its id, as leaves following a configserver do.
func BenchmarkConfigNotModifiedLeafID(b *testing.B) {
	s, h := benchServer(b, 1000, 1000)
	req := httptest.NewRequest(http.MethodGet, "/config?leaf_id=leaf-0042", nil)
	req.Header.Set("If-None-Match", s.Current().ETag)
	serveBench(b, h, req, http.StatusNotModified)
}

// BenchmarkSDLeaves answers Prometheus' GET /sd/leaves with 1,000
// registered leaves.
func BenchmarkSDLeaves(b *testing.B) {
	_, h := benchServer(b, 10, 1000)
	serveBench(b, h, httptest.NewRequest(http.MethodGet, "/sd/leaves", nil), http.StatusOK)
}

// BenchmarkSDLeavesGzip is BenchmarkSDLeaves for a client that accepts
// gzip.
func BenchmarkSDLeavesGzip(b *testing.B) {
	_, h := benchServer(b, 10, 1000)
	req := httptest.NewRequest(http.MethodGet, "/sd/leaves", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	serveBench(b, h, req, http.StatusOK)
}
