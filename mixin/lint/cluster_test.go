package main

import (
	"slices"
	"testing"
)

func TestClusterFindings(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`sum by (region, job) (rate(x[5m]))`, nil},
		{`sum without (instance) (x) and on (region, job) y`, nil},
		{`count by (region) (up == 0) or on () vector(0)`, nil},
		{`histogram_quantile(0.9, sum by (le, region) (rate(x_bucket[5m])))`, nil},
		{`oxcross_leaf_probe_results_count{job="a"} > 0`, nil},
		{`sum(rate(x[5m]))`, []string{"sum without a by clause"}},
		{`max by (job, origin_id) (x)`, []string{"max by (job, origin_id) without region"}},
		{`quantile by (job) (0.5, x)`, []string{"quantile by (job) without region"}},
		{`avg without (region) (x)`, []string{"avg without (region) drops region"}},
		{`x and on (job, source_id) y`, []string{"on (job, source_id) without region"}},
		{`x / ignoring (region) y`, []string{"ignoring (region) ignores region"}},
		{`x or on () y`, []string{"on () without region"}},
	} {
		if got := clusterFindings(c.expr, "region"); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.expr, got, c.want)
		}
	}
}
