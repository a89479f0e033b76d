package prober

import (
	"context"
	"fmt"
	"log/slog"
	"math"
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
	// minScrapeTimeout is the shortest timeout header taken, in seconds:
	// Prometheus' timeouts have milliseconds.
	minScrapeTimeout = 0.001
)

// DefaultProbeModule is /probe's module when the request names none.
const DefaultProbeModule = "simple"

// DefaultMaxConcurrentProbes is how many /probe requests probe at once
// unless the leaf is told otherwise (--probe.max-concurrent).
const DefaultMaxConcurrentProbes = 10

// Handler answers GET /probe?target=…&module=… in the style of
// blackbox_exporter: it probes the target once, now, and answers with that
// probe's metrics. Modules are the built-in ones and the config's.
//
// At most maxConcurrent requests probe at once; the others wait for a
// slot within their probe timeout and are then answered 503. A module that
// carries credentials or lists allowed_targets (config.Module.Restricted)
// probes only the targets of the config's origins that use it and those
// its allowed_targets match; other targets are answered 403.
type Handler struct {
	prober  *Prober
	logger  *slog.Logger
	current func() *config.Config
	base    *config.Config
	// slots holds a token for every probe in flight.
	slots chan struct{}
}

// NewHandler returns a /probe handler that resolves targets with the
// modules of the config current returns (the leaf's one copy of its
// config), or with the built-in modules while current returns nil. At most
// maxConcurrent probes (at least 1) run at once.
func NewHandler(p *Prober, current func() *config.Config, maxConcurrent int, logger *slog.Logger) *Handler {
	return &Handler{prober: p, logger: logger, current: current, base: p.kinds.Base(), slots: make(chan struct{}, max(maxConcurrent, 1))}
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
	if err := allowedTarget(cfg, &t, &m); err != nil {
		h.logger.Debug("Probe refused", "module", module, "err", err)
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	// The timeout covers the wait for a slot and the probe, so that the
	// answer reaches the scraper in time either way.
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	case <-ctx.Done():
		if r.Context().Err() == nil {
			http.Error(w, fmt.Sprintf("too many concurrent probes (--probe.max-concurrent=%d): no probe slot came free within the probe's timeout of %s", cap(h.slots), timeout), http.StatusServiceUnavailable)
		}
		return
	}
	res := h.prober.Probe(ctx, &t, &m, nil)
	if !res.Success {
		h.logger.Debug("Probe failed", "target", config.RedactURL(q.Get("target")), "module", module, "reason", res.Reason, "err", res.Err)
	}
	reg := prometheus.NewRegistry()
	probeMetrics(reg, m.Kind, res)
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// allowedTarget refuses a restricted module's target (t, resolved, with
// module m) unless it is the target of one of cfg's origins that use the
// module or one of the module's allowed_targets matches it, so that
// /probe never hands a module's secrets to a host of the caller's choosing.
func allowedTarget(cfg *config.Config, t *config.Target, m *config.Module) error {
	if !m.Restricted() {
		return nil
	}
	for i := range cfg.Origins {
		o := &cfg.Origins[i]
		if o.Module == t.Module && o.URL == t.URL && o.Address == t.Address {
			return nil
		}
	}
	target := t.URL
	if target == "" {
		target = t.Address
	}
	if m.AllowsTarget(target) {
		return nil
	}
	why := "lists allowed_targets"
	if m.CarriesCredentials() {
		why = "carries credentials"
	}
	return fmt.Errorf("module %s %s: it probes only the targets of the config's origins that use it and those its allowed_targets match, and %q is neither", t.Module, why, target)
}

// scrapeTimeout is the probe's timeout for a scraper's timeout header: a
// finite number of seconds, at least a millisecond.
func scrapeTimeout(header string) (time.Duration, error) {
	if header == "" {
		return DefaultProbeTimeout, nil
	}
	secs, err := strconv.ParseFloat(header, 64)
	if err != nil || math.IsNaN(secs) || math.IsInf(secs, 0) || secs < minScrapeTimeout {
		return 0, fmt.Errorf("X-Prometheus-Scrape-Timeout-Seconds: %q is not a finite number of seconds of at least %g", header, minScrapeTimeout)
	}
	// Capped before the conversion, which would overflow for 1e308.
	d := time.Duration(min(secs, (maxProbeTimeout+probeTimeoutOffset).Seconds()) * float64(time.Second))
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
	if t := r.Train; t != nil {
		setGauge(reg, "probe_oxcross_packets_sent", "Packets of the probe's train (icmp, tcp).", float64(t.Sent))
		setGauge(reg, "probe_oxcross_packets_received", "Packets of the probe's train that were answered.", float64(t.Received))
		setGauge(reg, "probe_oxcross_packet_loss_ratio", "Ratio of the train's packets left unanswered, 0 to 1.", t.Loss())
		spread := math.NaN()
		if _, lo, hi, ok := t.Stats(); ok {
			spread = (hi - lo).Seconds()
		}
		setGauge(reg, "probe_oxcross_packet_rtt_spread_seconds", "Slowest minus fastest round trip of the train's answered packets, in seconds; NaN for none.", spread)
	}
	if r.DNS != nil {
		dnsProbeMetrics(reg, r.DNS)
	}
	if r.Drift != nil {
		setGauge(reg, "probe_oxcross_time_drift_seconds", "Estimated clock offset of the origin minus the leaf, in seconds.", r.Drift.Offset.Seconds())
		setGauge(reg, "probe_oxcross_time_drift_uncertainty_seconds", "Bound on the error of the drift estimate, in seconds.", r.Drift.Uncertainty.Seconds())
	}
}
