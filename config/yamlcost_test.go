package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// yamlNodes counts the nodes of a tree as the YAML library built it:
// aliases count once, not what they point to.
func yamlNodes(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	c := 1
	for _, k := range n.Content {
		c += yamlNodes(k)
	}
	return c
}

// yamlNodeSeeds are YAML documents of every shape countYAMLNodes follows.
var yamlNodeSeeds = []string{
	"",
	"a",
	"a: b",
	"origins:\n  - name: x\n    url: http://h/\n    labels: {a: 1}\n",
	"origins:\n- name: x\n- name: y\nleaves:\n- id: a\n",
	`{"timeout": 10, "interval": 30, "origins": [{"scheme": "http", "hostname": "example.com", "port": 9301, "mode": "advanced"}]}`,
	"[0,0,0,0]",
	"origins: [0,0,0]\n",
	"{a, b, c}",
	"{a: , b: }",
	"[a: b, c: d]",
	"[? a, ? b]",
	"{? a, ? b: c}",
	"-\n-\n-\n",
	"- - - -\n",
	"a:\nb:\nc:\n",
	": a\n: b\n",
	"? a\n? b\n: c\n",
	"- !!str\n- !!null\n- &x\n- *x\n",
	"a: &x 1\nb: *x\nc: [*x, *x]\n",
	"a: |\n  text\n  - not: a node\n\nb: >-\n    folded\n    text\n",
	"a: |2\n    x\n  y\nb: c\n",
	"a: plain\n  continued - text\n  [still text]\nb: c\n",
	"a: 'single ''quoted'' : - x'\nb: \"double \\\" : - x\\\n  next\"\n",
	"# comment\na: b # comment\n# - c\n",
	"%YAML 1.2\n---\na: b\n...\n",
	"---\na: 1\n---\nb: 2\n",
	"a:\n  - x\n  - y\nb:\n- z\n- w\nc: d\n",
	"- a:\n  - x\n  b: c\n- d\n",
	"[a, [b, {c: d}], {e: [f]}]",
	"{a: {b: {c: [1, 2, {d: e}]}}}",
	"a\u2028- b\u2028- c",
	"a:\r\n  - b\r\n  - c\r\n",
	"\ufeffa: b\n",
	"\ufeff- a\n- b\n",
	"a\n\ufeff: b\n",
	"key: [a,\n  b,\n  c]\nother: {x: 1,\n y: 2}\n",
	"[a:1, b:2, :c]",
	"? - a\n  - b\n: - c\n",
	"- ? a\n  : b\n",
	"a: !!map {b: c}\n",
	"[!t, !t, !t]",
	"{!t : !t}",
	"- [\n]\n- {\n}\n",
}

// FuzzYAMLNodeCount: for any input the YAML library parses, the count is
// at least the number of nodes it built.
func FuzzYAMLNodeCount(f *testing.F) {
	for _, s := range yamlNodeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := countYAMLNodes([]byte(s), 0)
		var doc yaml.Node
		if yaml.Unmarshal([]byte(s), &doc) != nil {
			return
		}
		if errors.Is(err, errTwoBOMs) {
			return // refused, whatever the library makes of it
		}
		if err != nil {
			t.Fatalf("count of %q: %v, but the YAML library parsed it", s, err)
		}
		if want := yamlNodes(&doc); got < want {
			t.Errorf("count of %q = %d, the YAML library built %d nodes", s, got, want)
		}
	})
}

