package configserver_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/discovery"
)

// promContentType is the Content-Type Prometheus' http_sd accepts.
var promContentType = regexp.MustCompile(`^(?i:application\/json(;\s*charset=("utf-8"|utf-8))?)$`)

func TestSDLeavesEmpty(t *testing.T) {
	f := newRegFixture(t, configYAML("127.0.0.1", 9), configserver.RegistryOptions{})
	r := f.request(t, http.MethodGet, "/sd/leaves", nil)
	if r.code != http.StatusOK || r.body != "[]" {
		t.Errorf("/sd/leaves without leaves: %d %q, want 200 []", r.code, r.body)
	}
	if ct := r.header.Get("Content-Type"); !promContentType.MatchString(ct) {
		t.Errorf("/sd/leaves Content-Type %q is not what Prometheus accepts", ct)
	}
	// After the last leaf has gone, too.
	if r := f.put(t, "one", `{"address": ":9299"}`); r.code != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.code, r.body)
	}
	if r := f.del(t, "one"); r.code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.code, r.body)
	}
	if r := f.request(t, http.MethodGet, "/sd/leaves", nil); r.body != "[]" {
		t.Errorf("/sd/leaves after the last leaf left: %q, want []", r.body)
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
	if g := groups[0]; len(g.Targets) != 1 || g.Targets[0] != "127.0.0.1:9999" || !equalMaps(g.Labels, want) {
		t.Errorf("static leaf group %+v, want target 127.0.0.1:9999 and labels %v", g, want)
	}

	// A registration appears at once, with its labels and __meta_ labels.
	if r := f.put(t, "ams-1", `{"address": ":9299", "labels": {"region": "eu", "provider": "hetzner"}, "version": "1.2.3", "refresh_interval": "10s"}`); r.code != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.code, r.body)
	}
	r := f.request(t, http.MethodGet, "/sd/leaves", nil)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
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
	if g := leaves["ams-1"]; len(g.Targets) != 1 || g.Targets[0] != "127.0.0.1:9299" || !equalMaps(g.Labels, want) {
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
	if r := f.put(t, "ams-1", `{"address": ":9299", "labels": {"region": "us"}, "refresh_interval": "10s"}`); r.code != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.code, r.body)
	}
	if g := f.sdLeaves(t)["ams-1"]; g.Labels["region"] != "us" || g.Labels["provider"] != "" {
		t.Errorf("changed registration not shown: %v", g.Labels)
	}

	// A config reload changes the static leaves at once.
	writeFile(t, f.path, strings.Replace(regConfig, "id: static-1", "id: static-2", 1))
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

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestSDOrigins(t *testing.T) {
	f := newRegFixture(t, regConfig, configserver.RegistryOptions{})
	r := f.request(t, http.MethodGet, "/sd/origins", nil)
	if ct := r.header.Get("Content-Type"); !promContentType.MatchString(ct) {
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
		if len(g.Targets) != 1 || g.Targets[0] != want.target || !equalMaps(g.Labels, want.labels) {
			t.Errorf("origin %s: %+v, want target %s and labels %v", id, g, want.target, want.labels)
		}
	}
	// In config order.
	if groups[0].Labels["origin_id"] != "everywhere" || groups[2].Labels["origin_id"] != "tcp-origin" {
		t.Errorf("/sd/origins not in config order: %v", groups)
	}
	// A reload shows at once.
	writeFile(t, f.path, configYAML("127.0.0.1", 12))
	if err := f.s.Reload(); err != nil {
		t.Fatal(err)
	}
	if g := f.sd(t, "/sd/origins"); len(g) != 1 || g[0].Targets[0] != "127.0.0.1:12" {
		t.Errorf("/sd/origins after a reload: %+v", g)
	}
}

// originsOf GETs /config?leaf_id=id and returns the origin ids, checking
// that the body parses as a served config.
func (f *regFixture) originsOf(t testing.TB, id string) (ids []string, etag string) {
	t.Helper()
	path := "/config"
	if id != "" {
		path += "?leaf_id=" + id
	}
	r := f.request(t, http.MethodGet, path, nil)
	if r.code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.code, r.body)
	}
	if et := r.header.Get("ETag"); et != discovery.ETag([]byte(r.body)) {
		t.Errorf("GET %s: ETag %s does not match the body", path, et)
	}
	cfg, err := discovery.ParseServed([]byte(r.body))
	if err != nil {
		t.Fatalf("GET %s: the leaf cannot parse %s: %v", path, r.body, err)
	}
	for _, o := range cfg.Origins {
		ids = append(ids, o.ID)
		if id != "" && len(o.LeafSelector) > 0 {
			t.Errorf("GET %s: origin %s still has its leaf_selector", path, o.ID)
		}
	}
	if id != "" && len(cfg.Leaves) > 0 {
		t.Errorf("GET %s: a leaf's view lists the static leaves", path)
	}
	return ids, r.header.Get("ETag")
}

