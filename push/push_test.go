package push

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/exp/api/remote"
	writev2 "github.com/prometheus/client_golang/exp/api/remote/genproto/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/oxcross/oxcross/internal/testutil"
)

// received is one request as the receiver saw it.
type received struct {
	at     time.Time
	status int
	bytes  int
	// series maps each series (labels as a string) to its samples; a
	// native histogram sample is recorded by its count, its stale marker
	// by the stale NaN.
	series map[string][]prompb.Sample
	hists  map[string][]prompb.Histogram
	types  map[string]writev2.Metadata_MetricType
}

// receiver is a real remote-write server: it answers the statuses of its
// script in turn (with Retry-After when set), then 204, and decodes
// every request with the exp module's write handler.
type receiver struct {
	mu         sync.Mutex
	script     []int
	retryAfter string
	reqs       []received
	url        string
	handler    http.Handler
}

func newReceiver(t *testing.T, types ...remote.WriteMessageType) *receiver {
	t.Helper()
	if len(types) == 0 {
		types = []remote.WriteMessageType{remote.WriteV1MessageType}
	}
	r := &receiver{}
	r.handler = remote.NewWriteHandler(r, types)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		status := 0
		if len(r.script) > 0 {
			status, r.script = r.script[0], r.script[1:]
		}
		r.mu.Unlock()
		if status != 0 {
			body, _ := io.ReadAll(req.Body)
			r.record(received{at: time.Now(), status: status, bytes: len(body)})
			if r.retryAfter != "" {
				w.Header().Set("Retry-After", r.retryAfter)
			}
			http.Error(w, http.StatusText(status), status)
			return
		}
		r.handler.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/api/v1/write"
	return r
}

func (r *receiver) record(x received) {
	r.mu.Lock()
	r.reqs = append(r.reqs, x)
	r.mu.Unlock()
}

func (r *receiver) setScript(retryAfter string, statuses ...int) {
	r.mu.Lock()
	r.script, r.retryAfter = statuses, retryAfter
	r.mu.Unlock()
}

// failNext makes the receiver answer its next n requests with 503 (no
// Retry-After).
func (r *receiver) failNext(n int) {
	statuses := make([]int, n)
	for i := range statuses {
		statuses[i] = http.StatusServiceUnavailable
	}
	r.setScript("", statuses...)
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

func labelString(ls []prompb.Label) string {
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "%s=%q,", l.Name, l.Value)
	}
	return b.String()
}

// Store decodes a 1.0 or 2.0 request.
func (r *receiver) Store(req *http.Request, msgType remote.WriteMessageType) (*remote.WriteResponse, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	x := received{at: time.Now(), status: http.StatusNoContent, series: map[string][]prompb.Sample{},
		hists: map[string][]prompb.Histogram{}, types: map[string]writev2.Metadata_MetricType{}}
	resp := remote.NewWriteResponse()
	if msgType == remote.WriteV2MessageType {
		var w writev2.Request
		if err := w.UnmarshalVT(body); err != nil {
			return nil, err
		}
		for _, ts := range w.Timeseries {
			var ls []prompb.Label
			for i := 0; i < len(ts.LabelsRefs); i += 2 {
				ls = append(ls, prompb.Label{Name: w.Symbols[ts.LabelsRefs[i]], Value: w.Symbols[ts.LabelsRefs[i+1]]})
			}
			k := labelString(ls)
			for _, s := range ts.Samples {
				x.series[k] = append(x.series[k], prompb.Sample{Value: s.Value, Timestamp: s.Timestamp})
			}
			for _, h := range ts.Histograms {
				x.hists[k] = append(x.hists[k], prompb.Histogram{Sum: h.Sum, Schema: h.Schema, Timestamp: h.Timestamp})
			}
			x.types[k] = ts.GetMetadata().GetType()
			resp.Samples += len(ts.Samples)
			resp.Histograms += len(ts.Histograms)
		}
	} else {
		var w prompb.WriteRequest
		if err := w.Unmarshal(body); err != nil {
			return nil, err
		}
		for _, ts := range w.Timeseries {
			k := labelString(ts.Labels)
			x.series[k] = append(x.series[k], ts.Samples...)
			x.hists[k] = append(x.hists[k], ts.Histograms...)
		}
	}
	r.record(x)
	return resp, nil
}

