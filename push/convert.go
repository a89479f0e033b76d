package push

import (
	"math"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
)

// staleNaN is Prometheus' staleness marker: a sample with this value ends
// a series at its timestamp, so that it leaves instant queries at once
// instead of after the 5 minutes' lookback.
var staleNaN = math.Float64frombits(value.StaleNaN)

// series is one pushed series: its labels, sorted by name, external labels
// included. It is shared, read-only, by every sample of it in every queue.
type series struct {
	key    string
	labels []prompb.Label
	// native: the series carries native histogram samples; its stale
	// marker is a histogram whose sum is the stale NaN.
	native bool
	// gauge: a gauge histogram (reset hint GAUGE).
	gauge bool
	// typ and help are the family's, for remote write 2.0's metadata.
	typ  dto.MetricType
	help string
}

// sample is one sample of a series in a queue: a float (v), a native
// histogram (h), or a stale marker (v is the stale NaN, h nil).
type sample struct {
	s *series
	t int64
	v float64
	h *dto.Histogram
}

// snapshot turns gathered families into samples at time t (milliseconds),
// with the series it saw. It keeps the series of the previous snapshot so
// that an unchanged series costs no allocation of its labels.
type snapshot struct {
	external []prompb.Label // sorted by name
	known    map[string]*series
	seen     map[string]*series
	// spare is the map of the take before last, emptied and used again
	// as the next take's seen.
	spare map[string]*series
	out   []sample
	// kbuf and lbuf are a series' key and labels, kept between series
	// and takes: only a series not seen before costs an allocation.
	kbuf []byte
	lbuf []prompb.Label
}

func newSnapshot(external []prompb.Label) *snapshot {
	return &snapshot{external: external, known: map[string]*series{}}
}

// take converts the families gathered at t and returns their samples and
// the stale markers, at t, of every series the previous call saw and this
// one did not. With complete false (the gatherer reported an error) the
// series not seen are kept, not marked stale: a failing collector is no
// proof that its series are gone.
func (b *snapshot) take(families []*dto.MetricFamily, t int64, complete bool) []sample {
	// Sized for every series of the last take: the samples are handed to
	// the queues, so each take needs its own slice.
	b.out = make([]sample, 0, len(b.known)+len(b.known)/16)
	if b.spare == nil {
		b.spare = make(map[string]*series, len(b.known))
	}
	b.seen, b.spare = b.spare, nil
	clear(b.seen)
	for _, f := range families {
		b.family(f, t)
	}
	for k, s := range b.known {
		if _, ok := b.seen[k]; ok {
			continue
		}
		if complete {
			b.out = append(b.out, sample{s: s, t: t, v: staleNaN})
		} else {
			b.seen[k] = s
		}
	}
	b.known, b.spare = b.seen, b.known
	return b.out
}

// staleAll returns a stale marker at t for every series last seen.
func (b *snapshot) staleAll(t int64) []sample {
	out := make([]sample, 0, len(b.known))
	for _, s := range b.known {
		out = append(out, sample{s: s, t: t, v: staleNaN})
	}
	b.known, b.spare = map[string]*series{}, nil
	return out
}

