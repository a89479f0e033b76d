package prober

import "time"

// Reason says why a probe failed; it comes from a fixed set so that it can
// be a label value.
type Reason string

// The reasons a probe ends with.
const (
	ReasonOK              Reason = "ok"
	ReasonTimeout         Reason = "timeout"
	ReasonDNS             Reason = "dns"
	ReasonConnect         Reason = "connect"
	ReasonTLS             Reason = "tls"
	ReasonHTTPStatus      Reason = "http_status"
	ReasonBodyMismatch    Reason = "body_mismatch"
	ReasonInvalidResponse Reason = "invalid_response"
	ReasonCached          Reason = "cached"
	ReasonBodyTooLarge    Reason = "body_too_large"
	ReasonICMP            Reason = "icmp"
	ReasonDNSRcode        Reason = "dns_rcode"
	ReasonError           Reason = "error"
)

// failureReasons lists every reason a probe can fail with.
var failureReasons = []Reason{ReasonTimeout, ReasonDNS, ReasonConnect, ReasonTLS, ReasonHTTPStatus, ReasonBodyMismatch, ReasonInvalidResponse, ReasonCached, ReasonBodyTooLarge, ReasonICMP, ReasonDNSRcode, ReasonError}

// Result is the outcome of one probe.
type Result struct {
	Success bool
	Reason  Reason
	// Duration runs from the start of the probe to its end (for HTTP, the
	// end of the body).
	Duration time.Duration
	Phases   Phases
	// HTTP is set by kinds that speak HTTP: StatusCode and HTTPVersion
	// (1.1, 2) apply, and are 0 without an answer.
	HTTP        bool
	StatusCode  int
	HTTPVersion float64
	// TLSExpiry is the earliest NotAfter of the certificates the peer sent,
	// when there was a TLS handshake.
	TLSExpiry time.Time
	// Drift is set by successful oxcross probes: this probe's exchange
	// alone.
	Drift *Drift
	// Filtered is set with Drift by oxcross probes of a scheduled origin
	// (one with state): the clock filter's estimate over the origin's last
	// exchanges, this one included. One-off probes have none.
	Filtered *FilteredDrift
	// Train is set by kinds that send a train of packets (icmp, tcp): what
	// each packet measured, also when the probe failed.
	Train *Train
	// DNS is set by dns probes that got an answer.
	DNS *DNSAnswer
	// Path is set by path probes: the trace, and the origin's path.
	Path *PathResult
	// Err is the underlying error of a failure, for logs only.
	Err error
}

// fail marks r failed with reason and err.
func (r *Result) fail(reason Reason, err error) {
	r.Success, r.Reason, r.Err = false, reason, err
}

// DriftEstimate is the drift the leaf reports for r, and its uncertainty
// at now: the clock filter's when r has one, else r's exchange's; nil
// without a drift.
func (r Result) DriftEstimate(now time.Time) *Drift {
	if r.Filtered != nil {
		return &Drift{Offset: r.Filtered.Offset, Uncertainty: r.Filtered.UncertaintyAt(now)}
	}
	return r.Drift
}