func TestPerLeafConfig(t *testing.T) {
	f := newRegFixture(t, regConfig, configserver.RegistryOptions{})
	all := "everywhere eu-only tcp-origin"
	unselected := "everywhere tcp-origin"
	got := func(id string) (string, string) {
		ids, etag := f.originsOf(t, id)
		return strings.Join(ids, " "), etag
	}
	// Without leaf_id (an older leaf): the whole config.
	if ids, _ := got(""); ids != all {
		t.Errorf("/config: %s, want %s", ids, all)
	}
	// An unknown leaf sees only the origins without a selector.
	ids, unknownTag := got("stranger")
	if ids != unselected {
		t.Errorf("unknown leaf: %s, want %s", ids, unselected)
	}
	// A static leaf is selected by the labels of its entry.
	ids, staticTag := got("static-1")
	if ids != all {
		t.Errorf("static leaf with region=eu: %s, want %s", ids, all)
	}
	if staticTag == unknownTag {
		t.Errorf("two different views have the same ETag %s", staticTag)
	}
	// A registered leaf by the labels it registered with.
	if r := f.put(t, "ams-1", `{"address": ":9299", "labels": {"region": "eu"}}`); r.code != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.code, r.body)
	}
	if r := f.put(t, "nyc-1", `{"address": ":9298", "labels": {"region": "us"}}`); r.code != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.code, r.body)
	}
	amsIDs, amsTag := got("ams-1")
	nycIDs, nycTag := got("nyc-1")
	if amsIDs != all || nycIDs != unselected {
		t.Errorf("ams-1 (eu) sees %s, nyc-1 (us) sees %s; want %s and %s", amsIDs, nycIDs, all, unselected)
	}
	if amsTag != staticTag || nycTag != unknownTag {
		t.Errorf("the same view has different ETags: %s %s %s %s", amsTag, staticTag, nycTag, unknownTag)
	}
	// 304 per view: each leaf's own ETag, not another view's.
	for _, c := range []struct {
		id, etag string
		code     int
	}{
		{"ams-1", amsTag, http.StatusNotModified},
		{"nyc-1", nycTag, http.StatusNotModified},
		{"ams-1", nycTag, http.StatusOK},
		{"nyc-1", amsTag, http.StatusOK},
	} {
		r := f.request(t, http.MethodGet, "/config?leaf_id="+c.id, nil, "If-None-Match", c.etag)
		if r.code != c.code {
			t.Errorf("/config?leaf_id=%s with If-None-Match %s: %d, want %d", c.id, c.etag, r.code, c.code)
		}
	}
	// A leaf that changes its labels gets its new view.
	if r := f.put(t, "nyc-1", `{"address": ":9298", "labels": {"region": "eu"}}`); r.code != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.code, r.body)
	}
	if r := f.request(t, http.MethodGet, "/config?leaf_id=nyc-1", nil, "If-None-Match", nycTag); r.code != http.StatusOK {
		t.Errorf("after a label change the old view's ETag still gives %d", r.code)
	}
	if ids, _ := got("nyc-1"); ids != all {
		t.Errorf("nyc-1 moved to eu sees %s", ids)
	}
	// An expired registration falls back to the unknown view.
	f.clock.Advance(4 * time.Minute)
	if ids, _ := got("ams-1"); ids != unselected {
		t.Errorf("expired ams-1 sees %s, want %s", ids, unselected)
	}
}

// TestPerLeafConfigEmpty: a leaf none of whose origins is meant for it
// gets a valid config without origins, which it accepts.
func TestPerLeafConfigEmpty(t *testing.T) {
	f := newRegFixture(t, `interval: 15
origins:
  - url: http://127.0.0.1:9/
    mode: simple
    leaf_selector: {region: eu}
`, configserver.RegistryOptions{})
	r := f.request(t, http.MethodGet, "/config?leaf_id=lonely", nil)
	if r.code != http.StatusOK {
		t.Fatalf("GET /config?leaf_id=lonely: %d %s", r.code, r.body)
	}
	cfg, err := discovery.ParseServed([]byte(r.body))
	if err != nil {
		t.Fatalf("ParseServed(%s): %v", r.body, err)
	}
	if len(cfg.Origins) != 0 || cfg.Interval != 15*time.Second {
		t.Errorf("empty view: %d origins, interval %s", len(cfg.Origins), cfg.Interval)
	}
	// The file itself must list an origin; only views may be empty.
	if _, err := discovery.Parse([]byte(r.body)); err == nil {
		t.Errorf("Parse accepts a config without origins")
	}
	etag := r.header.Get("ETag")
	if r := f.request(t, http.MethodGet, "/config?leaf_id=lonely", nil, "If-None-Match", etag); r.code != http.StatusNotModified {
		t.Errorf("empty view with its ETag: %d, want 304", r.code)
	}
	// Many made-up ids all get the same view.
	for i := range 50 {
		r := f.request(t, http.MethodGet, "/config?leaf_id=made-up-"+strings.Repeat("x", i), nil)
		if r.header.Get("ETag") != etag {
			t.Fatalf("made-up id %d: ETag %s, want %s", i, r.header.Get("ETag"), etag)
		}
	}
}
