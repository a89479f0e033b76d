package origin_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/origin"
)

// benchSink is a ResponseWriter that keeps nothing but headers.
type benchSink struct{ h http.Header }

func (w *benchSink) Header() http.Header         { return w.h }
func (w *benchSink) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchSink) WriteHeader(int)             {}

// BenchmarkHandlerParallel answers /oxcross from every CPU at once, as
// the origin does under many leaves: the token source and the metrics are
// shared.
func BenchmarkHandlerParallel(b *testing.B) {
	h, err := origin.NewHandler(origin.Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, origin.Path+"?nonce=0123456789abcdef0123456789abcdef", nil)
		w := &benchSink{h: make(http.Header)}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
}

// BenchmarkHandlerNoNonce answers the original Oxcross leaf, which sends
// no nonce.
func BenchmarkHandlerNoNonce(b *testing.B) {
	h, err := origin.NewHandler(origin.Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, origin.Path, nil)
	w := &benchSink{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}
