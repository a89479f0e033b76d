package prober

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/oxcross/oxcross/config"
)

// Timeouts of /probe.
const (
	// DefaultProbeTimeout applies when the scraper sends no
	// X-Prometheus-Scrape-Timeout-Seconds.
	DefaultProbeTimeout = 10 * time.Second
	// probeTimeoutOffset leaves the scraper time to receive the answer.
	probeTimeoutOffset = 500 * time.Millisecond
	maxProbeTimeout    = 2 * time.Minute
)

// DefaultProbeModule is /probe's module when the request names none.
const DefaultProbeModule = "simple"

// Handler answers GET /probe?target=…&module=… in the style of
// blackbox_exporter: it probes the target once, now, and answers with that
// probe's metrics. Modules are the built-in ones and the config's.
type Handler struct {
	prober  *Prober
	logger  *slog.Logger
	current func() *config.Config
	base    *config.Config
}

// NewHandler returns a /probe handler that resolves targets with the
// modules of the config current returns (the leaf's one copy of its
// config), or with the built-in modules while current returns nil.
func NewHandler(p *Prober, current func() *config.Config, logger *slog.Logger) *Handler {
	return &Handler{prober: p, logger: logger, current: current, base: p.kinds.Base()}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	module := q.Get("module")
	if module == "" {
		module = DefaultProbeModule
	}
	timeout, err := scrapeTimeout(r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cfg := h.current()
	if cfg == nil {
		cfg = h.base
	}
	t, m, err := cfg.ProbeTarget(q.Get("target"), module, timeout)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	res := h.prober.Probe(ctx, &t, &m, nil)
	if !res.Success {
		h.logger.Debug("Probe failed", "target", q.Get("target"), "module", module, "reason", res.Reason, "err", res.Err)
	}
	reg := prometheus.NewRegistry()
	probeMetrics(reg, m.Kind, res)
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// scrapeTimeout is the probe's timeout for a scraper's timeout header.
func scrapeTimeout(header string) (time.Duration, error) {
	if header == "" {
		return DefaultProbeTimeout, nil
	}
	secs, err := strconv.ParseFloat(header, 64)
	if err != nil || secs <= 0 {
		return 0, fmt.Errorf("X-Prometheus-Scrape-Timeout-Seconds: %q is not a positive number", header)
	}
	d := time.Duration(secs * float64(time.Second))
	// Leave the scraper time to receive the answer: half a second, or half
	// of a timeout shorter than a second.
	if d > probeTimeoutOffset*2 {
		d -= probeTimeoutOffset
	} else {
		d /= 2
	}
	return min(d, maxProbeTimeout), nil
}

func setGauge(reg *prometheus.Registry, name, help string, v float64) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	g.Set(v)
	reg.MustRegister(g)
}

// probeMetrics registers one probe's result on reg, with blackbox_exporter's
// names where it has them.
func probeMetrics(reg *prometheus.Registry, kind string, r Result) {
	success := 0.0
	if r.Success {
		success = 1
	}
	setGauge(reg, "probe_success", "Whether the probe succeeded.", success)
	setGauge(reg, "probe_duration_seconds", "How long the probe took, in seconds.", r.Duration.Seconds())
	reason := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "probe_oxcross_reason", Help: "The probe's result reason (ok, or why it failed; a fixed set)."}, []string{"reason"})
	reason.WithLabelValues(string(r.Reason)).Set(1)
	reg.MustRegister(reason)

	// Kinds that speak HTTP report blackbox_exporter's http prober's names.
	prefix := kind
	if r.HTTP {
		prefix = "http"
	}
	phases := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "probe_" + prefix + "_duration_seconds",
		Help: "Duration of each phase of the probe, in seconds.",
	}, []string{"phase"})
	for p := range numPhases {
		if d, ok := r.Phases.Get(p); ok {
			phases.WithLabelValues(p.String()).Set(d.Seconds())
		}
	}
	reg.MustRegister(phases)
	if r.HTTP {
		setGauge(reg, "probe_http_status_code", "Response HTTP status code, 0 without a response.", float64(r.StatusCode))
		setGauge(reg, "probe_http_version", "Response HTTP version, 0 without a response.", r.HTTPVersion)
	}
	if !r.TLSExpiry.IsZero() {
		setGauge(reg, "probe_ssl_earliest_cert_expiry", "Earliest expiry of the certificates the target sent, as a Unix timestamp.", float64(r.TLSExpiry.Unix()))
	}
	if r.Drift != nil {
		setGauge(reg, "probe_oxcross_time_drift_seconds", "Estimated clock offset of the origin minus the leaf, in seconds.", r.Drift.Offset.Seconds())
		setGauge(reg, "probe_oxcross_time_drift_uncertainty_seconds", "Bound on the error of the drift estimate, in seconds.", r.Drift.Uncertainty.Seconds())
	}
}
