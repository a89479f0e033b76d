package configserver_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/internal/testutil"
)

// promContentType is the Content-Type Prometheus' http_sd accepts.
var promContentType = regexp.MustCompile(`^(?i:application\/json(;\s*charset=("utf-8"|utf-8))?)$`)

// sdGroup is one http_sd target group as a test reads it.
type sdGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// sd GETs an http_sd list.
func (f *fixture) sd(t testing.TB, path string) []sdGroup {
	t.Helper()
	r := f.do(t, http.MethodGet, path, "")
	if r.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.Code, r.Body)
	}
	var groups []sdGroup
	if err := json.Unmarshal([]byte(r.Body), &groups); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, r.Body)
	}
	return groups
}

// sdLeaves returns /sd/leaves by leaf id.
func (f *fixture) sdLeaves(t testing.TB) map[string]sdGroup {
	t.Helper()
	out := map[string]sdGroup{}
	for _, g := range f.sd(t, "/sd/leaves") {
		out[g.Labels["leaf_id"]] = g
	}
	return out
}

func TestSDLeavesEmpty(t *testing.T) {
	f := newRegFixture(t, configYAML("127.0.0.1", 9), configserver.RegistryOptions{})
	r := f.do(t, http.MethodGet, "/sd/leaves", "")
	if r.Code != http.StatusOK || r.Body != "[]" {
		t.Errorf("/sd/leaves without leaves: %d %q, want 200 []", r.Code, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !promContentType.MatchString(ct) {
		t.Errorf("/sd/leaves Content-Type %q is not what Prometheus accepts", ct)
	}
	// After the last leaf has gone, too.
	if r := f.put(t, "one", `{"address": ":9299"}`); r.Code != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.Code, r.Body)
	}
	if r := f.del(t, "one"); r.Code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.Code, r.Body)
	}
	if r := f.do(t, http.MethodGet, "/sd/leaves", ""); r.Body != "[]" {
		t.Errorf("/sd/leaves after the last leaf left: %q, want []", r.Body)
	}
}

func TestSDLeaves(t *testing.T) {
	f := newRegFixture(t, regConfig, configserver.RegistryOptions{})
	// Static leaves are there without registering.
	groups := f.sd(t, "/sd/leaves")
	if len(groups) != 1 {
		t.Fatalf("/sd/leaves with one static leaf: %+v", groups)
	}
	want := map[string]string{
		"leaf_id":                          "static-1",
		"region":                           "eu",
		"rack":                             "r1",
		"__meta_oxcross_leaf_id":           "static-1",
		"__meta_oxcross_leaf_source":       "static",
		"__meta_oxcross_leaf_label_region": "eu",
		"__meta_oxcross_leaf_label_rack":   "r1",
	}
	if g := groups[0]; len(g.Targets) != 1 || g.Targets[0] != "127.0.0.1:9999" || !maps.Equal(g.Labels, want) {
		t.Errorf("static leaf group %+v, want target 127.0.0.1:9999 and labels %v", g, want)
	}

	// A registration appears at once, with its labels and __meta_ labels.
	if r := f.put(t, "ams-1", `{"address": ":9299", "labels": {"region": "eu", "provider": "hetzner"}, "version": "1.2.3", "refresh_interval": "10s"}`); r.Code != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.Code, r.Body)
	}
	r := f.do(t, http.MethodGet, "/sd/leaves", "")
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	leaves := f.sdLeaves(t)
	want = map[string]string{
		"leaf_id":                            "ams-1",
		"region":                             "eu",
		"provider":                           "hetzner",
		"__meta_oxcross_leaf_id":             "ams-1",
		"__meta_oxcross_leaf_source":         "dynamic",
		"__meta_oxcross_leaf_version":        "1.2.3",
		"__meta_oxcross_leaf_label_region":   "eu",
		"__meta_oxcross_leaf_label_provider": "hetzner",
	}
	if g := leaves["ams-1"]; len(g.Targets) != 1 || g.Targets[0] != "127.0.0.1:9299" || !maps.Equal(g.Labels, want) {
		t.Errorf("registered leaf group %+v, want target 127.0.0.1:9299 and labels %v", g, want)
	}
	if _, ok := leaves["static-1"]; !ok || len(leaves) != 2 {
		t.Errorf("/sd/leaves: %v, want ams-1 and static-1", leaves)
	}
	// Sorted by leaf id.
	if g := f.sd(t, "/sd/leaves"); g[0].Labels["leaf_id"] != "ams-1" || g[1].Labels["leaf_id"] != "static-1" {
		t.Errorf("/sd/leaves not sorted by leaf_id: %v", g)
	}

	// A changed registration shows at once (the cache is invalidated).
	if r := f.put(t, "ams-1", `{"address": ":9299", "labels": {"region": "us"}, "refresh_interval": "10s"}`); r.Code != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.Code, r.Body)
	}
	if g := f.sdLeaves(t)["ams-1"]; g.Labels["region"] != "us" || g.Labels["provider"] != "" {
		t.Errorf("changed registration not shown: %v", g.Labels)
	}

	// A config reload changes the static leaves at once.
	testutil.WriteFile(t, f.path, strings.Replace(regConfig, "id: static-1", "id: static-2", 1))
	if err := f.s.Reload(); err != nil {
		t.Fatal(err)
	}
	leaves = f.sdLeaves(t)
	if _, ok := leaves["static-2"]; !ok {
		t.Errorf("reloaded static leaf not in /sd/leaves: %v", leaves)
	}
	if _, ok := leaves["static-1"]; ok {
		t.Errorf("removed static leaf still in /sd/leaves")
	}
	if _, ok := leaves["ams-1"]; !ok {
		t.Errorf("registered leaf lost by a reload")
	}

	// Expiry shows without any other change.
	f.clock.Advance(30 * time.Second)
	if _, ok := f.sdLeaves(t)["ams-1"]; ok {
		t.Errorf("expired leaf still in /sd/leaves")
	}
}

