//go:build linux

package prober

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
	"github.com/oxcross/oxcross/internal/tracer"
)

// pathTopology is leaf → router A → router B → origin, in network
// namespaces of its own, with a spare router C between A and the origin:
//
//	leaf 10.14.0.2 ─ A 10.14.0.1 │ 10.14.1.1 ─(MTU 1400)─ 10.14.1.2 B 10.14.2.1 ─ 10.14.2.2 origin
//	                   A 10.14.3.1 ─ 10.14.3.2 C 10.14.4.1 ─────────────── 10.14.4.2 origin
//
// The origin's address, 10.14.9.9 (fd14:9::9), is on its loopback; A
// routes it via B until moveToC. IPv6 mirrors IPv4 (10.14.N.x is
// fd14:N::x). Every router answers ICMP without rate limit, so that the
// test's back-to-back traces are not cut short by it.
type pathTopology struct {
	leaf, a, b, c, origin *testutil.Netns
}

func newPathTopology(t *testing.T) *pathTopology {
	t.Helper()
	testutil.RequireNetns(t, "path.txt")
	tp := &pathTopology{}
	for _, ns := range []**testutil.Netns{&tp.leaf, &tp.a, &tp.b, &tp.c, &tp.origin} {
		*ns = testutil.NewNetns(t)
		(*ns).Router()
		// No duplicate address detection: a tentative link-local address
		// would hold up neighbour discovery for a second or two.
		(*ns).Sysctl("net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	// link joins x and y on subnet n: 10.14.n.1 and fd14:n::1 on x's end,
	// .2 and ::2 on y's.
	link := func(x, y *testutil.Netns, n, mtu int) {
		testutil.LinkNetnsWith(t, x, y, testutil.LinkOptions{
			AAddrs: []string{fmt.Sprintf("10.14.%d.1/24", n), fmt.Sprintf("fd14:%d::1/64", n)},
			BAddrs: []string{fmt.Sprintf("10.14.%d.2/24", n), fmt.Sprintf("fd14:%d::2/64", n)},
			MTU:    mtu,
		})
	}
	link(tp.a, tp.leaf, 0, 1500)
	link(tp.a, tp.b, 1, 1400)
	link(tp.b, tp.origin, 2, 1500)
	link(tp.a, tp.c, 3, 1500)
	link(tp.c, tp.origin, 4, 1500)
	tp.origin.AddAddr("10.14.9.9/32", "lo")
	tp.origin.AddAddr("fd14:9::9/128", "lo")
	for _, r := range []struct {
		ns       *testutil.Netns
		dst, via string
	}{
		{tp.leaf, "default", "10.14.0.1"}, {tp.leaf, "default", "fd14:0::1"},
		{tp.a, "10.14.9.9/32", "10.14.1.2"}, {tp.a, "fd14:9::9/128", "fd14:1::2"},
		{tp.b, "default", "10.14.1.1"}, {tp.b, "default", "fd14:1::1"},
		{tp.b, "10.14.9.9/32", "10.14.2.2"}, {tp.b, "fd14:9::9/128", "fd14:2::2"},
		{tp.c, "default", "10.14.3.1"}, {tp.c, "default", "fd14:3::1"},
		{tp.c, "10.14.9.9/32", "10.14.4.2"}, {tp.c, "fd14:9::9/128", "fd14:4::2"},
		{tp.origin, "default", "10.14.2.1"}, {tp.origin, "default", "fd14:2::1"},
	} {
		r.ns.Route(r.dst, r.via)
	}
	return tp
}

// moveToC routes A's traffic to the origin through C.
func (tp *pathTopology) moveToC() {
	tp.a.Route("10.14.9.9/32", "10.14.3.2")
	tp.a.Route("fd14:9::9/128", "fd14:3::2")
}

// traceHops formats the hops a trace found.
func traceHops(tr *tracer.Trace) string {
	hops := make([]netip.Addr, len(tr.Hops))
	for i, h := range tr.Hops {
		hops[i] = h.Addr
	}
	return formatHops(hops)
}

const pathChildEnv = "OXCROSS_PATH_NETNS_CHILD"

// pathConfig parses a config of path origins, one per method and family,
// all to the topology's origin on port.
func pathConfig(t *testing.T, kinds *Kinds, port int) *config.Config {
	t.Helper()
	cfg, err := kinds.Parser(config.Limits{}).Parse(fmt.Appendf(nil, `
modules:
  path_udp: {kind: path, path: {max_hops: 8, hop_timeout: 2s}}
  path_tcp: {kind: path, path: {method: tcp, max_hops: 8, hop_timeout: 2s}}
  path_icmp: {kind: path, path: {method: icmp, max_hops: 8, hop_timeout: 2s}}
  path_tcp_quick: {kind: path, path: {method: tcp, max_hops: 8, hop_timeout: 300ms}}
  path_udp_quick: {kind: path, path: {max_hops: 8, hop_timeout: 300ms}}
origins:
  - {name: udp4, address: '10.14.9.9:%[1]d', module: path_udp}
  - {name: tcp4, address: '10.14.9.9:%[1]d', module: path_tcp}
  - {name: udp6, address: '[fd14:9::9]:%[1]d', module: path_udp}
  - {name: tcp6, address: '[fd14:9::9]:%[1]d', module: path_tcp}
  - {name: icmp4, address: '10.14.9.9:%[1]d', module: path_icmp}
  - {name: icmp6, address: '[fd14:9::9]:%[1]d', module: path_icmp}
  - {name: tcp4-quick, address: '10.14.9.9:%[1]d', module: path_tcp_quick}
  - {name: nowhere, address: '10.14.8.8:%[1]d', module: path_udp_quick}
`, port))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// pathChildResult is what the unprivileged child reports of one origin.
type pathChildResult struct {
	ID      string
	UID     int
	Reason  Reason
	Err     string
	Reached bool
	Hops    []string
	MTU     int
}

// TestPathNetns traces a real routed path built in network namespaces:
// three hops and reached, with udp and tcp, IPv4 and IPv6; the narrowed
// link's MTU of 1400; one change, counted after the second trace through
// router C; and udp and tcp as an unprivileged user.
func TestPathNetns(t *testing.T) {
	tp := newPathTopology(t)
	// The origin listens on its port, so that tcp's SYNs get a SYN-ACK,
	// and notes where each connection came from.
	var port int
	var mu sync.Mutex
	var peers []string
	var ln net.Listener
	var err error
	tp.origin.Do(func() { ln, err = net.Listen("tcp", ":0") })
	if err != nil {
		t.Fatal(err)
	}
	testutil.ServeConns(t, ln, func(c net.Conn) {
		mu.Lock()
		peers = append(peers, c.RemoteAddr().String())
		mu.Unlock()
		_, _ = io.Copy(io.Discard, c)
	})
	port = ln.Addr().(*net.TCPAddr).Port
	var log testutil.SyncBuffer
	kinds := DefaultKinds(slog.New(slog.NewTextHandler(&log, nil)))
	cfg := pathConfig(t, kinds, port)
	p := NewProber("test", kinds)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	states := map[string]any{}
	probe := func(id string) Result {
		t.Helper()
		var o *config.Target
		for i := range cfg.Origins {
			if cfg.Origins[i].ID == id {
				o = &cfg.Origins[i]
			}
		}
		mod := cfg.Modules[o.Module]
		if states[id] == nil {
			states[id] = p.newState(&mod)
		}
		var r Result
		tp.leaf.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
			defer cancel()
			r = p.Probe(ctx, o, &mod, states[id])
		})
		m.forOrigin(id, "leaf").record(r)
		return r
	}

	viaB := map[bool]string{false: "10.14.0.1 10.14.1.2 10.14.9.9", true: "fd14::1 fd14:1::2 fd14:9::9"}
	viaC := map[bool]string{false: "10.14.0.1 10.14.3.2 10.14.9.9", true: "fd14::1 fd14:3::2 fd14:9::9"}
	// As root, icmp uses raw sockets (ping_group_range admits no group in
	// a new namespace).
	for _, id := range []string{"udp4", "tcp4", "udp6", "tcp6", "icmp4", "icmp6"} {
		r := probe(id)
		if r.Path == nil {
			t.Fatalf("%s: no trace: %v", id, r.Err)
		}
		tr := r.Path.Trace
		v6 := strings.HasSuffix(id, "6")
		t.Logf("%s: %s → %s: hops %q, reached %v, MTU %d, %s", id, tr.Src, tr.Dst, traceHops(tr), tr.Reached, tr.MTU, tr.Duration)
		if !r.Success || !tr.Reached || len(tr.Hops) != 3 || traceHops(tr) != viaB[v6] {
			t.Errorf("%s: reached %v at %d hops %q (%v), want 3 hops %q", id, tr.Reached, len(tr.Hops), traceHops(tr), r.Err, viaB[v6])
		}
		for name, want := range map[string]float64{"oxcross_leaf_path_hops": 3, "oxcross_leaf_path_reached": 1} {
			if got := testutil.MetricValue(t, reg, name, "origin_id", id); got != want {
				t.Errorf("%s{origin_id=%q} = %v, want %v", name, id, got, want)
			}
		}
		if !strings.HasPrefix(id, "tcp") {
			if got := testutil.MetricValue(t, reg, "oxcross_leaf_path_mtu_bytes", "origin_id", id); got != 1400 {
				t.Errorf("%s: path MTU %v, want 1400 (the A–B link's)", id, got)
			}
		}
		for _, h := range tr.Hops {
			if h.Loss() != 0 {
				t.Errorf("%s: hop %d lost %.0f%% of its probes", id, h.TTL, 100*h.Loss())
			}
		}
		if strings.HasPrefix(id, "tcp") {
			// Paris: the three SYNs that reached the origin all came from
			// the trace's one source port.
			testutil.EventuallyReason(t, 5*time.Second, id+"'s connections at the origin", func() string {
				mu.Lock()
				defer mu.Unlock()
				if len(peers) != 3 || peers[0] != tr.Src.String() || peers[1] != peers[0] || peers[2] != peers[0] {
					return fmt.Sprintf("connections from %v, want 3 from %s", peers, tr.Src)
				}
				return ""
			})
			mu.Lock()
			peers = nil
			mu.Unlock()
		}
	}
	if t.Failed() {
		return
	}

	// A second trace through B, then two through C: one change, counted
	// at the second through C, and logged once with both paths.
	probe("udp4")
	tp.moveToC()
	for i, want := range []float64{0, 1, 1} {
		r := probe("udp4")
		got := testutil.MetricValue(t, reg, "oxcross_leaf_path_changes_total", "origin_id", "udp4")
		t.Logf("trace %d through C: hops %q, changes %v", i+1, traceHops(r.Path.Trace), got)
		if got != want {
			t.Errorf("after trace %d through C: %v changes, want %v", i+1, got, want)
		}
	}
	if n := strings.Count(log.String(), `msg="path changed"`); n != 1 {
		t.Errorf("%d path change log lines, want 1:\n%s", n, log.String())
	}
	if want := fmt.Sprintf("old=%q new=%q", viaB[false], viaC[false]); !strings.Contains(log.String(), want) {
		t.Errorf("the change's log line lacks %s:\n%s", want, log.String())
	}
	for _, id := range []string{"tcp4", "udp6", "tcp6", "icmp4", "icmp6"} {
		if got := testutil.MetricValue(t, reg, "oxcross_leaf_path_changes_total", "origin_id", id); got != 0 {
			t.Errorf("%s: %v changes after one trace, want 0", id, got)
		}
	}

	t.Run("unprivileged", func(t *testing.T) {
		testutil.RequireNetns(t, "path.txt", "setpriv")
		results := runUnprivilegedChild(t, tp, port)
		for _, id := range []string{"udp4", "tcp4", "udp6", "tcp6"} {
			r, ok := results[id]
			v6 := strings.HasSuffix(id, "6")
			switch {
			case !ok:
				t.Errorf("%s: no result from the child", id)
			case r.UID == 0:
				t.Errorf("%s: the child ran as root", id)
			case !r.Reached || strings.Join(r.Hops, " ") != viaC[v6]:
				t.Errorf("%s as uid %d: reached %v, hops %q (%s %s), want %q", id, r.UID, r.Reached, r.Hops, r.Reason, r.Err, viaC[v6])
			default:
				t.Logf("%s as uid %d: hops %q, MTU %d", id, r.UID, r.Hops, r.MTU)
			}
		}
		// The child could not trace with icmp: it has no CAP_NET_RAW, and
		// the new namespace's ping_group_range admits no group.
		for _, id := range []string{"icmp4", "icmp6"} {
			if r := results[id]; r.Reason != ReasonICMP || !strings.Contains(r.Err, "CAP_NET_RAW") || !strings.Contains(r.Err, "ping_group_range") {
				t.Errorf("%s unprivileged: reason %q, error %q; want icmp naming CAP_NET_RAW and ping_group_range", id, r.Reason, r.Err)
			}
		}
		// Once ping_group_range admits nobody's group, icmp traces through
		// unprivileged ICMP sockets.
		tp.leaf.Sysctl("net.ipv4.ping_group_range=65534 65534")
		results = runUnprivilegedChild(t, tp, port)
		for _, id := range []string{"icmp4", "icmp6"} {
			r := results[id]
			if want := viaC[strings.HasSuffix(id, "6")]; !r.Reached || strings.Join(r.Hops, " ") != want || r.MTU != 1500 {
				t.Errorf("%s with ping_group_range: reached %v, hops %q, MTU %d (%s %s), want %q and 1500", id, r.Reached, r.Hops, r.MTU, r.Reason, r.Err, want)
			} else {
				t.Logf("%s as uid %d through an ICMP socket: hops %q, MTU %d", id, r.UID, r.Hops, r.MTU)
			}
		}
	})

	// A router that does not answer (C has no route back to the leaf) is
	// a silent hop, and no change; a router without a route to the
	// destination ends the trace with its refusal.
	t.Run("silent and unreachable", func(t *testing.T) {
		tp.c.Run("ip", "route", "replace", "blackhole", "10.14.0.0/24")
		for _, id := range []string{"udp4", "tcp4-quick"} {
			r := probe(id)
			tr := r.Path.Trace
			t.Logf("%s through a silent C: hops %q, reached %v, hop 2 loss %.0f%%, in %s", id, traceHops(tr), tr.Reached, 100*tr.Hops[1].Loss(), tr.Duration)
			if !tr.Reached || traceHops(tr) != "10.14.0.1 * 10.14.9.9" || tr.Hops[1].Loss() != 1 || tr.Hops[1].Sent != 3 {
				t.Errorf("%s: reached %v, hops %q, hop 2 %+v; want a silent hop 2", id, tr.Reached, traceHops(tr), tr.Hops[1])
			}
		}
		if got := testutil.MetricValue(t, reg, "oxcross_leaf_path_changes_total", "origin_id", "udp4"); got != 1 {
			t.Errorf("udp4: %v changes after a silent hop, want still 1", got)
		}
		// A limits its "unreachable" answers (the kernel's ip_error: one a
		// second, tokens from zero for a new source), so the refusal may
		// come at hop 1 or a later one; it ends the trace either way.
		r := probe("nowhere")
		t.Logf("nowhere: %s %v", r.Reason, r.Err)
		last := lastHop(r.Path.Trace)
		if r.Success || r.Reason != ReasonConnect || last.Final != "network unreachable" || last.Addr != netip.MustParseAddr("10.14.0.1") {
			t.Errorf("nowhere: %s %v, hops %+v; want connect, network unreachable from A", r.Reason, r.Err, r.Path.Trace.Hops)
		}
		if got := testutil.MetricValue(t, reg, "oxcross_leaf_path_reached", "origin_id", "nowhere"); got != 0 {
			t.Errorf("nowhere: reached %v", got)
		}
	})
}

// runUnprivilegedChild runs TestPathNetnsChild in the leaf's namespace as
// nobody (setpriv drops every capability with root's uid) and returns its
// results by origin.
func runUnprivilegedChild(t *testing.T, tp *pathTopology, port int) map[string]pathChildResult {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The test binary lives in a directory only root may enter: copy it
	// where nobody may run it.
	dir, err := os.MkdirTemp("", "oxcross-path-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	bin := filepath.Join(dir, "prober.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := tp.leaf.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
		bin, "-test.run=^TestPathNetnsChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", pathChildEnv, port))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the unprivileged child: %v\n%s", err, out)
	}
	results := map[string]pathChildResult{}
	for line := range strings.Lines(string(out)) {
		if js, ok := strings.CutPrefix(strings.TrimSpace(line), "PATHRESULT "); ok {
			var r pathChildResult
			if err := json.Unmarshal([]byte(js), &r); err != nil {
				t.Fatalf("the child's line %q: %v", line, err)
			}
			results[r.ID] = r
		}
	}
	if len(results) == 0 {
		t.Fatalf("no results from the child:\n%s", out)
	}
	return results
}

