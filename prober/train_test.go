package prober

import (
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
)

func TestTrainSettingsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		yaml string
		want []string // substrings of the error; none: valid
	}{
		{"defaults", `kind: icmp`, nil},
		{"a train", "kind: icmp\n    icmp: {packets: 20, packet_interval: 100ms}", nil},
		{"seconds", "kind: tcp\n    tcp: {packets: 3, packet_interval: 0.5}", nil},
		{"negative packets", "kind: icmp\n    icmp: {packets: -1}", []string{"modules.m: icmp: packets: -1 is not between 1 and 1000"}},
		{"too many packets", "kind: tcp\n    tcp: {packets: 1001}", []string{"modules.m: tcp: packets: 1001 is not between 1 and 1000"}},
		{"interval too short", "kind: icmp\n    icmp: {packets: 2, packet_interval: 500us}", []string{"packet_interval: 500µs is not between 1ms and 1m0s"}},
		{"interval too long", "kind: icmp\n    icmp: {packets: 2, packet_interval: 2m}", []string{"packet_interval: 2m0s is not between 1ms and 1m0s"}},
		{"interval not a duration", "kind: icmp\n    icmp: {packet_interval: soon}", []string{"modules.m: icmp", `"soon" is neither seconds nor a duration`}},
		{"tls train", "kind: tcp\n    tcp: {tls: true, packets: 5}", []string{"packets: 5 with tls: a train measures TCP handshakes only"}},
		{"unknown key", "kind: icmp\n    icmp: {packet: 5}", []string{"field packet not found"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := fmt.Sprintf("modules:\n  m:\n    %s\norigins:\n  - {address: 192.0.2.1:80, module: tcp}\n", tc.yaml)
			_, err := DefaultKinds(discard).Parser(config.Limits{}).Parse([]byte(doc))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("parsing\n%s: %v", doc, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("parsing\n%s: no error, want %q", doc, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestTrainTimeout: a train that does not fit in an origin's timeout is
// refused naming the origin and the module; one that fits is not.
func TestTrainTimeout(t *testing.T) {
	t.Parallel()
	parser := DefaultKinds(discard).Parser(config.Limits{})
	doc := func(timeout string) []byte {
		return fmt.Appendf(nil, `modules:
  smoke:
    kind: icmp
    icmp: {packets: 20, packet_interval: 100ms}
origins:
  - {name: edge, hostname: 192.0.2.1, module: smoke, timeout: %s}
`, timeout)
	}
	_, err := parser.Parse(doc("1s"))
	want := `line 6: origins[0] ("edge"): timeout: 1s is too short for module smoke: packets × packet_interval (20 × 100ms = 2s) does not fit in the timeout 1s`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("timeout 1s: error %v, want %q", err, want)
	}
	cfg, err := parser.Parse(doc("2s"))
	if err != nil {
		t.Fatalf("timeout 2s: %v", err)
	}
	if _, _, err := cfg.ProbeTarget("192.0.2.1", "smoke", time.Second); err == nil || !strings.Contains(err.Error(), "timeout 1s is too short for module smoke") {
		t.Errorf("/probe with timeout 1s: error %v, want the train's", err)
	}
	if _, _, err := cfg.ProbeTarget("192.0.2.1", "smoke", 3*time.Second); err != nil {
		t.Errorf("/probe with timeout 3s: %v", err)
	}
}

func TestTrainStats(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tr := Train{Sent: 5, Received: 4, RTTs: []time.Duration{9 * ms, 1 * ms, 4 * ms, 3 * ms}}
	if got := tr.Loss(); got != 0.2 {
		t.Errorf("loss %v, want 0.2", got)
	}
	median, lo, hi, ok := tr.Stats()
	if !ok || median != 3500*time.Microsecond || lo != ms || hi != 9*ms {
		t.Errorf("stats = %v, %v, %v, %v; want 3.5ms, 1ms, 9ms, true", median, lo, hi, ok)
	}
	if _, _, _, ok := (&Train{Sent: 3}).Stats(); ok {
		t.Error("stats of a train without answers: ok")
	}
	if got := (&Train{}).Loss(); got != 0 {
		t.Errorf("loss of an empty train %v, want 0", got)
	}
}

// checkTrain fails t unless r's train sent sent packets and had received
// answers, each with a round trip within the probe's duration.
func checkTrain(t *testing.T, r Result, sent, received int, took time.Duration) {
	t.Helper()
	if r.Train == nil {
		t.Fatal("result without a train")
	}
	tr := r.Train
	if tr.Sent != sent || tr.Received != received || len(tr.RTTs) != received {
		t.Fatalf("train sent %d, received %d with %d round trips; want %d, %d", tr.Sent, tr.Received, len(tr.RTTs), sent, received)
	}
	for i, d := range tr.RTTs {
		if d <= 0 || d > took {
			t.Errorf("packet %d's round trip %v, want in (0, %v]", i, d, took)
		}
	}
}

func TestICMPTrain(t *testing.T) {
	t.Parallel()
	const n, every = 10, 20 * time.Millisecond
	m := config.Module{Kind: "icmp", Settings: &ICMPSettings{TrainSettings{Packets: n, PacketInterval: Duration(every)}}}
	for _, tc := range []struct {
		host string
		v6   bool
	}{{"127.0.0.1", false}, {"::1", true}} {
		t.Run(tc.host, func(t *testing.T) {
			t.Parallel()
			if tc.v6 {
				_ = listenLoopback(t, true) // skips without ::1
			}
			start := time.Now()
			r := probeModule(t, m, addrTarget(tc.host), 5*time.Second)
			took := time.Since(start)
			skipWithoutICMP(t, r)
			checkReason(t, r, ReasonOK)
			checkTrain(t, r, n, n, took)
			// The packets were spaced: the train took at least (n-1)
			// intervals.
			if took < (n-1)*every {
				t.Errorf("a train of %d packets %v apart took %v", n, every, took)
			}
			median, _, _, _ := r.Train.Stats()
			if d := phaseOf(t, r, PhaseProcessing); d != median {
				t.Errorf("processing phase %v, want the median round trip %v", d, median)
			}
		})
	}
}

func TestTCPTrain(t *testing.T) {
	t.Parallel()
	l := listenLoopback(t, false)
	testutil.ServeConns(t, l, func(c net.Conn) { _ = c.Close() })
	const n = 8
	s := &TCPSettings{TrainSettings: TrainSettings{Packets: n, PacketInterval: Duration(10 * time.Millisecond)}}
	start := time.Now()
	r := probeModule(t, config.Module{Kind: "tcp", Settings: s}, addrTarget(l.Addr().String()), 5*time.Second)
	took := time.Since(start)
	checkReason(t, r, ReasonOK)
	checkTrain(t, r, n, n, took)
	median, _, _, _ := r.Train.Stats()
	if d := phaseOf(t, r, PhaseConnect); d != median {
		t.Errorf("connect phase %v, want the median handshake %v", d, median)
	}

	// A closed port refuses every packet: all lost, a connect failure.
	r = probeModule(t, config.Module{Kind: "tcp", Settings: s}, addrTarget(testutil.ClosedAddr(t)), 5*time.Second)
	checkReason(t, r, ReasonConnect)
	checkTrain(t, r, n, 0, time.Since(start))

	// One packet, the default: the train of the plain tcp probe.
	r = probeModule(t, builtinModules["tcp"], addrTarget(l.Addr().String()), 5*time.Second)
	checkReason(t, r, ReasonOK)
	checkTrain(t, r, 1, 1, time.Since(start))
}

// TestTrainMetrics: a train's packets, loss, spread and round trips, and
// the series that origins without trains, or with one-packet trains (the
// default), do not have.
func TestTrainMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	ms := time.Millisecond
	om := m.forOrigin("smoke", "leaf")
	om.record(Result{Success: true, Reason: ReasonOK, Duration: 5 * ms, Train: &Train{Sent: 4, Received: 3, RTTs: []time.Duration{5 * ms, 2 * ms, 9 * ms}}})
	om.record(Result{Success: false, Reason: ReasonTimeout, Duration: time.Second, Train: &Train{Sent: 4}})
	m.forOrigin("web", "leaf").record(Result{Success: true, Reason: ReasonOK, Duration: 5 * ms})
	m.forOrigin("ping", "leaf").record(Result{Success: true, Reason: ReasonOK, Duration: ms, Train: &Train{Sent: 1, Received: 1, RTTs: []time.Duration{ms}}})

	o := []string{"origin_id", "smoke", "source_id", "leaf"}
	for name, want := range map[string]float64{
		"oxcross_leaf_probe_packets_sent_total":     8,
		"oxcross_leaf_probe_packets_received_total": 3,
		"oxcross_leaf_probe_packet_loss_ratio":      1,
		"oxcross_leaf_probe_packet_rtt_seconds":     3, // observations
	} {
		if got := testutil.MetricValue(t, reg, name, o...); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := testutil.MetricValue(t, reg, "oxcross_leaf_probe_packet_rtt_spread_seconds", o...); !math.IsNaN(got) {
		t.Errorf("spread of a train without answers %v, want NaN", got)
	}
	om.record(Result{Success: true, Reason: ReasonOK, Train: &Train{Sent: 4, Received: 4, RTTs: []time.Duration{5 * ms, 2 * ms, 9 * ms, 3 * ms}}})
	if got := testutil.MetricValue(t, reg, "oxcross_leaf_probe_packet_rtt_spread_seconds", o...); math.Abs(got-0.007) > 1e-12 {
		t.Errorf("spread %v, want 0.007 (9ms - 2ms)", got)
	}
	if got := testutil.MetricValue(t, reg, "oxcross_leaf_probe_packet_loss_ratio", o...); got != 0 {
		t.Errorf("loss %v, want 0", got)
	}
	h := testutil.MetricSeries(t, reg, "oxcross_leaf_probe_packet_rtt_seconds", o...)[0].GetHistogram()
	if got, want := h.GetSampleSum(), 0.035; math.Abs(got-want) > 1e-9 {
		t.Errorf("round trips sum %v, want %v", got, want)
	}
	// 21 classic buckets, so 24 series in the text format (docs/metrics.md
	// counts 28 per origin with the counters and gauges).
	if n := len(h.GetBucket()); n != 21 {
		t.Errorf("%d classic buckets, want 21", n)
	}
	for _, name := range []string{"oxcross_leaf_probe_packets_sent_total", "oxcross_leaf_probe_packet_loss_ratio", "oxcross_leaf_probe_packet_rtt_spread_seconds", "oxcross_leaf_probe_packet_rtt_seconds"} {
		for _, id := range []string{"web", "ping"} {
			if _, ok := testutil.LookupMetric(t, reg, name, "origin_id", id); ok {
				t.Errorf("%s has a series for origin %s, which sends no train of more than one packet", name, id)
			}
		}
	}
	om.delete()
	if _, ok := testutil.LookupMetric(t, reg, "oxcross_leaf_probe_packet_rtt_seconds", o...); ok {
		t.Error("a deleted origin keeps its round-trip histogram")
	}
}

// TestHistoryTrains: the status page's history keeps, per minute, the
// trains of origins that probe with more than one packet: their packets,
// fastest and slowest, and the means of their quartiles; the last result
// keeps the counts without the round trips. One-packet origins keep none.
func TestHistoryTrains(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 30, 15, 0, time.UTC)
	h := NewHistory()
	h.now = func() time.Time { return now }
	for _, id := range []string{"smoke", "ping"} {
		h.track(id)
	}
	ms := time.Millisecond
	h.record("smoke", Result{Success: true, Train: &Train{Sent: 5, Received: 5, RTTs: []time.Duration{5 * ms, 1 * ms, 3 * ms, 2 * ms, 4 * ms}}})
	h.record("smoke", Result{Success: true, Train: &Train{Sent: 5, Received: 3, RTTs: []time.Duration{7 * ms, 9 * ms, 8 * ms}}})
	h.record("ping", Result{Success: true, Train: &Train{Sent: 1, Received: 1, RTTs: []time.Duration{ms}}})
	now = now.Add(time.Minute)
	h.record("smoke", Result{Reason: ReasonTimeout, Train: &Train{Sent: 5}})

	got := h.Statuses(origins(config.Target{ID: "smoke", Address: "h", Module: "m"}, config.Target{ID: "ping", Address: "h", Module: "icmp"}))
	ping, smoke := got[0], got[1]
	if ping.Train != nil {
		t.Errorf("a one-packet origin has a train history: %+v", ping.Train[HistoryMinutes-1])
	}
	if len(smoke.Train) != HistoryMinutes {
		t.Fatalf("%d train points, want %d", len(smoke.Train), HistoryMinutes)
	}
	last, prev := smoke.Train[HistoryMinutes-1], smoke.Train[HistoryMinutes-2]
	if last.Trains != 1 || last.Sent != 5 || last.Received != 0 || last.Loss() != 1 || last.Median != 0 {
		t.Errorf("last minute %+v, want one train of 5 packets, all lost", last)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	// Quartiles (nearest rank): 2, 3, 4 ms and 7, 8, 8 ms; means 4.5, 5.5, 6 ms.
	if prev.Trains != 2 || prev.Sent != 10 || prev.Received != 8 || !near(prev.Loss(), 0.2) ||
		!near(prev.Lo, 0.001) || !near(prev.Hi, 0.009) || !near(prev.Q1, 0.0045) || !near(prev.Median, 0.0055) || !near(prev.Q3, 0.006) {
		t.Errorf("previous minute %+v, want 2 trains, 10 sent, 8 received, 1..9 ms, quartile means 4.5, 5.5, 6 ms", prev)
	}
	if tr := smoke.Last.Train; tr == nil || tr.Sent != 5 || tr.Received != 0 || tr.RTTs != nil {
		t.Errorf("last result's train %+v, want 5 sent, none received, no round trips kept", tr)
	}
	h.forget("smoke")
	if _, ok := h.trains["smoke"]; ok {
		t.Error("a forgotten origin keeps its train history")
	}
}

// TestProbeHandlerTrain: /probe reports a train's packets, loss and
// spread, and refuses a scrape timeout the train does not fit in.
func TestProbeHandlerTrain(t *testing.T) {
	t.Parallel()
	cfg, err := DefaultKinds(discard).Parser(config.Limits{}).Parse([]byte(`
modules:
  syns:
    kind: tcp
    tcp: {packets: 4, packet_interval: 50ms}
origins:
  - {address: 'origin.example.com:443', module: syns}
`))
	if err != nil {
		t.Fatal(err)
	}
	endpoint := probeEndpoint(t, NewHandler(newTestProber(), func() *config.Config { return cfg }, DefaultMaxConcurrentProbes, discard))
	l := listenLoopback(t, false)
	testutil.ServeConns(t, l, func(c net.Conn) { _ = c.Close() })

	a := getProbe(t, endpoint, l.Addr().String(), "syns", "")
	a.wantProbe(t, ReasonOK)
	for name, want := range map[string]float64{"probe_oxcross_packets_sent": 4, "probe_oxcross_packets_received": 4, "probe_oxcross_packet_loss_ratio": 0} {
		if v := a.mustValue(t, name); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if v := a.mustValue(t, "probe_oxcross_packet_rtt_spread_seconds"); v < 0 || v > a.elapsed.Seconds() {
		t.Errorf("spread %v, want in [0, %v]", v, a.elapsed.Seconds())
	}
	// 4 × 50ms does not fit in a scrape timeout of 0.1s.
	getProbe(t, endpoint, l.Addr().String(), "syns", "0.1").wantBadRequest(t, "too short for module syns")
}
