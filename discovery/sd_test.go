package discovery_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"

	"github.com/oxcross/oxcross/discovery"
)

// promGroup is Prometheus' http_sd target group as its decoder reads it
// (targetgroup.Group): targets and a label set, nothing else.
type promGroup struct {
	Targets []string       `json:"targets"`
	Labels  model.LabelSet `json:"labels"`
}

// checkHTTPSD decodes data as Prometheus' http_sd does and checks what a
// Prometheus with the classic (legacy) label name rules needs: a list
// (never null), valid label names and UTF-8 values, host:port targets.
func checkHTTPSD(t *testing.T, data []byte) []promGroup {
	t.Helper()
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		t.Fatalf("http_sd body is null, want a list")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var groups []promGroup
	if err := dec.Decode(&groups); err != nil {
		t.Fatalf("Prometheus cannot decode %s: %v", data, err)
	}
	if groups == nil {
		t.Fatalf("http_sd body %s is not a list", data)
	}
	for i, g := range groups {
		if len(g.Targets) == 0 {
			t.Errorf("group %d has no targets", i)
		}
		for _, tg := range g.Targets {
			// host:port, or a bare host (icmp origins).
			if _, _, err := net.SplitHostPort(tg); tg == "" || strings.ContainsAny(tg, "/ ") || (err != nil && strings.Contains(tg, ":")) {
				t.Errorf("group %d: target %q is not host[:port]", i, tg)
			}
		}
		for name, value := range g.Labels {
			if !model.LegacyValidation.IsValidLabelName(string(name)) {
				t.Errorf("group %d: label name %q is not valid for Prometheus", i, name)
			}
			if !utf8.ValidString(string(value)) {
				t.Errorf("group %d: label %s value is not UTF-8", i, name)
			}
		}
		if err := g.Labels.Validate(); err != nil {
			t.Errorf("group %d: %v", i, err)
		}
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
	cfg, err := discovery.Parse([]byte(`interval: 20
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
