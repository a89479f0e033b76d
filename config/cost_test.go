package config_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
)

// flowList returns `origins: [0,0,…]` of exactly size bytes: the cheapest
// way to many YAML nodes (issue 13, #12).
func flowList(size int) []byte {
	const head, tail = "origins: [", "0]\n"
	n := (size - len(head) - len(tail)) / 2
	b := make([]byte, 0, size)
	b = append(b, head...)
	for range n {
		b = append(b, "0,"...)
	}
	b = append(b, tail...)
	for len(b) < size {
		b = append(b, '\n')
	}
	return b
}

// fullestOrigin is a valid origin with every key it may have together, 32
// labels and a 32-label leaf selector: the most YAML nodes an origin needs.
func fullestOrigin(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: o%d\n    scheme: http\n    hostname: h%d.example\n    port: 9301\n    path: /healthz\n    mode: simple\n    interval: 30s\n    timeout: 5s\n", i, i)
	b.WriteString("    labels:\n")
	for j := range config.MaxLabels {
		fmt.Fprintf(&b, "      l%d: v%d\n", j, j)
	}
	b.WriteString("    leaf_selector:\n")
	for j := range config.MaxLabels {
		fmt.Fprintf(&b, "      s%d: v%d\n", j, j)
	}
	return b.String()
}

// TestLimitsNodesFlowList replays #12: a 16 MiB flow list under the
// default limits cost 10.5 s and 1.7 GB in --config.check before the
// origin limit refused it. Now the node limit refuses it before the YAML
// library builds anything, naming the limit and the flag.
func TestLimitsNodesFlowList(t *testing.T) {
	data := flowList(config.MaxConfigBytes)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := kinds.Parser(config.DefaultLimits).Parse(data)
	runtime.ReadMemStats(&after)
	want := fmt.Sprintf("more than %d YAML nodes", config.DefaultLimits.MaxNodes())
	if err == nil || !containsAll(err.Error(), want, "10000 origins (--config.max-origins)", "refused before parsing") {
		t.Fatalf("16 MiB flow list: %v, want %q", err, want)
	}
	// The YAML tree of 8 million nodes took 1.8 GB; refusing it now
	// allocates next to nothing.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("refusing the flow list allocated %d MiB, want almost nothing", alloc>>20)
	}

	// --config.check says the same.
	path := filepath.Join(t.TempDir(), "flow.yaml")
	testutil.WriteFile(t, path, string(data))
	var out, errOut bytes.Buffer
	if code := config.Check(path, kinds.Parser(config.DefaultLimits), &out, &errOut); code != 1 || !containsAll(errOut.String(), "FAILED: ", want, "--config.max-origins") {
		t.Errorf("--config.check of the flow list: status %d, %q", code, errOut.String())
	}
}

// TestLimitsNodesFullestConfig: the node limit never refuses a config the
// other limits accept: as many origins as allowed, each the fullest one
// may be, load, in YAML and as the JSON the configserver serves.
func TestLimitsNodesFullestConfig(t *testing.T) {
	lim := config.Limits{MaxOrigins: 100}
	var b strings.Builder
	b.WriteString("origins:\n")
	for i := range lim.MaxOrigins {
		b.WriteString(fullestOrigin(i))
	}
	p := kinds.Parser(lim)
	cfg, err := p.Parse([]byte(b.String()))
	if err != nil {
		t.Fatalf("%d fullest origins with a limit of %d: %v", lim.MaxOrigins, lim.MaxOrigins, err)
	}
	snap, err := config.NewSnapshot(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ParseView(snap.Body); err != nil {
		t.Errorf("the served JSON of %d fullest origins: %v", lim.MaxOrigins, err)
	}
	// More YAML than any valid config of 100 origins needs is refused,
	// whatever it holds.
	junk := b.String() + "leaves: [" + strings.Repeat("0,", lim.MaxNodes()) + "0]\n"
	if _, err := p.Parse([]byte(junk)); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("more than %d YAML nodes", lim.MaxNodes())) {
		t.Errorf("100 origins and %d more nodes: %v", lim.MaxNodes(), err)
	}
}

// TestLimitsNodesNone: without an origin limit there is no node limit
// either; the size of the file still bounds it.
func TestLimitsNodesNone(t *testing.T) {
	if n := (config.Limits{}).MaxNodes(); n != 0 {
		t.Errorf("MaxNodes without limits = %d, want 0", n)
	}
	if n := config.DefaultLimits.MaxNodes(); n != 1_700_000 {
		t.Errorf("MaxNodes by default = %d, want 1,700,000 (docs/configuration.md says so)", n)
	}
	_, err := parser.Parse([]byte("origins: [" + strings.Repeat("0,", 1000) + "0]\n"))
	if err == nil || strings.Contains(err.Error(), "YAML nodes") || !strings.Contains(err.Error(), "origins[1000]") {
		t.Errorf("1001 bad origins without limits: want an error per origin, got %.200v", err)
	}
}

// TestLimitsNodesDepth: nesting deeper than the YAML library allows is
// refused by the count too, with the same message.
func TestLimitsNodesDepth(t *testing.T) {
	deep := "origins: " + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + "\n"
	_, err := kinds.Parser(config.DefaultLimits).Parse([]byte(deep))
	if err == nil || !strings.Contains(err.Error(), "nested more than 10000 levels deep") {
		t.Errorf("10001 nested lists: %v", err)
	}
}

// BenchmarkParseHostile measures what a hostile config costs under the
// default limits: the 16 MiB flow list of #12 (refused by the node count)
// and the worst a config can cost now, a flow list just within the node
// limit (parsed, then refused by the origin limit).
func BenchmarkParseHostile(b *testing.B) {
	p := kinds.Parser(config.DefaultLimits)
	for _, bc := range []struct {
		name string
		data []byte
	}{
		{"flow-list-16MiB", flowList(config.MaxConfigBytes)},
		{"flow-list-at-node-limit", flowList(2 * (config.DefaultLimits.MaxNodes() - 8))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.data)))
			for b.Loop() {
				if _, err := p.Parse(bc.data); err == nil {
					b.Fatal("parsed")
				}
			}
		})
	}
}