// TestPathNetnsChild is TestPathNetns's unprivileged child: it traces
// every origin of the path config and prints the results.
func TestPathNetnsChild(t *testing.T) {
	env := os.Getenv(pathChildEnv)
	if env == "" {
		t.Skip("the unprivileged child of TestPathNetns; runs only from it")
	}
	var port int
	if _, err := fmt.Sscan(env, &port); err != nil {
		t.Fatalf("%s=%q: %v", pathChildEnv, env, err)
	}
	kinds := DefaultKinds(slog.New(slog.DiscardHandler))
	cfg := pathConfig(t, kinds, port)
	p := NewProber("test", kinds)
	for i := range cfg.Origins {
		o := &cfg.Origins[i]
		if o.ID == "nowhere" || o.ID == "tcp4-quick" {
			continue // the parent's own cases
		}
		mod := cfg.Modules[o.Module]
		ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
		r := p.Probe(ctx, o, &mod, nil)
		cancel()
		res := pathChildResult{ID: o.ID, UID: os.Geteuid(), Reason: r.Reason}
		if r.Err != nil {
			res.Err = r.Err.Error()
		}
		if r.Path != nil {
			res.Reached, res.MTU = r.Path.Trace.Reached, r.Path.Trace.MTU
			for _, h := range r.Path.Trace.Hops {
				res.Hops = append(res.Hops, formatHops([]netip.Addr{h.Addr}))
			}
		}
		js, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("PATHRESULT %s\n", js)
	}
}
