package config_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/oxcross/oxcross/config"
)

func TestMarshalJSONOriginal(t *testing.T) {
	cfg := mustParse(t, readTestdata(t, "original.json"))
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"interval":"30s","timeout":"10s","origins":[{"name":"example.com-9301-http","url":"http://example.com:9301/oxcross","mode":"advanced","interval":"30s","timeout":"10s"}]}`
	if string(b) != want {
		t.Errorf("json.Marshal =\n %s\nwant\n %s", b, want)
	}
}

func TestMarshalJSONLabels(t *testing.T) {
	cfg := mustParse(t, []byte("origins:\n  - url: http://h\n    labels: {b: '2', a: '1'}\n"))
	b, err := cfg.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Fatalf("MarshalJSON produced invalid JSON: %s", b)
	}
	if !strings.Contains(string(b), `"labels":{"a":"1","b":"2"}`) {
		t.Errorf("MarshalJSON = %s, want sorted labels", b)
	}
}

func TestMarshalJSONRoundTrip(t *testing.T) {
	inputs := map[string][]byte{
		"original.json": readTestdata(t, "original.json"),
		"full.yaml":     readTestdata(t, "full.yaml"),
		"simple url":    []byte("origins: [{url: 'http://h', mode: simple}]"),
		"empty labels":  []byte("origins: [{url: 'http://h', labels: {}}]"),
		"ipv6 zone":     []byte("origins: [{name: z, scheme: http, hostname: 'fe80::1%eth0', port: 9301}]"),
		"query":         []byte("origins: [{scheme: https, hostname: h, mode: simple, path: '/a%20b?x=1&y=%2F'}]"),
		"double slash":  []byte("origins: [{scheme: https, hostname: h, mode: simple, path: '//a/b%2Fc'}]"),
		"unicode host":  []byte("origins: [{name: u, scheme: https, hostname: 'bücher.example'}]"),
		"userinfo url":  []byte("origins: [{url: 'https://u:p@h:8443/x?y', mode: simple, interval: 0.25}]"),
		"modules": []byte(`modules:
  web: {kind: http, ip_family: ip6, no_ip_fallback: true, max_body_bytes: 4096, http: {method: HEAD, headers: {X-A: b}, valid_status_codes: [204], body_regexp: '^ok', follow_redirects: true, tls: {ca_file: /ca.pem, cert_file: c, key_file: k, server_name: s, insecure_skip_verify: true}}}
  o4: {kind: oxcross, ip_family: ip4}
  ssh: {kind: tcp, tcp: {tls: true, tls_config: {server_name: s}}}
  ping: {kind: icmp, ip_family: ip6}
  smoke: {kind: icmp, icmp: {packets: 20, packet_interval: 50ms}}
  syns: {kind: tcp, tcp: {packets: 3, packet_interval: 1}}
origins:
  - {url: 'http://h/x', module: web}
  - {url: 'http://h:9301', module: o4}
  - {address: 'h:22', module: ssh}
  - {hostname: h, module: ping}
  - {name: s, hostname: h, module: smoke}
  - {name: t, address: 'h:22', module: syns, timeout: 4}
`),
		"address kinds":     []byte("origins: [{address: '[::1]:22', mode: tcp}, {name: z, hostname: 'fe80::1%eth0', mode: icmp}, {name: x, address: 'bücher.example', module: icmp}]"),
		"leaves, selectors": []byte("leaves: [{id: a, address: 'h:1', labels: {region: eu}}, {id: b, address: '[::1]:2'}]\norigins: [{url: 'http://h', leaf_selector: {region: eu}, labels: {tier: '1'}}]"),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			first := mustParse(t, in)
			b, err := first.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			second := mustParse(t, b)
			if !reflect.DeepEqual(first, second) {
				t.Errorf("round trip through\n %s\nchanged the config:\n got  %+v\n want %+v", b, second, first)
			}
			b2, err := second.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != string(b2) {
				t.Errorf("MarshalJSON is not stable:\n %s\n %s", b, b2)
			}
		})
	}
}

func TestETag(t *testing.T) {
	a1 := config.ETag([]byte(`{"origins":[]}`))
	a2 := config.ETag([]byte(`{"origins":[]}`))
	b := config.ETag([]byte(`{"origins":[] }`))
	empty := config.ETag(nil)
	if a1 != a2 {
		t.Errorf("ETag not stable: %s != %s", a1, a2)
	}
	if a1 == b {
		t.Errorf("ETag of different bodies equal: %s", a1)
	}
	if empty == a1 || empty != config.ETag([]byte{}) {
		t.Errorf("ETag of an empty body %s", empty)
	}
	for _, tag := range []string{a1, b, empty} {
		if len(tag) < 3 || !strings.HasPrefix(tag, `"`) || !strings.HasSuffix(tag, `"`) || strings.HasPrefix(tag, `W/`) {
			t.Errorf("ETag %s is not a quoted strong entity tag", tag)
		}
		if inner := tag[1 : len(tag)-1]; strings.ContainsAny(inner, "\" \t\r\n") {
			t.Errorf("ETag %s has characters not allowed in an entity tag", tag)
		}
	}
}

// TestMarshalJSONModules: the normalized JSON lists the config's own
// modules, not the built-in ones (every config has them), with the keys
// every kind has and the kind's settings under its key, left out when they
// are the defaults.
func TestMarshalJSONModules(t *testing.T) {
	cfg := mustParse(t, []byte(`modules:
  web: {kind: http, http: {method: HEAD}}
  o4: {kind: oxcross, ip_family: ip4, max_body_bytes: 10}
  ssh: {kind: tcp, no_ip_fallback: true, tcp: {tls: true}}
  ping: {kind: icmp}