// source is a registry with a counter, a gauge per origin and a histogram
// with native buckets, as the leaf's.
type source struct {
	reg     *prometheus.Registry
	counter prometheus.Counter
	gauge   *prometheus.GaugeVec
	hist    prometheus.Histogram
}

func newSource() *source {
	s := &source{reg: prometheus.NewRegistry()}
	s.counter = prometheus.NewCounter(prometheus.CounterOpts{Name: "test_total", Help: "A counter."})
	s.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_drift", Help: "A gauge."}, []string{"origin_id"})
	s.hist = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "test_seconds", Help: "A histogram.",
		Buckets: []float64{.1, 1}, NativeHistogramBucketFactor: 1.1})
	s.reg.MustRegister(s.counter, s.gauge, s.hist)
	s.counter.Add(3)
	s.gauge.WithLabelValues("a").Set(0.5)
	s.gauge.WithLabelValues("b").Set(-0.25)
	s.hist.Observe(0.05)
	s.hist.Observe(0.5)
	return s
}

// samplesPerGather: counter 1, gauges 2, native histogram 1, classic
// buckets 3 (.1, 1, +Inf), _sum, _count.
const samplesPerGather = 1 + 2 + 1 + 3 + 2

// start runs a pusher until the test ends; stop ends it and waits.
func start(t *testing.T, o Options) (p *Pusher, reg *prometheus.Registry, stop func()) {
	t.Helper()
	reg = prometheus.NewRegistry()
	o.Registerer = reg
	if o.MinBackoff == 0 {
		o.MinBackoff, o.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return p, reg, stop
}

func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	v, _ := testutil.LookupMetric(t, reg, "oxcross_leaf_push_"+name, labels...)
	return v
}

// TestRetryPolicy: 429 is retried after its Retry-After, 503 with
// backoff, and 400 never.
func TestRetryPolicy(t *testing.T) {
	t.Run("429 waits for Retry-After", func(t *testing.T) {
		r := newReceiver(t)
		r.setScript("1", http.StatusTooManyRequests)
		_, reg, _ := start(t, Options{URLs: []string{r.url}, Gatherer: newSource().reg, Interval: time.Hour})
		testutil.Eventually(t, 20*time.Second, "delivered after the 429", func() bool {
			return metric(t, reg, "samples_sent_total") == samplesPerGather
		})
		reqs := r.requests()
		if len(reqs) != 2 || reqs[0].status != 429 || reqs[1].status != 204 {
			t.Fatalf("want a 429 then a 204, got %d requests: %+v", len(reqs), reqs)
		}
		if gap := reqs[1].at.Sub(reqs[0].at); gap < time.Second {
			t.Errorf("retried %v after the 429, before its Retry-After of 1s", gap)
		}
		if reqs[0].bytes == 0 {
			t.Error("the 429'd request had no body")
		}
		if got := metric(t, reg, "samples_retried_total"); got != samplesPerGather {
			t.Errorf("samples_retried_total = %v, want %d", got, samplesPerGather)
		}
		if got := metric(t, reg, "samples_failed_total"); got != 0 {
			t.Errorf("samples_failed_total = %v, want 0", got)
		}
	})
	t.Run("503 retried with backoff", func(t *testing.T) {
		r := newReceiver(t)
		r.setScript("", http.StatusServiceUnavailable, http.StatusServiceUnavailable)
		_, reg, _ := start(t, Options{URLs: []string{r.url}, Gatherer: newSource().reg, Interval: time.Hour})
		testutil.Eventually(t, 20*time.Second, "delivered after two 503s", func() bool {
			return metric(t, reg, "samples_sent_total") == samplesPerGather
		})
		reqs := r.requests()
		if len(reqs) != 3 || reqs[2].status != 204 {
			t.Fatalf("want 503, 503, 204, got %+v", reqs)
		}
		if reqs[0].bytes != reqs[1].bytes {
			t.Errorf("the retry's body has %d bytes, the first's %d: not the same request", reqs[1].bytes, reqs[0].bytes)
		}
		if got := metric(t, reg, "samples_retried_total"); got != 2*samplesPerGather {
			t.Errorf("samples_retried_total = %v, want %d", got, 2*samplesPerGather)
		}
		if ts := metric(t, reg, "last_success_timestamp_seconds"); ts < float64(reqs[0].at.Unix()) {
			t.Errorf("last success %v, before the first request", ts)
		}
	})
	t.Run("400 not retried", func(t *testing.T) {
		r := newReceiver(t)
		r.setScript("", http.StatusBadRequest)
		p, reg, stop := start(t, Options{URLs: []string{r.url}, Gatherer: newSource().reg, Interval: time.Hour})
		testutil.Eventually(t, 20*time.Second, "the 400 counted as failed", func() bool {
			return metric(t, reg, "samples_failed_total") == samplesPerGather
		})
		if st := p.Status()[0]; !st.Failing || !strings.Contains(st.LastError, "400") {
			t.Errorf("status after a 400: %+v", st)
		}
		// Stopping sends the stale markers: the request after the 400 is
		// theirs, not a retry of the refused samples.
		stop()
		reqs := r.requests()
		if len(reqs) != 2 || reqs[0].status != 400 || reqs[1].status != 204 {
			t.Fatalf("want a 400 then the stale markers' 204, got %+v", reqs)
		}
		for k, ss := range reqs[1].series {
			for _, s := range ss {
				if !value.IsStaleNaN(s.Value) {
					t.Errorf("after the 400, %s got %v: the refused samples were sent again", k, s.Value)
				}
			}
		}
		if got := metric(t, reg, "samples_retried_total"); got != 0 {
			t.Errorf("samples_retried_total = %v after a 400, want 0", got)
		}
		if got := metric(t, reg, "samples_sent_total"); got != samplesPerGather {
			t.Errorf("samples_sent_total = %v, want %d stale markers", got, samplesPerGather)
		}
	})
}

