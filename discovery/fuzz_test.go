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

	"github.com/oxcross/oxcross/discovery"
)

// sdProblem decodes data as Prometheus' http_sd does (a list of groups of
// targets and labels, nothing else) and says what a Prometheus with the
// classic label name rules would refuse, or nil.
func sdProblem(data []byte) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return errors.New("null, want a list")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var groups []struct {
		Targets []string       `json:"targets"`
		Labels  model.LabelSet `json:"labels"`
	}
	if err := dec.Decode(&groups); err != nil {
		return fmt.Errorf("Prometheus cannot decode it: %w", err)
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	for i, g := range groups {
		if len(g.Targets) == 0 {
			return fmt.Errorf("group %d has no targets", i)
		}
		for _, tg := range g.Targets {
			if _, _, err := net.SplitHostPort(tg); tg == "" || strings.ContainsAny(tg, "/ \t\r\n") || (err != nil && strings.Contains(tg, ":")) {
				return fmt.Errorf("group %d: target %q is not host[:port]", i, tg)
			}
		}
		for name, value := range g.Labels {
			if !model.LegacyValidation.IsValidLabelName(string(name)) {
				return fmt.Errorf("group %d: label name %q", i, name)
			}
			if !utf8.ValidString(string(value)) {
				return fmt.Errorf("group %d: label %s: value not UTF-8", i, name)
			}
		}
		if err := g.Labels.Validate(); err != nil {
			return fmt.Errorf("group %d: %w", i, err)
		}
	}
	return nil
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
		if discovery.ValidateLeafID(id) != nil || discovery.ValidateAddress(addr) != nil || discovery.ValidateLabels(labels) != nil || len(version) > 128 {
			return
		}
		l := discovery.Leaf{ID: id, Address: addr, Labels: labels, Version: version, Static: static, LastSeen: time.Unix(seen, 0)}
		other := discovery.Leaf{ID: "other", Address: "127.0.0.1:1"}
		data, err := json.Marshal(discovery.LeafGroups([]discovery.Leaf{l, other}))
		if err != nil {
			t.Fatalf("encoding: %v", err)
		}
		if err := sdProblem(data); err != nil {
			t.Fatalf("http_sd %s: %v", data, err)
		}
		var groups []discovery.TargetGroup
		if err := json.Unmarshal(data, &groups); err != nil {
			t.Fatal(err)
		}
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
		cfg, err := discovery.Parse(data)
		if err != nil {
			return
		}
		body, err := json.Marshal(discovery.OriginGroups(cfg))
		if err != nil {
			t.Fatalf("encoding: %v", err)
		}
		if err := sdProblem(body); err != nil {
			t.Fatalf("http_sd %s: %v", body, err)
		}
		var groups []discovery.TargetGroup
		if err := json.Unmarshal(body, &groups); err != nil {
			t.Fatal(err)
		}
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