origins: [{url: 'http://h'}]
`))
	b, err := cfg.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Modules map[string]json.RawMessage `json:"modules"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"web":  `{"kind":"http","http":{"method":"HEAD"}}`,
		"o4":   `{"kind":"oxcross","ip_family":"ip4","max_body_bytes":10}`,
		"ssh":  `{"kind":"tcp","no_ip_fallback":true,"tcp":{"tls":true}}`,
		"ping": `{"kind":"icmp"}`,
	}
	if len(got.Modules) != len(want) {
		t.Errorf("modules in %s, want only %d of the config's own", b, len(want))
	}
	for name, w := range want {
		if string(got.Modules[name]) != w {
			t.Errorf("module %s = %s, want %s", name, got.Modules[name], w)
		}
	}
	// A config with only the built-in modules lists none.
	b, err = mustParse(t, []byte("origins: [{url: 'http://h'}]")).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "modules") {
		t.Errorf("MarshalJSON of a config without modules of its own = %s", b)
	}
}

// TestMarshalJSONUnknownKind: settings the config cannot place under a
// kind's key are an error, not dropped.
func TestMarshalJSONUnknownKind(t *testing.T) {
	cfg := &config.Config{Modules: map[string]config.Module{"m": {Kind: "nope", Settings: &testSettings{X: "y"}}}}
	if b, err := cfg.MarshalJSON(); err == nil || !strings.Contains(err.Error(), `module m: kind "nope" takes no settings`) {
		t.Errorf("MarshalJSON of a module of an unknown kind with settings = %s, %v; want an error", b, err)
	}
	if _, err := config.NewSnapshot(cfg); err == nil || !strings.Contains(err.Error(), "encoding config") {
		t.Errorf("NewSnapshot of a config that cannot be encoded: %v", err)
	}
}

// TestRoundTripView: the normalized JSON is what the configserver serves a
// leaf, which reads it with ParseView to the same config.
func TestRoundTripView(t *testing.T) {
	for _, name := range []string{"original.json", "full.yaml"} {
		cfg := mustParse(t, readTestdata(t, name))
		snap, err := config.NewSnapshot(cfg)
		if err != nil {
			t.Fatal(err)
		}
		view, err := parser.ParseView(snap.Body)
		if err != nil {
			t.Fatalf("%s: ParseView of the normalized JSON: %v", name, err)
		}
		if !reflect.DeepEqual(view, cfg) {
			t.Errorf("%s: ParseView of\n %s\nchanged the config:\n got  %+v\n want %+v", name, snap.Body, view, cfg)
		}
	}
}

func TestNewSnapshot(t *testing.T) {
	cfg := mustParse(t, readTestdata(t, "full.yaml"))
	snap, err := config.NewSnapshot(cfg)
	if err != nil {
		t.Fatal(err)
	}
	body, err := cfg.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var served struct {
		Oxcross json.RawMessage `json:"oxcross"`
	}
	if err := json.Unmarshal(snap.Body, &served); err != nil {
		t.Fatalf("served body %s: %v", snap.Body, err)
	}
	if snap.Config != cfg || string(served.Oxcross) != string(body) || snap.ETag != config.ETag(snap.Body) {
		t.Errorf("NewSnapshot = %+v (%s), want the config, its normalized JSON under %q and the body's ETag", snap, snap.Body, config.ServedKey)
	}
	// The same config written differently has the same body and ETag.
	again, err := config.NewSnapshot(mustParse(t, []byte(strings.ReplaceAll(string(readTestdata(t, "full.yaml")), "interval: 1m", "interval: 60"))))
	if err != nil {
		t.Fatal(err)
	}
	if again.ETag != snap.ETag {
		t.Errorf("ETag changed with the config's spelling: %s != %s", again.ETag, snap.ETag)
	}
}