// TestQueueBound: while the receiver fails, the queue keeps its newest
// samples up to its bound and counts the rest as dropped; when it is
// back, what the queue held arrives in time order.
func TestQueueBound(t *testing.T) {
	r := newReceiver(t)
	r.failNext(1000)
	const bound = 2 * samplesPerGather
	p, reg, stop := start(t, Options{URLs: []string{r.url}, Gatherer: newSource().reg, Interval: 100 * time.Millisecond,
		QueueMaxSamples: bound, MaxPerRequest: samplesPerGather})
	testutil.Eventually(t, 20*time.Second, "drops counted", func() bool {
		return metric(t, reg, "samples_dropped_total", "reason", ReasonQueueFull) >= 3*samplesPerGather
	})
	if q := metric(t, reg, "queue_samples"); q > bound {
		t.Errorf("queue holds %v samples, over its bound %d", q, bound)
	}
	if st := p.Status()[0]; !st.Failing || st.Dropped[ReasonQueueFull] == 0 || st.Sent != 0 {
		t.Errorf("status while failing: %+v", st)
	}
	r.setScript("")
	testutil.Eventually(t, 20*time.Second, "delivered after recovery", func() bool {
		return metric(t, reg, "samples_sent_total") >= 3*samplesPerGather
	})
	stop()
	last := map[string]int64{}
	for _, req := range r.requests() {
		for k, ss := range req.series {
			for _, s := range ss {
				if s.Timestamp <= last[k] {
					t.Fatalf("%s: sample at %d after one at %d", k, s.Timestamp, last[k])
				}
				last[k] = s.Timestamp
			}
		}
	}
	sent, dropped := metric(t, reg, "samples_sent_total"), metric(t, reg, "samples_dropped_total", "reason", ReasonQueueFull)
	t.Logf("sent %v, dropped (queue_full) %v, dropped (shutdown) %v", sent, dropped, metric(t, reg, "samples_dropped_total", "reason", ReasonShutdown))
}

