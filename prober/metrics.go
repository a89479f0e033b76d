package prober

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metric label names.
const (
	labelOrigin = "origin_id"
	labelSource = "source_id"
	labelResult = "result"
	labelReason = "reason"
	labelPhase  = "phase"
)

// TimingBuckets are the classic buckets of oxcross_leaf_probe_timings, in
// seconds: from 5 ms to 10 s, which spans internet round trips.
var TimingBuckets = []float64{.005, .01, .025, .05, .075, .1, .15, .2, .3, .4, .5, .75, 1, 1.5, 2, 3, 5, 10}

// Metrics are the leaf's probe metrics. One Metrics serves every origin.
type Metrics struct {
	timings     *prometheus.HistogramVec
	results     *prometheus.CounterVec
	status      *prometheus.GaugeVec
	drift       *prometheus.GaugeVec
	uncertainty *prometheus.GaugeVec
	duration    *prometheus.GaugeVec
	phase       *prometheus.GaugeVec
	statusCode  *prometheus.GaugeVec
	httpVersion *prometheus.GaugeVec
	tlsExpiry   *prometheus.GaugeVec
	skipped     *prometheus.CounterVec
	startLag    prometheus.Histogram
}

// StartLagBuckets are the buckets of oxcross_leaf_probe_start_lag_seconds:
// from 100µs (a timer firing on time) to 10 s (a slot's worth of waiting
// for a free probe slot at long intervals).
var StartLagBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics creates the probe metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	ol := []string{labelOrigin, labelSource}
	m := &Metrics{
		timings: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "oxcross_leaf_probe_timings",
			Help:                            "Round-trip time of successful probes, from the start of the request to the end of the response body, in seconds.",
			Buckets:                         TimingBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: 0,
		}, ol),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oxcross_leaf_probe_results",
			Help: "Probes by result (\"true\" or \"false\") and reason (\"ok\" or a failure reason from a fixed set).",
		}, []string{labelOrigin, labelSource, labelResult, labelReason}),
		status: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "oxcross_leaf_origin_status",
			Help: "1 if the last probe of the origin succeeded, 0 otherwise.",
		}, ol),
		drift: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "oxcross_leaf_origin_time_drift",
			Help: "Estimated clock offset of the origin minus the leaf, in seconds, from the last successful advanced-mode probe.",
		}, ol),
		uncertainty: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "oxcross_leaf_origin_time_drift_uncertainty_seconds",
			Help: "Bound on the error of oxcross_leaf_origin_time_drift: half the round trip the origin did not spend, in seconds.",
		}, ol),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "oxcross_leaf_probe_duration_seconds",
			Help: "Duration of the last probe of the origin, successful or not, in seconds.",
		}, ol),
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "oxcross_leaf_probe_phase_seconds",
			Help: "Duration of each phase of the last probe of the origin, in seconds: resolve, connect, tls, processing (request written to first byte), transfer (first byte to end of body).",
		}, []string{labelOrigin, labelSource, labelPhase}),
		statusCode: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "oxcross_leaf_probe_http_status_code",
			Help: "HTTP status code of the last probe's response, 0 if there was none.",
		}, ol),
		httpVersion: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "oxcross_leaf_probe_http_version",
			Help: "HTTP version of the last probe's response (1.1, 2), 0 if there was none.",
		}, ol),
		tlsExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "oxcross_leaf_probe_tls_cert_expiry_timestamp_seconds",
			Help: "Earliest expiry of the certificates the origin sent in the last TLS handshake, as a Unix timestamp.",
		}, ol),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oxcross_leaf_probe_skipped_total",
			Help: "Probe slots skipped because the previous probe was still running or no probe slot (--probe.max-concurrency) was free in time.",
		}, ol),
		startLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:                            "oxcross_leaf_probe_start_lag_seconds",
			Help:                            "How late probes start after their scheduled slot, in seconds: timer delay plus the wait for a free probe slot (--probe.max-concurrency). One series for the whole leaf.",
			Buckets:                         StartLagBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: 0,
		}),
	}
	reg.MustRegister(m.timings, m.results, m.status, m.drift, m.uncertainty, m.duration, m.phase, m.statusCode, m.httpVersion, m.tlsExpiry, m.skipped, m.startLag)
	return m
}