// TestYAMLNodeCountExact: configs as people write them are counted
// exactly, so that the limit refuses only what is far from any config.
func TestYAMLNodeCountExact(t *testing.T) {
	for _, s := range []string{
		"a: b",
		"origins:\n  - name: x\n    url: http://h/\n    labels: {a: 1}\n",
		"origins:\n- name: x\n- name: y\nleaves:\n- id: a\n",
		`{"timeout": 10, "interval": 30, "origins": [{"scheme": "http", "hostname": "example.com", "port": 9301, "mode": "advanced"}]}`,
		"origins: [0,0,0]\n",
		"a:\n  - x\n  - y\nb:\n- z\n- w\nc: d\n",
		"# comment\na: b # comment\n",
		"\ufeffa: b\n",
		"\xff\xfea\x00:\x00 \x00b\x00",
		"modules:\n  m:\n    kind: http\n    headers:\n      X-A: \"1\"\n",
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
			t.Fatal(err)
		}
		got, err := countYAMLNodes([]byte(s), 0)
		if want := yamlNodes(&doc); err != nil || got != want {
			t.Errorf("count of %q = %d, %v; want %d", s, got, err, want)
		}
	}
}

func TestYAMLNodeCountSeeds(t *testing.T) {
	for _, s := range yamlNodeSeeds {
		var doc yaml.Node
		if yaml.Unmarshal([]byte(s), &doc) != nil {
			continue
		}
		got, err := countYAMLNodes([]byte(s), 0)
		if want := yamlNodes(&doc); err != nil || got < want {
			t.Errorf("count of %q = %d, %v; the YAML library built %d", s, got, err, want)
		} else if got > 2*want+2 {
			t.Logf("count of %q = %d, built %d", s, got, want)
		}
	}
}

// TestNodesPerOriginCoversFullestOrigin: an origin with every key it may
// have together, MaxLabels labels and a leaf selector of as many, fits in
// nodesPerOrigin, so that the node limit never refuses a config of at most
// MaxOrigins valid origins for their sake.
func TestNodesPerOriginCoversFullestOrigin(t *testing.T) {
	var b strings.Builder
	b.WriteString("origins:\n  - name: o\n    scheme: http\n    hostname: h.example\n    port: 9301\n    path: /healthz\n    mode: simple\n    interval: 30s\n    timeout: 5s\n    labels:\n")
	for j := range MaxLabels {
		fmt.Fprintf(&b, "      l%d: v%d\n", j, j)
	}
	b.WriteString("    leaf_selector:\n")
	for j := range MaxLabels {
		fmt.Fprintf(&b, "      s%d: v%d\n", j, j)
	}
	n, err := countYAMLNodes([]byte(b.String()), 0)
	if err != nil {
		t.Fatal(err)
	}
	// Less the document, its mapping, the origins key and the list.
	if per := n - 4; per > nodesPerOrigin {
		t.Errorf("the fullest origin is %d YAML nodes, more than nodesPerOrigin = %d", per, nodesPerOrigin)
	} else {
		t.Logf("the fullest origin is %d YAML nodes", per)
	}
}

// BenchmarkCountYAMLNodes is the scan that every parse now starts with,
// over a config of 10,000 origins as people write them (880 KB).
func BenchmarkCountYAMLNodes(b *testing.B) {
	var s strings.Builder
	s.WriteString("interval: 10s\ntimeout: 5s\norigins:\n")
	for i := range 10_000 {
		if i%2 == 0 {
			fmt.Fprintf(&s, "  - scheme: https\n    hostname: edge%d.example.com\n    port: 443\n    mode: advanced\n", i)
		} else {
			fmt.Fprintf(&s, "  - name: api-%d\n    url: https://api%d.example.com/healthz\n    mode: simple\n", i, i)
		}
	}
	data := []byte(s.String())
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := countYAMLNodes(data, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// TestYAMLNodeCountTwoBOMs: text that starts with a second byte order mark
// is refused: the YAML library then skips characters at the start of lines,
// which no count follows.
func TestYAMLNodeCountTwoBOMs(t *testing.T) {
	for _, s := range []string{"\ufeff\ufeffa: b\n", "\xff\xfe\xff\xfea\x00"} {
		if _, err := countYAMLNodes([]byte(s), 0); !errors.Is(err, errTwoBOMs) {
			t.Errorf("count of %q: %v, want %v", s, err, errTwoBOMs)
		}
	}
}
