package push

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
)

// BenchmarkSnapshotTake: one push's conversion of a leaf-sized registry
// (1,000 origins: a counter of 4 series, a gauge, and a classic plus
// native histogram of 5 phases each, about 80 series an origin) into
// samples, after the first push saw every series. It reports the bytes
// allocated per push, and the heap the snapshot keeps between pushes.
func BenchmarkSnapshotTake(b *testing.B) {
	reg := prometheus.NewPedanticRegistry()
	results := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "oxcross_leaf_probe_results", Help: "h"}, []string{"origin_id", "source_id", "result"})
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "oxcross_leaf_origin_status", Help: "h"}, []string{"origin_id", "source_id"})
	timings := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "oxcross_leaf_probe_timings", Help: "h", Buckets: prometheus.ExponentialBuckets(0.001, 2, 12),
		NativeHistogramBucketFactor: 1.1,
	}, []string{"origin_id", "source_id", "phase"})
	reg.MustRegister(results, up, timings)
	for i := range 1000 {
		id := fmt.Sprintf("origin-%04d", i)
		for _, r := range []string{"ok", "timeout", "connect", "http_status"} {
			results.WithLabelValues(id, "leaf-a", r).Add(float64(i))
		}
		up.WithLabelValues(id, "leaf-a").Set(1)
		for _, ph := range []string{"resolve", "connect", "tls", "processing", "transfer"} {
			timings.WithLabelValues(id, "leaf-a", ph).Observe(0.01 * float64(i%7+1))
		}
	}
	snap := newSnapshot([]prompb.Label{{Name: "leaf_id", Value: "leaf-a"}})
	fams, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	samples := len(snap.take(fams, 1, true))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if n := len(snap.take(fams, int64(i+2), true)); n != samples {
			b.Fatalf("%d samples, want %d", n, samples)
		}
	}
	b.ReportMetric(float64(samples), "samples/push")
}

// TestSnapshotSeries: each series' labels sorted by name with __name__
// in its place (a label may sort before it), the histogram's series
// named with their suffixes, and the same series, not a copy, at the
// next take.
func TestSnapshotSeries(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "g", Help: "h"}, []string{"Zone", "a"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Help: "h", Buckets: []float64{1}})
	reg.MustRegister(g, h)
	g.WithLabelValues("z", "x").Set(1)
	h.Observe(0.5)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	snap := newSnapshot([]prompb.Label{{Name: "leaf_id", Value: "l"}})
	first := snap.take(fams, 1, true)
	var got []string
	for _, x := range first {
		var s []string
		for _, l := range x.s.labels {
			s = append(s, l.Name+"="+l.Value)
		}
		got = append(got, fmt.Sprint(s))
	}
	want := []string{
		"[Zone=z __name__=g a=x leaf_id=l]",
		"[__name__=h_bucket le=1 leaf_id=l]",
		"[__name__=h_bucket le=+Inf leaf_id=l]",
		"[__name__=h_sum leaf_id=l]",
		"[__name__=h_count leaf_id=l]",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("series\n%v\nwant\n%v", got, want)
	}
	second := snap.take(fams, 2, true)
	if len(second) != len(first) {
		t.Fatalf("%d samples at the second take, %d at the first", len(second), len(first))
	}
	for i := range first {
		if first[i].s != second[i].s {
			t.Errorf("sample %d: a new series at the second take", i)
		}
	}
}
