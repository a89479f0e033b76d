package prober

import (
	"math"
	"slices"
	"sync"

	dto "github.com/prometheus/client_model/go"
)

// The native histogram of oxcross_leaf_probe_timings: client_golang's
// with a bucket factor of 1.1 (schema 3), at most 100 buckets and no
// resets, which halves its resolution (schema−1) whenever it holds more
// than 100 buckets.
const (
	nativeSchema     = 3
	nativeMaxBuckets = 100
	// nativeZeroThreshold is client_golang's default zero threshold
	// (prometheus.DefNativeHistogramZeroThreshold, 2^-128).
	nativeZeroThreshold = 2.938735877055719e-39
)

// nativeBounds are the fractions (of math.Frexp) at which the buckets of
// schema 3 start within a power of two: 2^(i/8)/2. Schemas 1 and 2 use
// every fourth and every second of them.
var nativeBounds = [8]float64{
	0.5, 0.5452538663326288, 0.5946035575013605, 0.6484197773255048,
	0.7071067811865475, 0.7711054127039704, 0.8408964152537144, 0.9170040432046711,
}

// histogram is an origin's histogram series, such as its
// oxcross_leaf_probe_timings: classic buckets and a native histogram, the
// same numbers client_golang's histogram with a bucket factor of 1.1, at
// most 100 buckets and no resets reports after the same observations
// (TestHistogramMatchesClientGolang), in about a tenth of its memory. Its
// writer is the origin's probe loop, its readers the scrapes; a mutex
// makes each scrape see whole observations.
type histogram struct {
	mu     sync.Mutex
	schema int32
	count  uint64
	sum    float64
	zero   uint64
	// bounds are the classic buckets' upper bounds (+Inf left out);
	// classic counts the observations per classic bucket (not
	// cumulative), the last one +Inf's.
	bounds  []float64
	classic []uint64
	// pos and neg are the native buckets above and below the zero bucket.
	pos, neg nativeBuckets
}

// newHistogram returns a histogram with these classic buckets.
func newHistogram(bounds []float64) histogram {
	return histogram{schema: nativeSchema, bounds: bounds, classic: make([]uint64, len(bounds)+1)}
}

// nativeBuckets are sparse native buckets kept dense: counts[i] is the
// bucket with key first+i. Observations of one origin span a few powers of
// two, so a few dozen counts at most.
type nativeBuckets struct {
	first  int32
	counts []uint64
	// n is how many of counts are not zero: client_golang's number of
	// buckets.
	n int32
}

func (b *nativeBuckets) add(key int32, c uint64) {
	if len(b.counts) == 0 {
		b.first = key
		b.counts = append(b.counts[:0], 0)
	}
	switch {
	case key < b.first:
		grow := int(b.first - key)
		b.counts = slices.Insert(b.counts, 0, make([]uint64, grow)...)
		b.first = key
	case int(key-b.first) >= len(b.counts):
		b.counts = append(b.counts, make([]uint64, int(key-b.first)-len(b.counts)+1)...)
	}
	i := key - b.first
	if b.counts[i] == 0 {
		b.n++
	}
	b.counts[i] += c
}

// halve merges pairs of buckets: the keys of the schema one lower.
func (b *nativeBuckets) halve() {
	if b.n == 0 {
		return
	}
	old, first := b.counts, b.first
	*b = nativeBuckets{counts: make([]uint64, 0, len(old)/2+2)}
	for i, c := range old {
		if c != 0 {
			b.add(halfKey(first+int32(i)), c)
		}
	}
}

// halfKey is the key at schema−1 of the bucket with key k: ceil(k/2).
func halfKey(k int32) int32 {
	if k > 0 {
		k++
	}
	return k / 2
}

func (h *histogram) observe(v float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.classic[classicBucket(h.bounds, v)]++
	h.sum += v
	h.count++
	if math.IsNaN(v) {
		return
	}
	key := nativeKey(v, h.schema)
	switch {
	case v > nativeZeroThreshold:
		h.pos.add(key, 1)
	case v < -nativeZeroThreshold:
		h.neg.add(key, 1)
	default:
		h.zero++
	}
	if h.pos.n+h.neg.n > nativeMaxBuckets && h.schema > -4 {
		h.schema--
		h.pos.halve()
		h.neg.halve()
	}
}

// classicBucket is the index of v's classic bucket.
func classicBucket(bounds []float64, v float64) int {
	for i, b := range bounds {
		if v <= b {
			return i
		}
	}
	return len(bounds)
}

