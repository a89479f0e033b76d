package prober

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
)

// trainChildEnv, when set, makes TestTrainLossNetns the child the test
// runs inside the leaf's namespace: "<kind> <target>". The child probes
// once and prints its result on a line starting with trainResultPrefix.
const (
	trainChildEnv     = "OXCROSS_TRAIN_NETNS_CHILD"
	trainResultPrefix = "TRAIN-RESULT "
	trainPackets      = 200
	trainInterval     = 5 * time.Millisecond
	trainTimeout      = 4 * time.Second
)

// trainChildResult is what the child reports.
type trainChildResult struct {
	Sent, Received int
	Reason         Reason
	Err            string
	// Log is the leaf's log: which ICMP socket it used.
	Log string
	UID int
	// Took is how long the probe took.
	Took time.Duration
}

// TestTrainLossNetns measures loss for real: the leaf and the origin each
// in a network namespace the test creates, joined by a veth pair, and in
// the origin's namespace an iptables rule that drops 30% of incoming
// packets at random. A train of 200 packets must measure a loss of
// 0.3 ± 0.1 with the rule (four binomial standard deviations, 0.032
// each), and exactly 0 without it. Kinds: icmp over a raw socket (root,
// the namespace refusing unprivileged ICMP sockets), icmp over an
// unprivileged ICMP socket (as user nobody, with net.ipv4.ping_group_range
// opened in the namespace), and tcp (each packet a handshake).
//
// The probes must run inside the leaf's namespace, and the tcp kind opens
// its sockets on goroutines of its own, so the test runs its own binary
// there (`ip netns exec`), as the child that trainChildEnv selects.
func TestTrainLossNetns(t *testing.T) {
	if spec := os.Getenv(trainChildEnv); spec != "" {
		trainChild(t, spec)
		return
	}
	testutil.RequireNetns(t, "netns.txt", "iptables", "setpriv")
	leaf, origin := testutil.NewNetns(t), testutil.NewNetns(t)
	const leafIP, originIP = "10.77.0.1", "10.77.0.2"
	testutil.LinkNetns(t, leaf, leafIP+"/24", origin, originIP+"/24")

	// The origin's TCP service, on a socket of the origin's namespace.
	var l net.Listener
	origin.Do(func() {
		var err error
		if l, err = net.Listen("tcp4", originIP+":0"); err != nil {
			t.Errorf("listening in %s: %v", origin.Name, err)
		}
	})
	if l == nil {
		t.FailNow()
	}
	testutil.ServeConns(t, l, func(c net.Conn) { _ = c.Close() })

	// The child runs as nobody too: a copy of the test binary it may run.
	bin := childBinary(t)

	run := func(t *testing.T, asNobody bool, kind, target string) trainChildResult {
		t.Helper()
		args := []string{}
		if asNobody {
			args = append(args, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--")
		}
		args = append(args, bin, "-test.run=^TestTrainLossNetns$", "-test.count=1", "-test.v")
		cmd := leaf.Command(args...)
		cmd.Env = append(os.Environ(), trainChildEnv+"="+kind+" "+target)
		cmd.Dir = filepath.Dir(bin)
		out, err := cmd.CombinedOutput()
		for line := range strings.Lines(string(out)) {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), trainResultPrefix); ok {
				var r trainChildResult
				if err := json.Unmarshal([]byte(rest), &r); err != nil {
					t.Fatalf("child's result %q: %v", rest, err)
				}
				return r
			}
		}
		t.Fatalf("child (%s %s) printed no result (%v):\n%s", kind, target, err, out)
		return trainChildResult{}
	}
	dropRule := []string{"INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.3", "-j", "DROP"}
	pingGroups := "/proc/sys/net/ipv4/ping_group_range"

	for _, tc := range []struct {
		name     string
		kind     string
		target   string
		asNobody bool
		socket   string // the log line that names the ICMP socket
	}{
		{name: "icmp raw socket", kind: "icmp", target: originIP, socket: "raw sockets"},
		{name: "icmp unprivileged socket", kind: "icmp", target: originIP, asNobody: true, socket: "unprivileged ICMP sockets"},
		{name: "tcp", kind: "tcp", target: l.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A new namespace refuses unprivileged ICMP sockets to every
			// group (root's included); open them for the case that uses
			// them.
			groups := "1 0"
			if tc.asNobody {
				groups = "0 2147483647"
			}
			leaf.Run("sh", "-c", fmt.Sprintf("echo '%s' > %s", groups, pingGroups))

			clean := run(t, tc.asNobody, tc.kind, tc.target)
			t.Logf("without the rule: sent %d, received %d (%s), child uid %d", clean.Sent, clean.Received, clean.Reason, clean.UID)
			if clean.Sent != trainPackets || clean.Received != trainPackets || clean.Reason != ReasonOK {
				t.Errorf("without the rule: sent %d, received %d (%s %s), want %d of %d", clean.Sent, clean.Received, clean.Reason, clean.Err, trainPackets, trainPackets)
			}
			if tc.asNobody && clean.UID != 65534 {
				t.Errorf("child ran as uid %d, want 65534 (nobody)", clean.UID)
			}
			if tc.socket != "" && !strings.Contains(clean.Log, "ICMP probes use "+tc.socket) {
				t.Errorf("the leaf did not use %s; its log:\n%s", tc.socket, clean.Log)
			}

			// The rule drops each packet with probability 0.3: its count of
			// 200 is binomial, sd 6.5, so 0.3 ± 0.1 holds with 99.8%
			// probability. A draw outside it (the rule's own counter says
			// which) is the kernel's dice, not the prober: draw once more
			// then, and fail only if the second is outside too.
			var lossy trainChildResult
			var loss float64
			for attempt := 1; ; attempt++ {
				origin.Run(append([]string{"iptables", "-A"}, dropRule...)...)
				lossy = run(t, tc.asNobody, tc.kind, tc.target)
				dropped := droppedBy(t, origin)
				origin.Run(append([]string{"iptables", "-D"}, dropRule...)...)
				loss = float64(lossy.Sent-lossy.Received) / float64(lossy.Sent)
				t.Logf("with 30%% random drop: sent %d, received %d: loss %.3f (%s); the rule dropped %d packets", lossy.Sent, lossy.Received, loss, lossy.Reason, dropped)
				// The echo requests are the only IPv4 packets the origin's
				// namespace receives: each one the rule dropped is a loss,
				// and no other. (A tcp train's handshakes also bring ACKs,
				// FINs and resets the rule may drop.)
				if tc.kind == "icmp" && dropped != lossy.Sent-lossy.Received {
					t.Errorf("%d echo requests unanswered, but the rule dropped %d", lossy.Sent-lossy.Received, dropped)
				}
				if math.Abs(loss-0.3) <= 0.1 || attempt == 2 {
					break
				}
				t.Logf("a loss of %.3f is outside 0.3 ± 0.1, a draw of p ≈ 0.2%%: drawing again", loss)
			}
			if lossy.Sent != trainPackets || math.Abs(loss-0.3) > 0.1 {
				t.Errorf("with the rule: sent %d, received %d: loss %.3f, want %d sent and 0.3 ± 0.1 (%s)", lossy.Sent, lossy.Received, loss, trainPackets, lossy.Err)
			}
			if lossy.Reason != ReasonOK {
				t.Errorf("with the rule: reason %s (%s), want ok: some packets were answered", lossy.Reason, lossy.Err)
			}
		})
	}

	// An address the leaf's namespace has no route to: the kernel refuses
	// every packet at once, and the probe says so without waiting for the
	// timeout.
	t.Run("unroutable", func(t *testing.T) {
		for _, tc := range []struct{ kind, target string }{{"icmp", "10.99.0.1"}, {"tcp", "10.99.0.1:80"}} {
			r := run(t, false, tc.kind, tc.target)
			t.Logf("%s to %s: sent %d, received %d, %s after %v: %s", tc.kind, tc.target, r.Sent, r.Received, r.Reason, r.Took, r.Err)
			want := map[string]Reason{"icmp": ReasonICMP, "tcp": ReasonConnect}[tc.kind]
			if r.Sent != trainPackets || r.Received != 0 || r.Reason != want || !strings.Contains(r.Err, "unreachable") {
				t.Errorf("%s: sent %d, received %d, %s (%s); want %d sent, none received, %s: network unreachable", tc.kind, r.Sent, r.Received, r.Reason, r.Err, trainPackets, want)
			}
			if r.Took >= trainTimeout {
				t.Errorf("%s: a train the kernel refused took %v, the whole timeout", tc.kind, r.Took)
			}
		}
	})
}

