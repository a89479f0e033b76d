package testutil

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// MetricSeries returns the series of the metric name gathered from g
// whose labels match labels, given as name, value pairs; a pair with the
// value "" matches a series without that label, as in PromQL. It must be
// called from the test's goroutine.
func MetricSeries(t testing.TB, g prometheus.Gatherer, name string, labels ...string) []*dto.Metric {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("metric %s: labels %q are not name, value pairs", name, labels)
	}
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	var out []*dto.Metric
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				out = append(out, m)
			}
		}
	}
	return out
}

// MetricValue returns the value of the one series of the metric name
// with labels (see MetricSeries), failing the test when there is none or
// more than one. The value of a counter, gauge or untyped metric is its
// value, that of a histogram or summary its count of observations.
func MetricValue(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	v, ok := LookupMetric(t, g, name, labels...)
	if !ok {
		t.Fatalf("metric %s%q not found", name, labels)
	}
	return v
}

// LookupMetric is MetricValue reporting whether the series exists rather
// than failing without it. It still fails the test when labels match more
// than one series.
func LookupMetric(t testing.TB, g prometheus.Gatherer, name string, labels ...string) (float64, bool) {
	t.Helper()
	ms := MetricSeries(t, g, name, labels...)
	switch len(ms) {
	case 0:
		return 0, false
	case 1:
		return value(ms[0]), true
	}
	t.Fatalf("metric %s%q: %d series match, want 1", name, labels, len(ms))
	return 0, false
}

// MetricSum returns the sum of the values (see MetricValue) of the series
// of the metric name with labels; 0 when there is none.
func MetricSum(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	var sum float64
	for _, m := range MetricSeries(t, g, name, labels...) {
		sum += value(m)
	}
	return sum
}

// matches reports whether m has the labels, name, value pairs.
func matches(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		got := ""
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] {
				got = lp.GetValue()
				break
			}
		}
		if got != labels[i+1] {
			return false
		}
	}
	return true
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	case m.Summary != nil:
		return float64(m.GetSummary().GetSampleCount())
	}
	return 0
}