func (b *snapshot) family(f *dto.MetricFamily, t int64) {
	name, typ, help := f.GetName(), f.GetType(), f.GetHelp()
	for _, m := range f.GetMetric() {
		ts := t
		if m.TimestampMs != nil {
			ts = m.GetTimestampMs()
		}
		add := func(suffix, extraName, extraValue string, v float64, h *dto.Histogram) {
			s := b.series(name, suffix, m.GetLabel(), extraName, extraValue, typ, help, h != nil)
			b.out = append(b.out, sample{s: s, t: ts, v: v, h: h})
		}
		switch typ {
		case dto.MetricType_COUNTER:
			add("", "", "", m.GetCounter().GetValue(), nil)
		case dto.MetricType_GAUGE:
			add("", "", "", m.GetGauge().GetValue(), nil)
		case dto.MetricType_UNTYPED:
			add("", "", "", m.GetUntyped().GetValue(), nil)
		case dto.MetricType_SUMMARY:
			s := m.GetSummary()
			for _, q := range s.GetQuantile() {
				add("", "quantile", formatFloat(q.GetQuantile()), q.GetValue(), nil)
			}
			add("_sum", "", "", s.GetSampleSum(), nil)
			add("_count", "", "", float64(s.GetSampleCount()), nil)
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			h := m.GetHistogram()
			// A histogram with a schema is native; one with buckets is
			// classic too (client_golang sends both when it has both), and
			// both are pushed, as Prometheus scrapes them with
			// always_scrape_classic_histograms.
			if h.Schema != nil {
				add("", "", "", 0, h)
			}
			if len(h.GetBucket()) > 0 || h.Schema == nil {
				count := float64(h.GetSampleCount())
				if h.SampleCountFloat != nil {
					count = h.GetSampleCountFloat()
				}
				inf := false
				for _, bk := range h.GetBucket() {
					c := float64(bk.GetCumulativeCount())
					if bk.CumulativeCountFloat != nil {
						c = bk.GetCumulativeCountFloat()
					}
					if math.IsInf(bk.GetUpperBound(), 1) {
						inf = true
					}
					add("_bucket", "le", formatFloat(bk.GetUpperBound()), c, nil)
				}
				if !inf {
					add("_bucket", "le", "+Inf", count, nil)
				}
				add("_sum", "", "", h.GetSampleSum(), nil)
				add("_count", "", "", count, nil)
			}
		}
	}
}

// series finds or makes the series of a metric name, its labels, an extra
// label (le or quantile) and the external labels, which the metric's own
// labels override as Prometheus' external_labels do.
func (b *snapshot) series(name, suffix string, pairs []*dto.LabelPair, extraName, extraValue string, typ dto.MetricType, help string, native bool) *series {
	kb := append(b.kbuf[:0], name...)
	kb = append(kb, suffix...)
	ls := b.lbuf[:0]
	for _, p := range pairs {
		ls = append(ls, prompb.Label{Name: p.GetName(), Value: p.GetValue()})
	}
	if extraName != "" {
		ls = append(ls, prompb.Label{Name: extraName, Value: extraValue})
	}
	own := len(ls)
	for _, e := range b.external {
		if !hasLabel(ls[:own], e.Name) {
			ls = append(ls, e)
		}
	}
	slices.SortFunc(ls, func(x, y prompb.Label) int { return strings.Compare(x.Name, y.Name) })
	b.lbuf = ls
	// The key: the metric name, then every other label's name and value.
	kb = append(kb, 0xff)
	for _, l := range ls {
		kb = append(kb, l.Name...)
		kb = append(kb, 0xff)
		kb = append(kb, l.Value...)
		kb = append(kb, 0xff)
	}
	if native {
		kb = append(kb, "native"...)
	}
	b.kbuf = kb
	// Looked up with the key's bytes: no string is made for a series
	// seen before.
	if s, ok := b.seen[string(kb)]; ok {
		return s
	}
	s, ok := b.known[string(kb)]
	if !ok {
		key := string(kb)
		// The labels with __name__ in its place by name.
		labels := make([]prompb.Label, 0, len(ls)+1)
		i, _ := slices.BinarySearchFunc(ls, "__name__", func(l prompb.Label, n string) int { return strings.Compare(l.Name, n) })
		labels = append(labels, ls[:i]...)
		labels = append(labels, prompb.Label{Name: "__name__", Value: key[:len(name)+len(suffix)]})
		labels = append(labels, ls[i:]...)
		s = &series{key: key, labels: labels, native: native,
			gauge: typ == dto.MetricType_GAUGE_HISTOGRAM, typ: typ, help: help}
	}
	b.seen[s.key] = s
	return s
}

func hasLabel(ls []prompb.Label, name string) bool {
	for _, l := range ls {
		if l.Name == name {
			return true
		}
	}
	return false
}

// formatFloat writes le and quantile values as Prometheus' text format
// does, so that series match those of a scrape.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