// droppedBy returns how many packets the statistic rule of ns's INPUT
// chain dropped.
func droppedBy(t *testing.T, ns *testutil.Netns) int {
	t.Helper()
	out := ns.Run("iptables", "-L", "INPUT", "-v", "-x", "-n")
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "DROP" && strings.Contains(line, "statistic") {
			n, err := strconv.Atoi(f[0])
			if err != nil {
				t.Fatalf("iptables counter %q: %v", f[0], err)
			}
			return n
		}
	}
	t.Fatalf("no statistic DROP rule in INPUT:\n%s", out)
	return 0
}

// childBinary copies the test binary where user nobody may run it.
func childBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "oxcross-train-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	bin := filepath.Join(dir, "prober.test")
	out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

// trainChild probes spec's target once with a train and prints the
// result.
func trainChild(t *testing.T, spec string) {
	kind, target, _ := strings.Cut(spec, " ")
	var logs testutil.SyncBuffer
	p := NewProber("oxcross-test", DefaultKinds(slog.New(slog.NewTextHandler(&logs, nil))))
	ts := TrainSettings{Packets: trainPackets, PacketInterval: Duration(trainInterval)}
	m := config.Module{Kind: kind, Settings: &ICMPSettings{ts}}
	if kind == "tcp" {
		m.Settings = &TCPSettings{TrainSettings: ts}
	}
	tg := config.Target{ID: "origin", Address: target, Module: kind, Interval: time.Minute, Timeout: trainTimeout}
	ctx, cancel := context.WithTimeout(context.Background(), trainTimeout)
	defer cancel()
	start := time.Now()
	r := p.Probe(ctx, &tg, &m, nil)
	out := trainChildResult{Reason: r.Reason, Log: logs.String(), UID: os.Getuid(), Took: time.Since(start)}
	if r.Err != nil {
		out.Err = r.Err.Error()
	}
	if r.Train != nil {
		out.Sent, out.Received = r.Train.Sent, r.Train.Received
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "\n%s%s\n", trainResultPrefix, bytes.TrimSpace(b))
	_ = w.Flush()
}
