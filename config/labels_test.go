package config_test

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
)

func manyLabels(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("l%d: v%d", i, i)
	}
	return strings.Join(parts, ", ")
}

// labelsOfBytes returns leaf labels whose names and values take n bytes
// together: two-character names (l0, l1, ...) and values of up to 200
// bytes.
func labelsOfBytes(n int) map[string]string {
	m := map[string]string{}
	for i := 0; n > 0; i++ {
		k := fmt.Sprintf("l%d", i)
		v := strings.Repeat("v", min(200, max(n-len(k), 0)))
		m[k] = v
		n -= len(k) + len(v)
	}
	return m
}

// flowLabels writes labels as a YAML flow mapping, in name order.
func flowLabels(labels map[string]string) string {
	parts := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+": "+labels[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func manyLabelsMap(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("l%d", i)] = fmt.Sprintf("v%d", i)
	}
	return m
}

// TestOriginLabels: an origin's labels, for service discovery.
func TestOriginLabels(t *testing.T) {
	const s = time.Second
	checkOrigins(t, []originCase{
		{
			name:   "labels, non-string scalar values become strings",
			in:     "origins:\n  - url: http://h\n    labels: {a: 1, b_c: true, _d: x}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-80-http", URL: "http://h/oxcross", Module: "advanced", Interval: 10 * s, Timeout: 10 * s, Labels: map[string]string{"a": "1", "b_c": "true", "_d": "x"}},
		},
		{
			name:   "empty labels are no labels",
			in:     "origins:\n  - url: http://h\n    labels: {}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-80-http", URL: "http://h/oxcross", Module: "advanced", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "maximal number of labels",
			in:     "origins:\n  - url: http://h\n    labels: {" + manyLabels(config.MaxLabels) + "}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-80-http", URL: "http://h/oxcross", Module: "advanced", Interval: 10 * s, Timeout: 10 * s, Labels: manyLabelsMap(config.MaxLabels)},
		},
	})
}

func TestLabelErrors(t *testing.T) {
	checkErrors(t, []errorCase{
		// Labels.
		{"label name starting with a digit", "origins:\n  - url: http://h\n    labels:\n      1abc: x\n", []string{"line 4", "origins[0]", "labels", `"1abc"`}},
		{"label name with a dash", "origins:\n  - url: http://h\n    labels:\n      a-b: x\n", []string{"line 4", "origins[0]", "labels", `"a-b"`}},
		{"label name with double underscore", "origins:\n  - url: http://h\n    labels:\n      __meta: x\n", []string{"line 4", "origins[0]", "labels", `"__meta"`}},
		{"reserved label origin_id", "origins:\n  - url: http://h\n    labels:\n      origin_id: x\n", []string{"line 4", "origins[0]", "labels", `"origin_id"`}},
		{"reserved label job", "origins:\n  - url: http://h\n    labels:\n      job: x\n", []string{"line 4", "origins[0]", "labels", `"job"`}},
		{"reserved label source_id", "origins:\n  - url: http://h\n    labels: {source_id: x}\n", []string{"line 3", "origins[0]", "labels", `"source_id"`}},
		{"label twice", "origins:\n  - url: http://h\n    labels:\n      a: x\n      a: y\n", []string{"line 5", "origins[0]", "labels", `"a"`, "twice"}},
		{"too many labels", "origins:\n  - url: http://h\n    labels: {" + manyLabels(config.MaxLabels+1) + "}\n", []string{"line 3", "origins[0]", "labels", "33"}},
		{"label value too long", "origins:\n  - url: http://h\n    labels:\n      a: " + strings.Repeat("v", config.MaxLabelValueLength+1) + "\n", []string{"line 4", "origins[0]", "labels", "a"}},
		{"label value a list", "origins:\n  - url: http://h\n    labels:\n      a: [x]\n", []string{"line 4", "origins[0]", "labels", "want a string"}},
		{"labels a list", "origins:\n  - url: http://h\n    labels: [a]\n", []string{"line 3", "origins[0]", "labels", "want a mapping"}},
		{"label name too long", "origins:\n  - url: http://h\n    labels: {" + strings.Repeat("n", 129) + ": x}\n", []string{"line 3", "origins[0]", "labels", "is not a valid label name"}},
	})
}

