package testutil

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	results := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "results_total", Help: "h"}, []string{"origin", "result"})
	temp := prometheus.NewGauge(prometheus.GaugeOpts{Name: "temperature", Help: "h"})
	durations := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "duration_seconds", Help: "h"})
	reg.MustRegister(results, temp, durations)
	results.WithLabelValues("a", "ok").Add(3)
	results.WithLabelValues("a", "fail").Add(1)
	results.WithLabelValues("b", "ok").Add(5)
	temp.Set(21.5)
	durations.Observe(0.1)
	durations.Observe(0.2)

	if v := MetricValue(t, reg, "results_total", "origin", "a", "result", "ok"); v != 3 {
		t.Errorf("a ok: %v, want 3", v)
	}
	if v := MetricValue(t, reg, "temperature"); v != 21.5 {
		t.Errorf("temperature %v, want 21.5", v)
	}
	if v := MetricValue(t, reg, "temperature", "origin", ""); v != 21.5 {
		t.Errorf("temperature without an origin label: %v, want 21.5", v)
	}
	if v := MetricValue(t, reg, "duration_seconds"); v != 2 {
		t.Errorf("histogram: %v, want its count 2", v)
	}
	if v := MetricSum(t, reg, "results_total", "origin", "a"); v != 4 {
		t.Errorf("sum for a: %v, want 4", v)
	}
	if v := MetricSum(t, reg, "results_total", "origin", "c"); v != 0 {
		t.Errorf("sum for c: %v, want 0", v)
	}
	if n := len(MetricSeries(t, reg, "results_total", "result", "ok")); n != 2 {
		t.Errorf("%d ok series, want 2", n)
	}
	if _, ok := LookupMetric(t, reg, "results_total", "origin", "c"); ok {
		t.Errorf("found a series for c")
	}

	for _, tc := range []struct {
		name   string
		labels []string
		want   string
	}{
		{"missing", []string{"origin", "c"}, "not found"},
		{"ambiguous", []string{"origin", "a"}, "2 series match"},
		{"odd labels", []string{"origin"}, "pairs"},
	} {
		tb := run(t, func(tb testing.TB) { MetricValue(tb, reg, "results_total", tc.labels...) })
		if !tb.fatal || !strings.Contains(tb.message(), tc.want) {
			t.Errorf("%s: failure %q, want a fatal one saying %q", tc.name, tb.message(), tc.want)
		}
	}
}
