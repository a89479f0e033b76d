package prober

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
	"github.com/oxcross/oxcross/internal/tracer"
)

func TestPathSettingsValidate(t *testing.T) {
	t.Parallel()
	if err := (&PathSettings{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if err := (&PathSettings{Method: "tcp", MaxHops: 10, FirstHop: 2, ProbesPerHop: 5, HopTimeout: "500ms", UDPPort: 4000}).Validate(); err != nil {
		t.Errorf("valid settings: %v", err)
	}
	err := (&PathSettings{Method: "sctp", MaxHops: 256, ProbesPerHop: 11, HopTimeout: "2h", UDPPort: 70000}).Validate()
	for _, want := range []string{`method: "sctp" is not udp, tcp or icmp`, "max_hops: 256", "probes_per_hop: 11", "hop_timeout: 2h0m0s", "udp_port: 70000"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to contain %q", err, want)
		}
	}
	if err := (&PathSettings{MaxHops: 5, FirstHop: 6}).Validate(); err == nil || !strings.Contains(err.Error(), "first_hop: 6 is beyond max_hops 5") {
		t.Errorf("first_hop beyond max_hops: error %v", err)
	}
	if err := (&PathSettings{HopTimeout: "soon"}).Validate(); err == nil || !strings.Contains(err.Error(), "hop_timeout:") {
		t.Errorf("hop_timeout soon: error %v", err)
	}
}

// trace makes a trace through hops ("" for a silent hop).
func trace(reached bool, hops ...string) *tracer.Trace {
	tr := &tracer.Trace{Reached: reached}
	for i, h := range hops {
		hop := tracer.Hop{TTL: i + 1, Sent: 3}
		if h != "" {
			hop.Addr = netip.MustParseAddr(h)
			hop.RTTs = []time.Duration{time.Millisecond}
		}
		tr.Hops = append(tr.Hops, hop)
	}
	return tr
}

// TestPathStateChanges: a new path counts once it held for two traces in a
// row; hops that did not answer, and traces without any answer, change
// nothing; a path that flaps back before holding twice is no change.
func TestPathStateChanges(t *testing.T) {
	t.Parallel()
	viaB := trace(true, "10.0.0.1", "10.0.1.2", "10.0.9.9")
	viaC := trace(true, "10.0.0.1", "10.0.3.2", "10.0.9.9")
	for _, tc := range []struct {
		name   string
		traces []*tracer.Trace
		want   []bool
	}{
		{"steady", []*tracer.Trace{viaB, viaB, viaB}, []bool{false, false, false}},
		{"moved", []*tracer.Trace{viaB, viaB, viaC, viaC, viaC}, []bool{false, false, false, true, false}},
		{"flap", []*tracer.Trace{viaB, viaC, viaB, viaC, viaB}, []bool{false, false, false, false, false}},
		{"silent hops", []*tracer.Trace{viaB, trace(true, "", "10.0.1.2", "10.0.9.9"), trace(true, "10.0.0.1", "", ""), viaB}, []bool{false, false, false, false}},
		{"no answer", []*tracer.Trace{viaB, trace(false, "", "", "", ""), trace(false, "", ""), viaB}, []bool{false, false, false, false}},
		{"longer", []*tracer.Trace{viaB, trace(true, "10.0.0.1", "10.0.1.2", "10.0.5.5", "10.0.9.9"), trace(true, "10.0.0.1", "10.0.1.2", "10.0.5.5", "10.0.9.9")}, []bool{false, false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st pathState
			for i, tr := range tc.traces {
				_, _, changed := st.observe(tr)
				if changed != tc.want[i] {
					t.Errorf("trace %d: changed %v, want %v", i+1, changed, tc.want[i])
				}
			}
		})
	}
	// The change reports the old and the new hops.
	var st pathState
	st.observe(viaB)
	st.observe(viaC)
	cur, old, changed := st.observe(viaC)
	if !changed || formatHops(old) != "10.0.0.1 10.0.1.2 10.0.9.9" || formatHops(cur) != "10.0.0.1 10.0.3.2 10.0.9.9" {
		t.Errorf("change: %v from %q to %q", changed, formatHops(old), formatHops(cur))
	}
}

// TestPathKindLoopback traces loopback with each method and both
// families, through the config and the kind as the scheduler does, and
// checks the path series: on path origins only, the MTU with udp and icmp
// only.
func TestPathKindLoopback(t *testing.T) {
	t.Parallel()
	skipUnlessLinux(t)
	ln := listenLoopback(t, false)
	testutil.ServeConns(t, ln, func(c net.Conn) { _ = c.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	var log testutil.SyncBuffer
	kinds := DefaultKinds(slog.New(slog.NewTextHandler(&log, nil)))
	cfg, err := kinds.Parser(config.Limits{}).Parse(fmt.Appendf(nil, `
modules:
  path_udp: {kind: path}
  path_tcp: {kind: path, path: {method: tcp, max_hops: 4, probes_per_hop: 2, hop_timeout: 2s}}
  path_icmp: {kind: path, path: {method: icmp}}
origins:
  - {name: udp4, address: '127.0.0.1:%[1]d', module: path_udp}
  - {name: udp6, address: '[::1]:%[1]d', module: path_udp}
  - {name: tcp4, address: '127.0.0.1:%[1]d', module: path_tcp}
  - {name: tcp6-closed, address: '[::1]:1', module: path_tcp}
  - {name: icmp4, address: '127.0.0.1:%[1]d', module: path_icmp}
  - {name: plain, address: '127.0.0.1:%[1]d', module: tcp}
`, port))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	p := NewProber("test", kinds)
	noICMP := false
	for i := range cfg.Origins {
		o := &cfg.Origins[i]
		mod := cfg.Modules[o.Module]
		if o.ID != "plain" && (o.Interval != DefaultPathInterval || o.Timeout != DefaultPathTimeout) {
			t.Errorf("%s: interval %s, timeout %s, want the kind's 5m and 1m", o.ID, o.Interval, o.Timeout)
		}
		st := p.newState(&mod)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r := p.Probe(ctx, o, &mod, st)
		cancel()
		om := m.forOrigin(o.ID, "leaf")
		om.record(r)
		if o.ID == "plain" {
			continue
		}
		if o.ID == "icmp4" && errors.Is(r.Err, tracer.ErrNoICMPSocket) {
			// Neither ping_group_range nor CAP_NET_RAW: the clear error.
			if r.Reason != ReasonICMP {
				t.Errorf("icmp4 without ICMP sockets: reason %s, want icmp", r.Reason)
			}
			t.Logf("icmp4: %v", r.Err)
			noICMP = true
			continue
		}
		if !r.Success || r.Path == nil || !r.Path.Trace.Reached {
			t.Errorf("%s: result %+v, err %v", o.ID, r, r.Err)
			continue
		}
		if d := phaseOf(t, r, PhaseProcessing); d != r.Path.Trace.Hops[0].MinRTT() {
			t.Errorf("%s: processing phase %s, want the destination's min RTT %s", o.ID, d, r.Path.Trace.Hops[0].MinRTT())
		}
		t.Logf("%s: %s in %s: hops %v, mtu %d", o.ID, r.Path.Trace.Method, r.Path.Trace.Duration, formatHops(r.Path.Hops), r.Path.Trace.MTU)
	}
	for _, id := range []string{"udp4", "udp6", "tcp4", "tcp6-closed", "icmp4"} {
		if id == "icmp4" && noICMP {
			continue
		}
		for name, want := range map[string]float64{"oxcross_leaf_path_hops": 1, "oxcross_leaf_path_reached": 1, "oxcross_leaf_path_changes_total": 0} {
			if got := testutil.MetricValue(t, reg, name, "origin_id", id); got != want {
				t.Errorf("%s{origin_id=%q} = %v, want %v", name, id, got, want)
			}
		}
		if d := testutil.MetricValue(t, reg, "oxcross_leaf_path_trace_duration_seconds", "origin_id", id); d <= 0 {
			t.Errorf("%s: trace duration %v", id, d)
		}
		_, hasMTU := testutil.LookupMetric(t, reg, "oxcross_leaf_path_mtu_bytes", "origin_id", id)
		if want := !strings.HasPrefix(id, "tcp"); hasMTU != want {
			t.Errorf("%s: has an MTU series %v, want %v", id, hasMTU, want)
		}
	}
	if v := testutil.MetricValue(t, reg, "oxcross_leaf_path_mtu_bytes", "origin_id", "udp4"); v != tracer.MaxMTU {
		t.Errorf("udp4: loopback MTU %v, want the cap %d", v, tracer.MaxMTU)
	}
	for _, name := range []string{"oxcross_leaf_path_hops", "oxcross_leaf_path_reached", "oxcross_leaf_path_changes_total", "oxcross_leaf_path_mtu_bytes", "oxcross_leaf_path_trace_duration_seconds"} {
		if _, ok := testutil.LookupMetric(t, reg, name, "origin_id", "plain"); ok {
			t.Errorf("the tcp origin has %s", name)
		}
	}
}

// skipUnlessLinux skips a test of the path kind's tracing, which reads the
// socket error queue of Linux.
func skipUnlessLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the path kind traces on Linux only")
	}
}