// TestLeafSelector: an origin's leaf_selector takes any valid label names,
// those Oxcross sets included (a leaf's labels may hold them).
func TestLeafSelector(t *testing.T) {
	cfg := mustParse(t, []byte(`origins:
  - url: http://a
    leaf_selector: {region: eu, job: edge}
  - url: http://b
    leaf_selector: {}
  - url: http://c
`))
	want := []map[string]string{{"region": "eu", "job": "edge"}, nil, nil}
	for i, w := range want {
		if got := cfg.Origins[i].LeafSelector; !reflect.DeepEqual(got, w) {
			t.Errorf("origins[%d]: leaf_selector %v, want %v", i, got, w)
		}
	}
	checkErrors(t, []errorCase{
		{"selector a list", "origins:\n  - url: http://h\n    leaf_selector: [a]\n", []string{"line 3", "origins[0]: leaf_selector: want a mapping, got a list"}},
		{"selector label name", "origins:\n  - url: http://h\n    leaf_selector: {a-b: x}\n", []string{"line 3", `origins[0]: leaf_selector: "a-b" is not a valid label name`}},
		{"selector value a mapping", "origins:\n  - url: http://h\n    leaf_selector:\n      a: {b: c}\n", []string{"line 4", "origins[0]: leaf_selector: a: want a string"}},
		{"selector too many labels", "origins:\n  - url: http://h\n    leaf_selector: {" + manyLabels(config.MaxLabels+1) + "}\n", []string{"line 3", "origins[0]: leaf_selector: 33 labels, at most 32"}},
	})
}

// TestStaticLeaves: the leaves a config lists, always in /sd/leaves.
func TestStaticLeaves(t *testing.T) {
	cfg := mustParse(t, []byte(`leaves:
  - id: ams-1
    address: 192.0.2.1:9299
    labels: {region: eu, rack: "7"}
  - {id: nyc.2_b, address: 'leaf.example.com:9299'}
  - {id: v6, address: '[2001:db8::1]:9299', labels: {}}
origins: [{url: 'http://h'}]
`))
	want := []config.StaticLeaf{
		{ID: "ams-1", Address: "192.0.2.1:9299", Labels: map[string]string{"region": "eu", "rack": "7"}},
		{ID: "nyc.2_b", Address: "leaf.example.com:9299"},
		{ID: "v6", Address: "[2001:db8::1]:9299"},
	}
	if !reflect.DeepEqual(cfg.Leaves, want) {
		t.Errorf("leaves\n got  %+v\n want %+v", cfg.Leaves, want)
	}
	if cfg := mustParse(t, []byte("origins: [{url: 'http://h'}]\n")); cfg.Leaves != nil {
		t.Errorf("a config without leaves has leaves %+v", cfg.Leaves)
	}
}