// TestForLeaf: a leaf sees the origins meant for it, without their
// selectors, and no static leaves; a config that selects nothing is
// served as it is.
func TestForLeaf(t *testing.T) {
	cfg := mustParse(t, []byte(`origins:
  - {name: all, url: 'http://a'}
  - {name: eu, url: 'http://b', leaf_selector: {region: eu}}
  - {name: eu-edge, url: 'http://c', leaf_selector: {region: eu, tier: edge}}
  - {name: us, url: 'http://d', leaf_selector: {region: us}, labels: {x: y}}
`))
	for _, tc := range []struct {
		labels map[string]string
		want   []string
	}{
		{nil, []string{"all"}},
		{map[string]string{"region": "eu"}, []string{"all", "eu"}},
		{map[string]string{"region": "eu", "tier": "edge", "rack": "7"}, []string{"all", "eu", "eu-edge"}},
		{map[string]string{"region": "us"}, []string{"all", "us"}},
		{map[string]string{"region": "EU"}, []string{"all"}},
	} {
		view := cfg.ForLeaf(tc.labels)
		var ids []string
		for _, o := range view.Origins {
			ids = append(ids, o.ID)
			if o.LeafSelector != nil {
				t.Errorf("ForLeaf(%v): origin %s keeps its selector %v", tc.labels, o.ID, o.LeafSelector)
			}
		}
		if !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("ForLeaf(%v) origins %q, want %q", tc.labels, ids, tc.want)
		}
		if view.Interval != cfg.Interval || view.Timeout != cfg.Timeout || !reflect.DeepEqual(view.Modules, cfg.Modules) {
			t.Errorf("ForLeaf(%v) changed the defaults or modules", tc.labels)
		}
		// The view is served as normalized JSON and read back by the leaf.
		b, err := view.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := parser.ParseView(b)
		if err != nil || !reflect.DeepEqual(back, view) {
			t.Errorf("ForLeaf(%v) view does not round-trip through\n %s\n(%v)", tc.labels, b, err)
		}
	}
	if got := cfg.Origins[3].Labels; !reflect.DeepEqual(got, map[string]string{"x": "y"}) {
		t.Errorf("ForLeaf changed the config: origin labels %v", got)
	}
	if cfg.Origins[1].LeafSelector == nil {
		t.Errorf("ForLeaf changed the config: origin eu lost its selector")
	}

	// No origin selected: a leaf whose labels match none gets an empty
	// list, which ParseView takes.
	only := mustParse(t, []byte("origins: [{url: 'http://a', leaf_selector: {region: eu}}]"))
	empty := only.ForLeaf(map[string]string{"region": "us"})
	if len(empty.Origins) != 0 {
		t.Errorf("ForLeaf with no match: %+v", empty.Origins)
	}
	b, err := empty.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"origins":[]`) {
		t.Errorf("view without origins = %s, want an empty origins list", b)
	}
	if _, err := parser.ParseView(b); err != nil {
		t.Errorf("ParseView of a view without origins: %v", err)
	}

	// Static leaves make a config selective: the leaves are the
	// configserver's, never a leaf's.
	withLeaves := mustParse(t, []byte("leaves: [{id: a, address: 'h:1'}]\norigins: [{url: 'http://a'}]"))
	if v := withLeaves.ForLeaf(nil); v == withLeaves || v.Leaves != nil || len(v.Origins) != 1 {
		t.Errorf("ForLeaf of a config with static leaves = %+v", v)
	}
	if withLeaves.Leaves == nil {
		t.Errorf("ForLeaf dropped the config's own leaves")
	}

	// Nothing to select: the config itself.
	plain := mustParse(t, readTestdata(t, "full.yaml"))
	if v := plain.ForLeaf(map[string]string{"region": "eu"}); v != plain {
		t.Errorf("ForLeaf of a config without selectors or leaves made a copy")
	}
}

func TestTargetSelects(t *testing.T) {
	tg := config.Target{LeafSelector: map[string]string{"region": "eu", "tier": ""}}
	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"region": "eu"}, true}, // a missing label reads as ""
		{map[string]string{"region": "eu", "tier": ""}, true},
		{map[string]string{"region": "eu", "tier": "edge"}, false},
		{map[string]string{"region": "us"}, false},
		{nil, false},
	} {
		if got := tg.Selects(tc.labels); got != tc.want {
			t.Errorf("Selects(%v) = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if !(&config.Target{}).Selects(nil) {
		t.Errorf("a target without a selector does not select every leaf")
	}
}
