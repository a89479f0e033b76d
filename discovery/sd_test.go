package discovery_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/discovery"
)

// promGroup is Prometheus' http_sd target group as its decoder reads it
// (targetgroup.Group): targets and a label set, nothing else.
type promGroup struct {
	Targets []string       `json:"targets"`
	Labels  model.LabelSet `json:"labels"`
}

// decodeHTTPSD decodes data as Prometheus' http_sd does and says, with
// every problem found, what a Prometheus with the classic (legacy) label
// name rules would refuse: anything but a list (null included), trailing
// data, targets that are not host[:port], invalid label names, values
// that are not UTF-8. groups is nil when data does not decode.
func decodeHTTPSD(data []byte) (groups []promGroup, err error) {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil, errors.New("null, want a list")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&groups); err != nil {
		return nil, fmt.Errorf("Prometheus cannot decode it: %w", err)
	}
	if groups == nil {
		return nil, errors.New("not a list")
	}
	var errs []error
	if dec.More() {
		errs = append(errs, errors.New("trailing data"))
	}
	for i, g := range groups {
		if len(g.Targets) == 0 {
			errs = append(errs, fmt.Errorf("group %d has no targets", i))
		}
		for _, tg := range g.Targets {
			// host:port, or a bare host (icmp origins).
			if _, _, err := net.SplitHostPort(tg); tg == "" || strings.ContainsAny(tg, "/ \t\r\n") || (err != nil && strings.Contains(tg, ":")) {
				errs = append(errs, fmt.Errorf("group %d: target %q is not host[:port]", i, tg))
			}
		}
		for name, value := range g.Labels {
			if !model.LegacyValidation.IsValidLabelName(string(name)) {
				errs = append(errs, fmt.Errorf("group %d: label name %q is not valid for Prometheus", i, name))
			}
			if !utf8.ValidString(string(value)) {
				errs = append(errs, fmt.Errorf("group %d: label %s value is not UTF-8", i, name))
			}
		}
		if err := g.Labels.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("group %d: %w", i, err))
		}
	}
	return groups, errors.Join(errs...)
}

