package prober

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/oxcross/oxcross/config"
)

// WriteReport writes one probe's result for a person: outcome, phases,
// HTTP status and version, TLS certificate expiry, DNS answer and drift, a
// path's hops, in the spirit of curl -w (and of mtr's report for a path).
func WriteReport(w io.Writer, t *config.Target, r Result, now time.Time) error {
	target := t.URL
	if target == "" {
		target = t.Address
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	outcome := "success"
	if !r.Success {
		outcome = "FAILED (" + string(r.Reason) + ")"
	}
	fmt.Fprintf(tw, "target\t%s\n", target)
	fmt.Fprintf(tw, "module\t%s\n", t.Module)
	fmt.Fprintf(tw, "result\t%s\n", outcome)
	if r.Err != nil {
		fmt.Fprintf(tw, "error\t%v\n", r.Err)
	}
	fmt.Fprintf(tw, "total\t%s\n", msString(r.Duration))
	for p := range numPhases {
		d, ok := r.Phases.Get(p)
		// The metrics carry a tls phase of 0 for every probe, as
		// blackbox_exporter's do; a person reads it as a handshake that
		// took no time, so the report leaves it out.
		if ok && (p != PhaseTLS || d > 0) {
			fmt.Fprintf(tw, "  %s\t%s\n", p, msString(d))
		}
	}
	if t := r.Train; t != nil && t.Sent > 1 {
		fmt.Fprintf(tw, "packets\t%d sent, %d received, %.1f%% lost\n", t.Sent, t.Received, 100*t.Loss())
		if median, lo, hi, ok := t.Stats(); ok {
			fmt.Fprintf(tw, "  round trip\tmin %s, median %s, max %s\n", msString(lo), msString(median), msString(hi))
		}
	}
	if r.StatusCode != 0 {
		fmt.Fprintf(tw, "http\tstatus %d, HTTP/%g\n", r.StatusCode, r.HTTPVersion)
	}
	if !r.TLSExpiry.IsZero() {
		fmt.Fprintf(tw, "tls cert\texpires %s (%s)\n", r.TLSExpiry.UTC().Format(time.RFC3339), untilString(r.TLSExpiry.Sub(now)))
	}
	if r.DNS != nil {
		fmt.Fprintf(tw, "dns\t%s\n", r.DNS)
	}
	if r.Drift != nil {
		fmt.Fprintf(tw, "clock drift\t%s ± %s (origin minus this machine)\n", msString(r.Drift.Offset), msString(r.Drift.Uncertainty))
	}
	if p := r.Path; p != nil {
		tr := p.Trace
		mtu := "not measured"
		if tr.MTU > 0 {
			mtu = fmt.Sprint(tr.MTU)
		}
		fmt.Fprintf(tw, "path\t%s from %s, reached %v, path MTU %s, traced in %s\n", tr.Method, tr.Src, tr.Reached, mtu, msString(tr.Duration))
		for _, h := range tr.Hops {
			addr := "*"
			if h.Addr.IsValid() {
				addr = h.Addr.String()
			}
			line := fmt.Sprintf("%s  loss %.0f%% of %d", addr, 100*h.Loss(), h.Sent)
			if h.Answered() {
				line += fmt.Sprintf(", min %s, median %s", msString(h.MinRTT()), msString(h.MedianRTT()))
			}
			if h.Final != "" {
				line += ", " + h.Final
			}
			fmt.Fprintf(tw, "  %d\t%s\n", h.TTL, line)
		}
	}
	return tw.Flush()
}

func msString(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

// untilString says how far off an expiry is, for a person: in days from
// two days on, in hours below.
func untilString(d time.Duration) string {
	past := d < 0
	if past {
		d = -d
	}
	var s string
	switch {
	case d >= 48*time.Hour:
		s = fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	default:
		s = fmt.Sprintf("%d hours", int(d.Round(time.Hour)/time.Hour))
	}
	if past {
		return s + " ago"
	}
	return "in " + s
}