func TestStaticLeafErrors(t *testing.T) {
	const origin = "origins: [{url: 'http://h'}]\n"
	checkErrors(t, []errorCase{
		{"leaves a mapping", "leaves: {a: b}\n" + origin, []string{"line 1", "leaves: want a list, got a mapping"}},
		{"leaf a scalar", "leaves: [a]\n" + origin, []string{"line 1", `leaves[0]: want a mapping, got "a"`}},
		{"unknown leaf field", "leaves:\n  - id: a\n    address: 'h:1'\n    ip: h\n" + origin, []string{"line 4", `leaves[0]: unknown field "ip" (known: id, address, labels)`}},
		{"id missing", "leaves:\n  - {address: 'h:1'}\n" + origin, []string{"line 2", `leaves[0]: id: leaf id "" must be 1-128 letters, digits`}},
		{"id with a slash", "leaves:\n  - {id: a/b, address: 'h:1'}\n" + origin, []string{"line 2", `leaves[0]: id: leaf id "a/b"`}},
		{"id ..", "leaves:\n  - {id: '..', address: 'h:1'}\n" + origin, []string{"line 2", `leaves[0]: id: leaf id ".."`}},
		{"id a list", "leaves:\n  - {id: [a], address: 'h:1'}\n" + origin, []string{"line 2", "leaves[0]: id: want a string"}},
		{"id twice", "leaves:\n  - {id: a, address: 'h:1'}\n  - {id: b, address: 'h:2'}\n  - {id: a, address: 'h:3'}\n" + origin, []string{"line 4", `leaves[2]: id "a" is already used by leaves[0]`}},
		{"address missing", "leaves:\n  - {id: a}\n" + origin, []string{"line 2", `leaves[0]: address: "" is not host:port`}},
		{"address without port", "leaves:\n  - {id: a, address: h}\n" + origin, []string{"line 2", `leaves[0]: address: "h" is not host:port`}},
		{"address port 0", "leaves:\n  - {id: a, address: 'h:0'}\n" + origin, []string{"line 2", `leaves[0]: address: port "0" is outside 1-65535`}},
		{"address not ASCII", "leaves:\n  - {id: a, address: 'bücher.example:1'}\n" + origin, []string{"line 2", `leaves[0]: address: host "bücher.example" is not a host name or IP address`}},
		{"leaf label reserved", "leaves:\n  - id: a\n    address: 'h:1'\n    labels: {leaf_id: x}\n" + origin, []string{"line 4", `leaves[0]: labels: "leaf_id" is set by Oxcross and cannot be configured`}},
		{"leaf label value too long", "leaves:\n  - id: a\n    address: 'h:1'\n    labels:\n      a: " + strings.Repeat("v", config.MaxLabelValueLength+1) + "\n" + origin, []string{"line 5", "leaves[0]: labels: a: value longer than 256 characters"}},
		{"leaf labels over the budget", "leaves:\n  - {id: a, address: 'h:1'}\n  - id: b\n    address: 'h:2'\n    labels: " + flowLabels(labelsOfBytes(config.MaxLeafLabelBytes+1)) + "\n" + origin, []string{"line 5", "leaves[1]: labels: 1025 bytes of names and values, at most 1024 are allowed per leaf"}},
	})
	// At the budget, a static leaf's labels are fine.
	text := "leaves:\n  - id: a\n    address: 'h:1'\n    labels: " + flowLabels(labelsOfBytes(config.MaxLeafLabelBytes)) + "\n" + origin
	if cfg, err := parser.Parse([]byte(text)); err != nil || len(cfg.Leaves) != 1 {
		t.Errorf("a static leaf with labels of %d bytes: %v", config.MaxLeafLabelBytes, err)
	}
}

func TestValidateLeafID(t *testing.T) {
	for _, id := range []string{"a", "leaf-1", "ams.1_x", "A.B-c_9", "...", strings.Repeat("n", config.MaxLeafIDLength)} {
		if err := config.ValidateLeafID(id); err != nil {
			t.Errorf("ValidateLeafID(%q): %v", id, err)
		}
	}
	for _, id := range []string{"", ".", "..", strings.Repeat("n", config.MaxLeafIDLength+1), "a/b", "a b", "a:b", "zürich", "a\x00b", "a\n"} {
		err := config.ValidateLeafID(id)
		if err == nil {
			t.Errorf("ValidateLeafID(%q) accepted", id)
			continue
		}
		if !strings.Contains(err.Error(), "must be 1-128 letters, digits") {
			t.Errorf("ValidateLeafID(%q): %v", id, err)
		}
	}
	// A long id is quoted shortened.
	if err := config.ValidateLeafID(strings.Repeat("x", 1000) + "/"); err == nil || len(err.Error()) > 200 || !strings.Contains(err.Error(), "…") {
		t.Errorf("ValidateLeafID of a long id: %v", err)
	}
}