// nativeKey is the key of v's native bucket at schema, as client_golang
// computes it.
func nativeKey(v float64, schema int32) int32 {
	inf := math.IsInf(v, 0)
	if inf {
		v = math.Copysign(math.MaxFloat64, v)
	}
	frac, exp := math.Frexp(math.Abs(v))
	var key int
	if schema > 0 {
		stride := 1 << (nativeSchema - schema)
		n := len(nativeBounds) / stride
		i := 0
		for i < n && nativeBounds[i*stride] < frac {
			i++
		}
		key = i + (exp-1)*n
	} else {
		key = exp
		if frac == 0.5 {
			key--
		}
		offset := (1 << -schema) - 1
		key = (key + offset) >> -schema
	}
	if inf {
		key++
	}
	return int32(key)
}

// histSnapshot is a histogram's numbers at one moment, with the slices
// kept between scrapes.
type histSnapshot struct {
	schema      int32
	count, zero uint64
	sum         float64
	bounds      []float64
	cumulative  []uint64
	posSpans    []bucketSpan
	posDeltas   []int64
	negSpans    []bucketSpan
	negDeltas   []int64
}

type bucketSpan struct {
	offset int32
	length uint32
}

// snapshot copies h into s, reusing s's slices.
func (h *histogram) snapshot(s *histSnapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.schema, s.count, s.zero, s.sum, s.bounds = h.schema, h.count, h.zero, h.sum, h.bounds
	if cap(s.cumulative) < len(h.bounds) {
		s.cumulative = make([]uint64, 0, len(h.bounds))
	}
	s.cumulative = s.cumulative[:0]
	var cum uint64
	for _, c := range h.classic[:len(h.bounds)] {
		cum += c
		s.cumulative = append(s.cumulative, cum)
	}
	s.posSpans, s.posDeltas = h.pos.spans(s.posSpans[:0], s.posDeltas[:0])
	s.negSpans, s.negDeltas = h.neg.spans(s.negSpans[:0], s.negDeltas[:0])
}

// spans encodes the buckets as client_golang does: a new span after a gap
// of more than two empty buckets, the small gaps filled with empty ones,
// each count as its difference to the previous.
func (b *nativeBuckets) spans(spans []bucketSpan, deltas []int64) ([]bucketSpan, []int64) {
	var prev int64
	next := int32(0)
	first := true
	for i, c := range b.counts {
		if c == 0 {
			continue
		}
		key := b.first + int32(i)
		gap := key - next
		if first || gap > 2 {
			spans = append(spans, bucketSpan{offset: gap})
			first = false
		} else {
			for range gap {
				spans[len(spans)-1].length++
				deltas = append(deltas, -prev)
				prev = 0
			}
		}
		spans[len(spans)-1].length++
		deltas = append(deltas, int64(c)-prev)
		prev = int64(c)
		next = key + 1
	}
	return spans, deltas
}

// write fills out as client_golang's histogram fills it (but for the
// created timestamp).
func (s *histSnapshot) write(out *dto.Histogram) {
	out.SampleCount = new(s.count)
	out.SampleSum = new(s.sum)
	out.Bucket = make([]*dto.Bucket, len(s.bounds))
	for i, ub := range s.bounds {
		out.Bucket[i] = &dto.Bucket{CumulativeCount: new(s.cumulative[i]), UpperBound: new(ub)}
	}
	out.ZeroThreshold = new(float64(nativeZeroThreshold))
	out.Schema = new(s.schema)
	out.ZeroCount = new(s.zero)
	// The zero threshold is never 0, so client_golang adds no empty span
	// to a histogram without observations.
	out.NegativeSpan, out.NegativeDelta = dtoSpans(s.negSpans), cloneDeltas(s.negDeltas)
	out.PositiveSpan, out.PositiveDelta = dtoSpans(s.posSpans), cloneDeltas(s.posDeltas)
}

func cloneDeltas(d []int64) []int64 {
	if len(d) == 0 {
		return nil
	}
	return slices.Clone(d)
}

func dtoSpans(spans []bucketSpan) []*dto.BucketSpan {
	if len(spans) == 0 {
		return nil
	}
	out := make([]*dto.BucketSpan, len(spans))
	for i, s := range spans {
		out[i] = &dto.BucketSpan{Offset: new(s.offset), Length: new(s.length)}
	}
	return out
}