// checkHTTPSD checks data with decodeHTTPSD and returns its groups.
func checkHTTPSD(t *testing.T, data []byte) []promGroup {
	t.Helper()
	groups, err := decodeHTTPSD(data)
	if groups == nil {
		t.Fatalf("http_sd body %s: %v", data, err)
	}
	if err != nil {
		t.Errorf("http_sd body %s: %v", data, err)
	}
	return groups
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wireGroups encodes v as an http_sd body, fails the test unless
// Prometheus takes all of it (decodeHTTPSD), and returns the body and
// the groups read back from it.
func wireGroups(t *testing.T, v any) ([]byte, []discovery.TargetGroup) {
	t.Helper()
	data := encode(t, v)
	if _, err := decodeHTTPSD(data); err != nil {
		t.Fatalf("http_sd %s: %v", data, err)
	}
	var groups []discovery.TargetGroup
	if err := json.Unmarshal(data, &groups); err != nil {
		t.Fatal(err)
	}
	return data, groups
}

func TestLeafGroups(t *testing.T) {
	if got := string(encode(t, discovery.LeafGroups(nil))); got != "[]" {
		t.Errorf("LeafGroups(nil) encodes as %s, want []", got)
	}
	seen := time.Date(2031, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	groups := discovery.LeafGroups([]discovery.Leaf{
		{ID: "zrh-1", Address: "[2001:db8::1]:9299", Labels: map[string]string{"region": "eu"}, Version: "0.3.0", LastSeen: seen},
		{ID: "ams-1", Address: "leaf.example.com:9299", Static: true},
	})
	checkHTTPSD(t, encode(t, groups))
	if len(groups) != 2 {
		t.Fatalf("%d groups, want 2", len(groups))
	}
	// Sorted by leaf id.
	ams, zrh := groups[0], groups[1]
	if fmt.Sprint(ams.Targets) != "[leaf.example.com:9299]" || fmt.Sprint(zrh.Targets) != "[[2001:db8::1]:9299]" {
		t.Errorf("targets %v %v", ams.Targets, zrh.Targets)
	}
	wantAms := map[string]string{"leaf_id": "ams-1", "__meta_oxcross_leaf_id": "ams-1", "__meta_oxcross_leaf_source": "static"}
	wantZrh := map[string]string{
		"leaf_id": "zrh-1", "region": "eu",
		"__meta_oxcross_leaf_id": "zrh-1", "__meta_oxcross_leaf_source": "dynamic",
		"__meta_oxcross_leaf_label_region": "eu", "__meta_oxcross_leaf_version": "0.3.0",
	}
	for _, c := range []struct {
		got, want map[string]string
	}{{ams.Labels, wantAms}, {zrh.Labels, wantZrh}} {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("labels %v, want %v", c.got, c.want)
		}
	}
	// The shape on the wire.
	want := `{"targets":["leaf.example.com:9299"],"labels":{"__meta_oxcross_leaf_id":"ams-1","__meta_oxcross_leaf_source":"static","leaf_id":"ams-1"}}`
	if got := string(encode(t, groups[0])); got != want {
		t.Errorf("wire form %s, want %s", got, want)
	}
}

func TestOriginGroups(t *testing.T) {
	cfg, err := parser.Parse([]byte(`interval: 20
origins:
  - name: adv
    url: https://edge.example.com
    labels: {pop: fra, tier: edge}
  - name: simple
    scheme: http
    hostname: 192.0.2.10
    path: /health
    mode: simple
    leaf_selector: {region: eu}
  - name: default-port
    url: http://edge.example.com/x
    mode: simple
  - name: tcp
    address: "[2001:db8::5]:443"
    mode: tcp
  - name: ping
    hostname: edge.example.com
    mode: icmp
`))
	if err != nil {
		t.Fatal(err)
	}
	groups := discovery.OriginGroups(cfg)
	prom := checkHTTPSD(t, encode(t, groups))
	if len(prom) != 5 {
		t.Fatalf("%d groups, want 5", len(prom))
	}
	type want struct {
		target string
		labels map[string]string
	}
	wants := []want{
		{"edge.example.com:443", map[string]string{
			"origin_id": "adv", "mode": "advanced", "pop": "fra", "tier": "edge",
			"__meta_oxcross_origin_id": "adv", "__meta_oxcross_origin_mode": "advanced", "__meta_oxcross_origin_kind": "oxcross",
			"__meta_oxcross_origin_url": "https://edge.example.com/oxcross", "__meta_oxcross_origin_interval": "20s",
			"__meta_oxcross_origin_label_pop": "fra", "__meta_oxcross_origin_label_tier": "edge",
		}},
		{"192.0.2.10:80", map[string]string{
			"origin_id": "simple", "mode": "simple",
			"__meta_oxcross_origin_id": "simple", "__meta_oxcross_origin_mode": "simple", "__meta_oxcross_origin_kind": "http",
			"__meta_oxcross_origin_url": "http://192.0.2.10:80/health", "__meta_oxcross_origin_interval": "20s",
		}},
		{"edge.example.com:80", nil},
		{"[2001:db8::5]:443", map[string]string{
			"origin_id": "tcp", "mode": "tcp",
			"__meta_oxcross_origin_id": "tcp", "__meta_oxcross_origin_mode": "tcp", "__meta_oxcross_origin_kind": "tcp",
			"__meta_oxcross_origin_address": "[2001:db8::5]:443", "__meta_oxcross_origin_interval": "20s",
		}},
		{"edge.example.com", map[string]string{
			"origin_id": "ping", "mode": "icmp",
			"__meta_oxcross_origin_id": "ping", "__meta_oxcross_origin_mode": "icmp", "__meta_oxcross_origin_kind": "icmp",
			"__meta_oxcross_origin_address": "edge.example.com", "__meta_oxcross_origin_interval": "20s",
		}},
	}
	for i, w := range wants {
		g := groups[i]
		if w.target != "" && (len(g.Targets) != 1 || g.Targets[0] != w.target) {
			t.Errorf("origin %d: targets %v, want [%s]", i, g.Targets, w.target)
		}
		if w.labels != nil && fmt.Sprint(g.Labels) != fmt.Sprint(w.labels) {
			t.Errorf("origin %d: labels\n %v\nwant\n %v", i, g.Labels, w.labels)
		}
	}
	// The leaf selector is for the configserver, not for Prometheus.
	for _, g := range groups {
		for k := range g.Labels {
			if strings.Contains(k, "selector") || k == "region" {
				t.Errorf("origin %s: label %s from the leaf selector", g.Labels["origin_id"], k)
			}
		}
	}
}

// TestHTTPSDEdgeValues: label values Prometheus must take as they are.
func TestHTTPSDEdgeValues(t *testing.T) {
	groups := discovery.LeafGroups([]discovery.Leaf{{
		ID:      "x",
		Address: "127.0.0.1:1",
		Labels:  map[string]string{"note": `quote " backslash \ unicode ü <html>`, "empty": ""},
	}})
	prom := checkHTTPSD(t, encode(t, groups))
	if v := prom[0].Labels["note"]; v != `quote " backslash \ unicode ü <html>` {
		t.Errorf("label value round trip: %q", v)
	}
}

// FuzzLeafGroups: any leaf the registry or the config accepts (the same
// validation) encodes to http_sd that Prometheus takes, with its id as
// leaf_id.
func FuzzLeafGroups(f *testing.F) {
	f.Add("leaf-1", "127.0.0.1:9299", "region", "eu", "1.0.0", false, int64(0))
	f.Add("ams.1_x", "[::1]:9299", "rack", "", "", true, int64(1795633454))
	f.Add("a", "leaf.example.com:1", "__x", "\xff", strings.Repeat("v", 200), false, int64(-1))
	f.Add("b", "host:65535", "k", "ü\n\"'<>", "v\x00", false, int64(1<<62))
	f.Fuzz(func(t *testing.T, id, addr, key, value, version string, static bool, seen int64) {
		labels := map[string]string{key: value}
		if config.ValidateLeafID(id) != nil || config.ValidateAddress(addr) != nil || config.ValidateLabels(labels) != nil || len(version) > 128 {
			return
		}
		l := discovery.Leaf{ID: id, Address: addr, Labels: labels, Version: version, Static: static, LastSeen: time.Unix(seen, 0)}
		other := discovery.Leaf{ID: "other", Address: "127.0.0.1:1"}
		data, groups := wireGroups(t, discovery.LeafGroups([]discovery.Leaf{l, other}))
		found := false
		for _, g := range groups {
			if g.Labels["leaf_id"] == id {
				found = true
				if len(g.Targets) != 1 || g.Targets[0] != addr {
					t.Errorf("targets %q, want [%q]", g.Targets, addr)
				}
			}
		}
		if !found {
			t.Errorf("leaf %q not in %s", id, data)
		}
	})
}

// FuzzOriginGroups: any config the parser accepts encodes to http_sd that
// Prometheus takes, one group per origin.
func FuzzOriginGroups(f *testing.F) {
	f.Add([]byte(`{"timeout": 10, "interval": 30, "origins": [{"scheme": "http", "hostname": "example.com", "port": 9301, "mode": "advanced"}]}`))
	f.Add([]byte("origins:\n  - url: https://[::1]:8443/x?y=z\n    mode: simple\n    labels: {region: eu, note: \"ü\"}\n  - address: 127.0.0.1:22\n    mode: tcp\n  - hostname: edge1\n    mode: icmp\n"))
	f.Add([]byte("origins:\n  - url: http://h/\n    labels: {a: \"\\xff\"}\n"))
	f.Add([]byte("origins:\n  - {name: 'x', url: 'http://h:1/'}\n  - {name: 'y', scheme: https, hostname: 'h.example', port: 443, leaf_selector: {k: v}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parser.Parse(data)
		if err != nil {
			return
		}
		_, groups := wireGroups(t, discovery.OriginGroups(cfg))
		if len(groups) != len(cfg.Origins) {
			t.Fatalf("%d groups for %d origins", len(groups), len(cfg.Origins))
		}
		for i, g := range groups {
			if g.Labels["origin_id"] != cfg.Origins[i].ID {
				t.Errorf("group %d: origin_id %q, want %q", i, g.Labels["origin_id"], cfg.Origins[i].ID)
			}
		}
	})
}