// originMetrics holds one origin's series, looked up once so that recording
// a probe does no label lookups.
type originMetrics struct {
	parent       *Metrics
	id, source   string
	timings      prometheus.Observer
	status       prometheus.Gauge
	drift        prometheus.Gauge
	uncertainty  prometheus.Gauge
	duration     prometheus.Gauge
	phases       [numPhases]prometheus.Gauge
	statusCode   prometheus.Gauge
	httpVersion  prometheus.Gauge
	tlsExpiry    prometheus.Gauge
	skipped      prometheus.Counter
	success      prometheus.Counter
	failures     map[Reason]prometheus.Counter
	driftCreated bool
}

func (m *Metrics) forOrigin(id, source string) *originMetrics {
	om := &originMetrics{
		parent:   m,
		id:       id,
		source:   source,
		timings:  m.timings.WithLabelValues(id, source),
		skipped:  m.skipped.WithLabelValues(id, source),
		success:  m.results.WithLabelValues(id, source, "true", string(ReasonOK)),
		failures: make(map[Reason]prometheus.Counter, len(failureReasons)),
	}
	for _, r := range failureReasons {
		// Created lazily on first use would hide a reason until it happens;
		// creating them all at zero lets rate() see the first failure.
		om.failures[r] = m.results.WithLabelValues(id, source, "false", string(r))
	}
	return om
}

// record updates the origin's series with one probe's result. The gauges
// are created at the first result, so that an origin not yet probed has no
// status rather than a status of 0.
func (om *originMetrics) record(r Result) {
	if om.status == nil {
		om.status = om.parent.status.WithLabelValues(om.id, om.source)
		om.duration = om.parent.duration.WithLabelValues(om.id, om.source)
	}
	om.duration.Set(r.Duration.Seconds())
	for p := range numPhases {
		d, ok := r.Phases.Get(p)
		if !ok {
			continue
		}
		if om.phases[p] == nil {
			om.phases[p] = om.parent.phase.WithLabelValues(om.id, om.source, p.String())
		}
		om.phases[p].Set(d.Seconds())
	}
	if r.StatusCode != 0 || om.statusCode != nil {
		if om.statusCode == nil {
			om.statusCode = om.parent.statusCode.WithLabelValues(om.id, om.source)
			om.httpVersion = om.parent.httpVersion.WithLabelValues(om.id, om.source)
		}
		om.statusCode.Set(float64(r.StatusCode))
		om.httpVersion.Set(r.HTTPVersion)
	}
	if !r.TLSExpiry.IsZero() {
		if om.tlsExpiry == nil {
			om.tlsExpiry = om.parent.tlsExpiry.WithLabelValues(om.id, om.source)
		}
		om.tlsExpiry.Set(float64(r.TLSExpiry.Unix()))
	}
	if !r.Success {
		om.status.Set(0)
		om.failures[r.Reason].Inc()
		return
	}
	om.status.Set(1)
	om.success.Inc()
	om.timings.Observe(r.Duration.Seconds())
	if r.Drift != nil {
		if !om.driftCreated {
			om.drift = om.parent.drift.WithLabelValues(om.id, om.source)
			om.uncertainty = om.parent.uncertainty.WithLabelValues(om.id, om.source)
			om.driftCreated = true
		}
		om.drift.Set(r.Drift.Offset.Seconds())
		om.uncertainty.Set(r.Drift.Uncertainty.Seconds())
	}
}

// delete removes every series of the origin.
func (om *originMetrics) delete() {
	l := prometheus.Labels{labelOrigin: om.id, labelSource: om.source}
	om.parent.timings.DeletePartialMatch(l)
	om.parent.results.DeletePartialMatch(l)
	om.parent.status.DeletePartialMatch(l)
	om.parent.drift.DeletePartialMatch(l)
	om.parent.uncertainty.DeletePartialMatch(l)
	om.parent.duration.DeletePartialMatch(l)
	om.parent.phase.DeletePartialMatch(l)
	om.parent.statusCode.DeletePartialMatch(l)
	om.parent.httpVersion.DeletePartialMatch(l)
	om.parent.tlsExpiry.DeletePartialMatch(l)
	om.parent.skipped.DeletePartialMatch(l)
}