// TestStaleness: a series that leaves the gatherer gets a stale marker
// in the next push and no sample after; at shutdown every series gets
// one, a native histogram as a histogram whose sum is the stale NaN.
// External labels are on every series, the metric's own label winning.
func TestStaleness(t *testing.T) {
	r := newReceiver(t)
	src := newSource()
	_, reg, stop := start(t, Options{URLs: []string{r.url}, Gatherer: src.reg, Interval: 100 * time.Millisecond,
		ExternalLabels: map[string]string{"leaf_id": "l1", "origin_id": "external"}})
	b := `__name__="test_drift",leaf_id="l1",origin_id="b",`
	testutil.Eventually(t, 20*time.Second, "b pushed", func() bool {
		for _, req := range r.requests() {
			if len(req.series[b]) > 0 {
				return true
			}
		}
		return false
	})
	src.gauge.DeleteLabelValues("b")
	var staleAt int
	testutil.Eventually(t, 20*time.Second, "b's stale marker", func() bool {
		for i, req := range r.requests() {
			if ss := req.series[b]; len(ss) > 0 && value.IsStaleNaN(ss[len(ss)-1].Value) {
				staleAt = i
				return true
			}
		}
		return false
	})
	testutil.Eventually(t, 20*time.Second, "two pushes after the stale marker", func() bool {
		return len(r.requests()) > staleAt+2
	})
	stop()
	reqs := r.requests()
	for _, req := range reqs[staleAt+1:] {
		if len(req.series[b]) > 0 {
			t.Errorf("b pushed after its stale marker: %v", req.series[b])
		}
	}
	final := reqs[len(reqs)-1]
	a := `__name__="test_drift",leaf_id="l1",origin_id="a",`
	native := `__name__="test_seconds",leaf_id="l1",origin_id="external",`
	if ss := final.series[a]; len(ss) != 1 || !value.IsStaleNaN(ss[0].Value) {
		t.Errorf("at shutdown a got %v, want its stale marker", ss)
	}
	if hs := final.hists[native]; len(hs) != 1 || !value.IsStaleNaN(hs[0].Sum) {
		t.Errorf("at shutdown the native histogram got %v, want a stale histogram", hs)
	}
	// Earlier, the native histogram carried its buckets, and the classic
	// buckets came as series of their own.
	var sawNative, sawClassic bool
	for _, req := range reqs {
		for _, h := range req.hists[native] {
			if h.Schema != 0 || len(h.PositiveSpans) > 0 {
				sawNative = h.GetCountInt() == 2 && h.Sum == 0.55
			}
		}
		if ss := req.series[`__name__="test_seconds_bucket",le="0.1",leaf_id="l1",origin_id="external",`]; len(ss) > 0 && ss[0].Value == 1 {
			sawClassic = true
		}
	}
	if !sawNative || !sawClassic {
		t.Errorf("native histogram pushed: %v; classic buckets pushed: %v", sawNative, sawClassic)
	}
	if got := metric(t, reg, "samples_dropped_total", "reason", ReasonShutdown); got != 0 {
		t.Errorf("%v samples dropped at shutdown with the receiver up", got)
	}
}

// TestShutdownDeadline: with the receiver down, stopping takes the flush
// timeout and counts what was left as dropped at shutdown.
func TestShutdownDeadline(t *testing.T) {
	r := newReceiver(t)
	r.failNext(10000)
	_, reg, stop := start(t, Options{URLs: []string{r.url}, Gatherer: newSource().reg, Interval: time.Hour, FlushTimeout: 200 * time.Millisecond})
	testutil.Eventually(t, 20*time.Second, "retrying", func() bool { return metric(t, reg, "samples_retried_total") > 0 })
	began := time.Now()
	stop()
	if took := time.Since(began); took < 200*time.Millisecond {
		t.Errorf("stopped in %v, before the flush timeout", took)
	}
	if got := metric(t, reg, "samples_dropped_total", "reason", ReasonShutdown); got != 2*samplesPerGather {
		t.Errorf("dropped at shutdown: %v, want the batch and its stale markers, %d", got, 2*samplesPerGather)
	}
}

// TestProtocol2: --push.protocol=2.0 sends io.prometheus.write.v2.Request
// with the series' types, to a receiver that accepts nothing else.
func TestProtocol2(t *testing.T) {
	r := newReceiver(t, remote.WriteV2MessageType)
	_, reg, _ := start(t, Options{URLs: []string{r.url}, Gatherer: newSource().reg, Interval: time.Hour, Protocol: Protocol2,
		ExternalLabels: map[string]string{"leaf_id": "l2"}})
	testutil.Eventually(t, 20*time.Second, "delivered", func() bool {
		return metric(t, reg, "samples_sent_total") == samplesPerGather
	})
	req := r.requests()[0]
	k := `__name__="test_total",leaf_id="l2",`
	if ss := req.series[k]; len(ss) != 1 || ss[0].Value != 3 || req.types[k] != writev2.Metadata_METRIC_TYPE_COUNTER {
		t.Errorf("counter: %v of type %v", ss, req.types[k])
	}
	if hs := req.hists[`__name__="test_seconds",leaf_id="l2",`]; len(hs) != 1 || hs[0].Sum != 0.55 {
		t.Errorf("native histogram: %v", hs)
	}
}