func TestValidateAddress(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:9299", "[::1]:9299", "leaf.example.com:1", "h:65535", "xn--bcher-kva.example:80", "[fe80::1%eth0]:9299"} {
		if err := config.ValidateAddress(addr); err != nil {
			t.Errorf("ValidateAddress(%q): %v", addr, err)
		}
	}
	for _, tc := range []struct{ addr, want string }{
		{"", `"" is not host:port`},
		{"h", `"h" is not host:port`},
		{"a:b:80", `"a:b:80" is not host:port`},
		{"h:0", `port "0" is outside 1-65535`},
		{"h:65536", `port "65536" is outside 1-65535`},
		{"h:http", `port "http" is not 1-65535 in plain digits`},
		{":80", `host "" is not a host name or IP address`},
		{"a b:80", `host "a b" is not`},
		{"a/b:80", `host "a/b" is not`},
		{"u@h:80", `host "xxxxx@h" is not`}, // a userinfo is never shown
		{"bücher.example:80", `host "bücher.example" is not`},
		{"a\x00b:80", "is not a host name or IP address"},
		{strings.Repeat("a", 254) + ":80", "is not a host name or IP address"},
		{strings.Repeat("a", 1000), "…"},
	} {
		err := config.ValidateAddress(tc.addr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ValidateAddress(%.40q) = %v, want an error containing %q", tc.addr, err, tc.want)
		}
		if err != nil && len(err.Error()) > 200 {
			t.Errorf("ValidateAddress(%.40q): error of %d bytes; long inputs are shortened", tc.addr, len(err.Error()))
		}
	}
}

func TestValidateLabels(t *testing.T) {
	for _, labels := range []map[string]string{
		nil,
		{"region": "eu"},
		{"_x": "", "a1": strings.Repeat("v", config.MaxLabelValueLength)},
		manyLabelsMap(config.MaxLabels),
		labelsOfBytes(config.MaxLeafLabelBytes),
	} {
		if err := config.ValidateLabels(labels); err != nil {
			t.Errorf("ValidateLabels(%v): %v", labels, err)
		}
	}
	for _, tc := range []struct {
		labels map[string]string
		want   string
	}{
		{manyLabelsMap(config.MaxLabels + 1), "33 labels, at most 32 are allowed"},
		{map[string]string{"1a": "x"}, `label "1a" is not a valid label name`},
		{map[string]string{"a-b": "x"}, `label "a-b" is not a valid label name`},
		{map[string]string{"__name__": "x"}, `label "__name__" is not a valid label name`},
		{map[string]string{"": "x"}, `label "" is not a valid label name`},
		{map[string]string{strings.Repeat("n", 129): "x"}, "is not a valid label name"},
		{map[string]string{"job": "x"}, `label "job" is set by Oxcross and cannot be configured`},
		{map[string]string{"source_id": "x"}, `label "source_id" is set by Oxcross`},
		{map[string]string{"a": strings.Repeat("v", config.MaxLabelValueLength+1)}, "label a: value longer than 256 characters"},
		{map[string]string{"a": "\xff"}, "label a: value is not UTF-8"},
		{labelsOfBytes(config.MaxLeafLabelBytes + 1), "1025 bytes of names and values, at most 1024 are allowed per leaf"},
	} {
		if err := config.ValidateLabels(tc.labels); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ValidateLabels(%.60v) = %v, want an error containing %q", tc.labels, err, tc.want)
		}
	}
}

func TestParseLabelFlag(t *testing.T) {
	for _, tc := range []struct{ in, k, v string }{
		{"region=eu", "region", "eu"},
		{"region=eu=west", "region", "eu=west"},
		{"empty=", "empty", ""},
	} {
		k, v, err := config.ParseLabelFlag(tc.in)
		if err != nil || k != tc.k || v != tc.v {
			t.Errorf("ParseLabelFlag(%q) = %q, %q, %v; want %q, %q", tc.in, k, v, err, tc.k, tc.v)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"region", "want key=value"},
		{"", "want key=value"},
		{"=eu", "is not a valid label name"},
		{"a-b=c", `"a-b" is not a valid label name`},
		{"instance=x", `"instance" is set by Oxcross`},
		{"leaf_id=x", `"leaf_id" is set by Oxcross`},
		{"__x=1", `"__x" is not a valid label name`},
		{"a=" + strings.Repeat("v", config.MaxLabelValueLength+1), "value longer than"},
	} {
		if _, _, err := config.ParseLabelFlag(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseLabelFlag(%.40q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}
