package prober

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/tracer"
)

// TestWriteReport: the one-off probe's report names the target and its
// module, and shows the outcome and what the probe measured; a failure
// shows its reason and error.
func TestWriteReport(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ok := Result{
		Success: true, Reason: ReasonOK, Duration: 23 * time.Millisecond, HTTP: true, StatusCode: 200, HTTPVersion: 2,
		TLSExpiry: now.Add(48 * time.Hour), Drift: &Drift{Offset: 1500 * time.Microsecond, Uncertainty: 250 * time.Microsecond},
	}
	ok.Phases.Set(PhaseConnect, 2*time.Millisecond)
	ok.Phases.Set(PhaseTLS, 5*time.Millisecond)
	failed := Result{Reason: ReasonConnect, Duration: time.Millisecond, Err: errors.New("connection refused")}
	failed.Phases.Set(PhaseResolve, 0)
	failed.Phases.Set(PhaseTLS, 0) // no handshake: no tls line
	nx := Result{Reason: ReasonDNSRcode, Duration: time.Millisecond, Err: errors.New("rcode NXDOMAIN"),
		DNS: &DNSAnswer{Rcode: 3, Authority: 1, Truncated: true}}
	for _, tc := range []struct {
		name   string
		target config.Target
		r      Result
		want   []string
		absent []string
	}{
		{
			name:   "success",
			target: config.Target{URL: "https://origin.example/oxcross", Module: "advanced"},
			r:      ok,
			want: []string{
				"target https://origin.example/oxcross", "module advanced", "result success", "total 23.000 ms",
				"connect 2.000 ms", "tls 5.000 ms", "http status 200, HTTP/2", "tls cert expires 2026-03-03T12:00:00Z (in 2 days)",
				"clock drift 1.500 ms ± 0.250 ms",
			},
			absent: []string{"error", "resolve", "processing"},
		},
		{
			name:   "failure",
			target: config.Target{Address: "origin.example:443", Module: "tcp"},
			r:      failed,
			want:   []string{"target origin.example:443", "module tcp", "result FAILED (connect)", "error connection refused", "resolve 0.000 ms"},
			absent: []string{"http", "tls", "clock drift", "dns"},
		},
		{
			name:   "dns",
			target: config.Target{Address: "192.0.2.53:53", Module: "resolver"},
			r:      nx,
			want:   []string{"result FAILED (dns_rcode)", "dns NXDOMAIN, 0 answer, 1 authority, 0 additional records (truncated over UDP, asked again over TCP)"},
			absent: []string{"http", "clock drift"},
		},
		{
			name:   "train",
			target: config.Target{Address: "origin.example", Module: "edge_smoke"},
			r:      Result{Success: true, Reason: ReasonOK, Train: &Train{Sent: 20, Received: 19, RTTs: []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}}},
			want:   []string{"packets 20 sent, 19 received, 5.0% lost", "round trip min 1.000 ms, median 2.000 ms, max 3.000 ms"},
		},
		{
			name:   "one packet",
			target: config.Target{Address: "origin.example", Module: "icmp"},
			r:      Result{Success: true, Reason: ReasonOK, Train: &Train{Sent: 1, Received: 1, RTTs: []time.Duration{time.Millisecond}}},
			absent: []string{"packets", "round trip"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := WriteReport(&b, &tc.target, tc.r, now); err != nil {
				t.Fatal(err)
			}
			// Each line, its columns one space apart.
			var lines []string
			for line := range strings.Lines(b.String()) {
				lines = append(lines, strings.Join(strings.Fields(line), " "))
			}
			report := strings.Join(lines, "\n")
			for _, w := range tc.want {
				if !strings.Contains(report, w) {
					t.Errorf("report lacks %q:\n%s", w, b.String())
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(report, a) {
					t.Errorf("report has %q:\n%s", a, b.String())
				}
			}
		})
	}
}

func TestUntilString(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		825 * 24 * time.Hour:          "in 825 days",
		48 * time.Hour:                "in 2 days",
		47*time.Hour + 40*time.Minute: "in 48 hours",
		90 * time.Minute:              "in 2 hours",
		-3 * 24 * time.Hour:           "3 days ago",
		-5 * time.Hour:                "5 hours ago",
	} {
		if got := untilString(d); got != want {
			t.Errorf("untilString(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestWriteReportPath: a path probe's report lists the hops, "*" for a
// silent one, with loss and RTTs.
func TestWriteReportPath(t *testing.T) {
	r := Result{Success: true, Reason: ReasonOK, Path: &PathResult{Trace: &tracer.Trace{
		Method: tracer.UDP, Src: netip.MustParseAddrPort("10.0.0.2:40000"), Reached: true, MTU: 1400, Duration: 12 * time.Millisecond,
		Hops: []tracer.Hop{
			{TTL: 1, Addr: netip.MustParseAddr("10.0.0.1"), Sent: 3, RTTs: []time.Duration{time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}},
			{TTL: 2, Sent: 3},
			{TTL: 3, Addr: netip.MustParseAddr("203.0.113.9"), Sent: 3, RTTs: []time.Duration{10 * time.Millisecond}, Final: "reached"},
		},
	}}}
	var b strings.Builder
	if err := WriteReport(&b, &config.Target{Address: "203.0.113.9:443", Module: "route"}, r, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"path    udp from 10.0.0.2:40000, reached true, path MTU 1400, traced in 12.000 ms",
		"  1     10.0.0.1  loss 0% of 3, min 1.000 ms, median 2.000 ms\n",
		"  2     *  loss 100% of 3\n",
		"  3     203.0.113.9  loss 67% of 3, min 10.000 ms, median 10.000 ms, reached\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}
