// Package leafview reads a leaf's /metrics and summarises what it measured
// per origin; the demo prints it and the end-to-end tests assert on it.
package leafview

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are scraped metric families by name.
type Families map[string]*dto.MetricFamily

// Scrape GETs url (a leaf's /metrics) and parses the text exposition.
func Scrape(ctx context.Context, client *http.Client, url string) (Families, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: status %s", url, resp.Status)
	}
	fams, err := Parse(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return fams, nil
}

// Parse parses the Prometheus text exposition format.
func Parse(r io.Reader) (Families, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing metrics: %w", err)
	}
	return fams, nil
}

// Origin is what a leaf measured of one origin.
type Origin struct {
	ID        string
	Up        bool
	Latency   time.Duration // last probe
	Successes float64
	Failures  float64
	// FailureReasons counts failures by reason.
	FailureReasons map[string]float64
	HasDrift       bool
	Drift          time.Duration
	Uncertainty    time.Duration
	// HasTrain is set for origins probed with packet trains (icmp, tcp):
	// the last train's loss ratio and round-trip spread.
	HasTrain bool
	Loss     float64
	Spread   time.Duration
}

// Origins summarises every origin in the families, sorted by id.
func (f Families) Origins() []Origin {
	byID := map[string]*Origin{}
	get := func(id string) *Origin {
		o := byID[id]
		if o == nil {
			o = &Origin{ID: id, FailureReasons: map[string]float64{}}
			byID[id] = o
		}
		return o
	}
	each := func(name string, fn func(o *Origin, m *dto.Metric)) {
		for _, m := range f[name].GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "origin_id" {
					fn(get(lp.GetValue()), m)
				}
			}
		}
	}
	seconds := func(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }
	each("oxcross_leaf_origin_status", func(o *Origin, m *dto.Metric) { o.Up = m.GetGauge().GetValue() == 1 })
	each("oxcross_leaf_probe_duration_seconds", func(o *Origin, m *dto.Metric) { o.Latency = seconds(m.GetGauge().GetValue()) })
	each("oxcross_leaf_origin_time_drift", func(o *Origin, m *dto.Metric) {
		o.HasDrift, o.Drift = true, seconds(m.GetGauge().GetValue())
	})
	each("oxcross_leaf_origin_time_drift_uncertainty_seconds", func(o *Origin, m *dto.Metric) { o.Uncertainty = seconds(m.GetGauge().GetValue()) })
	each("oxcross_leaf_probe_packet_loss_ratio", func(o *Origin, m *dto.Metric) { o.HasTrain, o.Loss = true, m.GetGauge().GetValue() })
	each("oxcross_leaf_probe_packet_rtt_spread_seconds", func(o *Origin, m *dto.Metric) { o.Spread = seconds(m.GetGauge().GetValue()) })
	each("oxcross_leaf_probe_results", func(o *Origin, m *dto.Metric) {
		var result, reason string
		for _, lp := range m.GetLabel() {
			switch lp.GetName() {
			case "result":
				result = lp.GetValue()
			case "reason":
				reason = lp.GetValue()
			}
		}
		v := m.GetCounter().GetValue()
		if result == "true" {
			o.Successes += v
		} else {
			o.Failures += v
			if v > 0 {
				o.FailureReasons[reason] += v
			}
		}
	})
	out := make([]Origin, 0, len(byID))
	for _, o := range byID {
		out = append(out, *o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Table renders origins as an aligned text table; modes maps origin ids to
// their probe mode when known.
func Table(w io.Writer, origins []Origin, modes map[string]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORIGIN\tMODE\tSTATUS\tLAST LATENCY\tSUCCESS\tCLOCK DRIFT (origin - leaf)\tLOSS, SPREAD (trains)\tFAILURES")
	for _, o := range origins {
		status := "DOWN"
		switch {
		case o.Successes+o.Failures == 0:
			status = "pending"
		case o.Up:
			status = "up"
		}
		drift := "-"
		if o.HasDrift {
			drift = fmt.Sprintf("%+.3fms ± %.3fms", ms(o.Drift), ms(o.Uncertainty))
		}
		total := o.Successes + o.Failures
		success := "-"
		if total > 0 {
			success = fmt.Sprintf("%.0f/%.0f (%.0f%%)", o.Successes, total, 100*o.Successes/total)
		}
		failures := "-"
		if len(o.FailureReasons) > 0 {
			var parts []string
			for r, n := range o.FailureReasons {
				parts = append(parts, fmt.Sprintf("%s=%.0f", r, n))
			}
			sort.Strings(parts)
			failures = strings.Join(parts, " ")
		}
		mode := modes[o.ID]
		if mode == "" {
			mode = "-"
		}
		latency := "-"
		if total > 0 {
			latency = fmt.Sprintf("%.3fms", ms(o.Latency))
		}
		train := "-"
		if o.HasTrain {
			train = fmt.Sprintf("%.0f%%, %.3fms", 100*o.Loss, ms(o.Spread))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.ID, mode, status, latency, success, drift, train, failures)
	}
	return tw.Flush()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