func TestSDOrigins(t *testing.T) {
	f := newRegFixture(t, regConfig, configserver.RegistryOptions{})
	r := f.do(t, http.MethodGet, "/sd/origins", "")
	if ct := r.Header.Get("Content-Type"); !promContentType.MatchString(ct) {
		t.Errorf("/sd/origins Content-Type %q", ct)
	}
	groups := f.sd(t, "/sd/origins")
	if len(groups) != 3 {
		t.Fatalf("/sd/origins: %+v, want 3 groups", groups)
	}
	byID := map[string]sdGroup{}
	for _, g := range groups {
		byID[g.Labels["origin_id"]] = g
	}
	for id, want := range map[string]struct {
		target string
		labels map[string]string
	}{
		"everywhere": {"127.0.0.1:9", map[string]string{
			"origin_id": "everywhere", "mode": "simple", "tier": "edge",
			"__meta_oxcross_origin_id": "everywhere", "__meta_oxcross_origin_mode": "simple", "__meta_oxcross_origin_kind": "http",
			"__meta_oxcross_origin_url": "http://127.0.0.1:9/", "__meta_oxcross_origin_label_tier": "edge", "__meta_oxcross_origin_interval": "30s",
		}},
		"eu-only": {"127.0.0.1:10", map[string]string{
			"origin_id": "eu-only", "mode": "advanced",
			"__meta_oxcross_origin_id": "eu-only", "__meta_oxcross_origin_mode": "advanced", "__meta_oxcross_origin_kind": "oxcross",
			"__meta_oxcross_origin_url": "http://127.0.0.1:10/oxcross", "__meta_oxcross_origin_interval": "30s",
		}},
		"tcp-origin": {"127.0.0.1:11", map[string]string{
			"origin_id": "tcp-origin", "mode": "tcp",
			"__meta_oxcross_origin_id": "tcp-origin", "__meta_oxcross_origin_mode": "tcp", "__meta_oxcross_origin_kind": "tcp",
			"__meta_oxcross_origin_address": "127.0.0.1:11", "__meta_oxcross_origin_interval": "30s",
		}},
	} {
		g := byID[id]
		if len(g.Targets) != 1 || g.Targets[0] != want.target || !maps.Equal(g.Labels, want.labels) {
			t.Errorf("origin %s: %+v, want target %s and labels %v", id, g, want.target, want.labels)
		}
	}
	// In config order.
	if groups[0].Labels["origin_id"] != "everywhere" || groups[2].Labels["origin_id"] != "tcp-origin" {
		t.Errorf("/sd/origins not in config order: %v", groups)
	}
	// A reload shows at once.
	testutil.WriteFile(t, f.path, configYAML("127.0.0.1", 12))
	if err := f.s.Reload(); err != nil {
		t.Fatal(err)
	}
	if g := f.sd(t, "/sd/origins"); len(g) != 1 || g[0].Targets[0] != "127.0.0.1:12" {
		t.Errorf("/sd/origins after a reload: %+v", g)
	}
}