func TestNewRefuses(t *testing.T) {
	g := prometheus.NewRegistry()
	for name, o := range map[string]Options{
		"no URL":                     {Gatherer: g},
		"bad scheme":                 {URLs: []string{"ftp://x/api/v1/write"}, Gatherer: g},
		"no host":                    {URLs: []string{"http:///api/v1/write"}, Gatherer: g},
		"twice":                      {URLs: []string{"http://x/w", "http://x/w"}, Gatherer: g},
		"protocol":                   {URLs: []string{"http://x/w"}, Gatherer: g, Protocol: "3.0"},
		"queue":                      {URLs: []string{"http://x/w"}, Gatherer: g, QueueMaxSamples: -1},
		"interval":                   {URLs: []string{"http://x/w"}, Gatherer: g, Interval: time.Millisecond},
		"label name":                 {URLs: []string{"http://x/w"}, Gatherer: g, ExternalLabels: map[string]string{"bad-name": "x"}},
		"password hidden":            {URLs: []string{"ftp://u:secret@x/w"}, Gatherer: g},
		"twice but for the password": {URLs: []string{"http://u:secret@x/w", "http://u:other@x/w"}, Gatherer: g},
	} {
		_, err := New(o)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
}

// TestFormatFloat: le and quantile values as the text format writes them.
func TestFormatFloat(t *testing.T) {
	for f, want := range map[float64]string{0.1: "0.1", 1: "1", 2.5e-05: "2.5e-05", math.Inf(1): "+Inf", 10: "10"} {
		if got := formatFloat(f); got != want {
			t.Errorf("formatFloat(%v) = %s, want %s", f, got, want)
		}
	}
}

// TestExternalLabels: job defaults to oxcross-leaf, --leaf.label labels
// come along, --push.label overrides both, and leaf_id is always the
// leaf's id.
func TestExternalLabels(t *testing.T) {
	got, err := ExternalLabels("l1", map[string]string{"region": "eu", "tier": "a"}, []string{"tier=b", "cluster=c1", "job=edge", "empty="})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"job": "edge", "region": "eu", "tier": "b", "cluster": "c1", "empty": "", "leaf_id": "l1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, _ := ExternalLabels("l1", nil, nil); fmt.Sprint(got) != fmt.Sprint(map[string]string{"job": DefaultJob, "leaf_id": "l1"}) {
		t.Errorf("defaults: %v", got)
	}
	for _, bad := range []string{"leaf_id=x", "origin_id=x", "noequals", "bad-name=x", "__name__=x", "9x=y"} {
		if _, err := ExternalLabels("l1", nil, []string{bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("--push.label %s: %v, want an error naming it", bad, err)
		}
	}
}

// TestWireSize pushes the same gathered samples, the Go runtime's and
// process metrics among them, by 1.0 and by 2.0 and logs the bytes per
// sample each put on the wire (snappy-compressed bodies).
func TestWireSize(t *testing.T) {
	src := newSource()
	src.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, proto := range []string{Protocol1, Protocol2} {
		typ := remote.WriteV1MessageType
		if proto == Protocol2 {
			typ = remote.WriteV2MessageType
		}
		r := newReceiver(t, typ)
		_, reg, stop := start(t, Options{URLs: []string{r.url}, Gatherer: src.reg, Interval: time.Hour, Protocol: proto})
		testutil.Eventually(t, 20*time.Second, proto+" delivered", func() bool { return metric(t, reg, "samples_sent_total") > 0 })
		stop()
		sent, bytes := metric(t, reg, "samples_sent_total"), metric(t, reg, "sent_bytes_total")
		if bytes == 0 || sent == 0 {
			t.Fatalf("%s: %v bytes for %v samples", proto, bytes, sent)
		}
		t.Logf("remote write %s: %v samples in %d requests, %v bytes: %.2f bytes per sample", proto, sent, len(r.requests()), bytes, bytes/sent)
	}
}
