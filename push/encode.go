package push

import (
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/prompb"

	writev2 "github.com/prometheus/client_golang/exp/api/remote/genproto/v2"
)

// group orders a batch by series, keeping each series' samples in queue
// (time) order: the receiver appends them in the order they come.
func group(batch []sample) [][]sample {
	index := map[*series]int{}
	var out [][]sample
	for _, x := range batch {
		i, ok := index[x.s]
		if !ok {
			i = len(out)
			index[x.s] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], x)
	}
	return out
}

// requestV1 is a remote write 1.0 request (prometheus.WriteRequest) of
// the batch.
func requestV1(batch []sample) *prompb.WriteRequest {
	groups := group(batch)
	req := &prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, 0, len(groups))}
	for _, g := range groups {
		s := g[0].s
		ts := prompb.TimeSeries{Labels: s.labels}
		for _, x := range g {
			switch {
			case x.h != nil:
				ts.Histograms = append(ts.Histograms, histogramV1(x.h, x.t, s.gauge))
			case s.native: // the stale marker of a native histogram
				ts.Histograms = append(ts.Histograms, prompb.Histogram{Count: &prompb.Histogram_CountInt{}, Sum: x.v, Timestamp: x.t})
			default:
				ts.Samples = append(ts.Samples, prompb.Sample{Value: x.v, Timestamp: x.t})
			}
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	return req
}

func histogramV1(h *dto.Histogram, t int64, gauge bool) prompb.Histogram {
	out := prompb.Histogram{
		Sum:            h.GetSampleSum(),
		Schema:         h.GetSchema(),
		ZeroThreshold:  h.GetZeroThreshold(),
		NegativeSpans:  spansV1(h.GetNegativeSpan()),
		NegativeDeltas: h.GetNegativeDelta(),
		NegativeCounts: h.GetNegativeCount(),
		PositiveSpans:  spansV1(h.GetPositiveSpan()),
		PositiveDeltas: h.GetPositiveDelta(),
		PositiveCounts: h.GetPositiveCount(),
		Timestamp:      t,
	}
	if gauge {
		out.ResetHint = prompb.Histogram_GAUGE
	}
	if h.SampleCountFloat != nil {
		out.Count = &prompb.Histogram_CountFloat{CountFloat: h.GetSampleCountFloat()}
		out.ZeroCount = &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: h.GetZeroCountFloat()}
	} else {
		out.Count = &prompb.Histogram_CountInt{CountInt: h.GetSampleCount()}
		out.ZeroCount = &prompb.Histogram_ZeroCountInt{ZeroCountInt: h.GetZeroCount()}
	}
	return out
}

func spansV1(in []*dto.BucketSpan) []prompb.BucketSpan {
	if len(in) == 0 {
		return nil
	}
	out := make([]prompb.BucketSpan, len(in))
	for i, s := range in {
		out[i] = prompb.BucketSpan{Offset: s.GetOffset(), Length: s.GetLength()}
	}
	return out
}

// requestV2 is a remote write 2.0 request (io.prometheus.write.v2.Request)
// of the batch, with each series' type and help as metadata.
func requestV2(batch []sample) *writev2.Request {
	groups := group(batch)
	symbols := writev2.NewSymbolTable()
	req := &writev2.Request{Timeseries: make([]*writev2.TimeSeries, 0, len(groups))}
	pairs := make([]string, 0, 16)
	for _, g := range groups {
		s := g[0].s
		pairs = pairs[:0]
		for _, l := range s.labels {
			pairs = append(pairs, l.Name, l.Value)
		}
		ts := &writev2.TimeSeries{
			LabelsRefs: symbols.SymbolizeLabels(pairs, nil),
			Metadata:   &writev2.Metadata{Type: typeV2(s.typ), HelpRef: symbols.Symbolize(s.help)},
		}
		for _, x := range g {
			switch {
			case x.h != nil:
				ts.Histograms = append(ts.Histograms, histogramV2(x.h, x.t, s.gauge))
			case s.native:
				ts.Histograms = append(ts.Histograms, &writev2.Histogram{Count: &writev2.Histogram_CountInt{}, Sum: x.v, Timestamp: x.t})
			default:
				ts.Samples = append(ts.Samples, &writev2.Sample{Value: x.v, Timestamp: x.t})
			}
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	req.Symbols = symbols.Symbols()
	return req
}

func histogramV2(h *dto.Histogram, t int64, gauge bool) *writev2.Histogram {
	out := &writev2.Histogram{
		Sum:            h.GetSampleSum(),
		Schema:         h.GetSchema(),
		ZeroThreshold:  h.GetZeroThreshold(),
		NegativeSpans:  spansV2(h.GetNegativeSpan()),
		NegativeDeltas: h.GetNegativeDelta(),
		NegativeCounts: h.GetNegativeCount(),
		PositiveSpans:  spansV2(h.GetPositiveSpan()),
		PositiveDeltas: h.GetPositiveDelta(),
		PositiveCounts: h.GetPositiveCount(),
		Timestamp:      t,
	}
	if gauge {
		out.ResetHint = writev2.Histogram_RESET_HINT_GAUGE
	}
	if h.SampleCountFloat != nil {
		out.Count = &writev2.Histogram_CountFloat{CountFloat: h.GetSampleCountFloat()}
		out.ZeroCount = &writev2.Histogram_ZeroCountFloat{ZeroCountFloat: h.GetZeroCountFloat()}
	} else {
		out.Count = &writev2.Histogram_CountInt{CountInt: h.GetSampleCount()}
		out.ZeroCount = &writev2.Histogram_ZeroCountInt{ZeroCountInt: h.GetZeroCount()}
	}
	return out
}

func spansV2(in []*dto.BucketSpan) []*writev2.BucketSpan {
	out := make([]*writev2.BucketSpan, len(in))
	for i, s := range in {
		out[i] = &writev2.BucketSpan{Offset: s.GetOffset(), Length: s.GetLength()}
	}
	return out
}

func typeV2(t dto.MetricType) writev2.Metadata_MetricType {
	switch t {
	case dto.MetricType_COUNTER:
		return writev2.Metadata_METRIC_TYPE_COUNTER
	case dto.MetricType_GAUGE:
		return writev2.Metadata_METRIC_TYPE_GAUGE
	case dto.MetricType_HISTOGRAM:
		return writev2.Metadata_METRIC_TYPE_HISTOGRAM
	case dto.MetricType_GAUGE_HISTOGRAM:
		return writev2.Metadata_METRIC_TYPE_GAUGEHISTOGRAM
	case dto.MetricType_SUMMARY:
		return writev2.Metadata_METRIC_TYPE_SUMMARY
	}
	return writev2.Metadata_METRIC_TYPE_UNSPECIFIED
}
