package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/prober"
)

// TestModules: a config's own modules, with the keys every kind has and
// each kind's settings, beside the built-in ones; origins choose them by
// name.
func TestModules(t *testing.T) {
	cfg := mustParse(t, []byte(`modules:
  web:
    kind: http
    ip_family: ip6
    no_ip_fallback: true
    max_body_bytes: 4096
    http:
      method: HEAD
      headers: {Host: example.com, X-A: b}
      valid_status_codes: [200, 204]
      body_regexp: "^ok"
      follow_redirects: true
      tls: {ca_file: /ca.pem, server_name: s.example, cert_file: c.pem, key_file: k.pem, insecure_skip_verify: true}
  origin4:
    kind: oxcross
    ip_family: ip4
    http: {headers: {Authorization: Bearer x}}
  plain: {kind: http}
  filtered: {kind: oxcross, http: {clock_filter_samples: 16, method: GET}}
  ssh:
    kind: tcp
    tcp: {tls: true, tls_config: {server_name: s.example}}
  ping:
    kind: icmp
    ip_family: ip6
    no_ip_fallback: false
    icmp: {packets: 5, packet_interval: 20ms}
origins:
  - {url: 'http://h/', module: web}
  - {url: 'http://h:9301/', mode: origin4}
  - {url: 'http://h:81/', mode: plain}
  - {address: 'h:22', module: ssh}
  - {hostname: h, module: ping}
`))
	want := map[string]config.Module{
		// The built-in modules: the original's modes, and tcp and icmp,
		// with default settings.
		"simple":   {Kind: "http", Settings: &prober.HTTPSettings{}},
		"advanced": {Kind: "oxcross", Settings: &prober.OxcrossSettings{}},
		"tcp":      {Kind: "tcp", Settings: &prober.TCPSettings{}},
		"icmp":     {Kind: "icmp", Settings: &prober.ICMPSettings{}},

		"web": {Kind: "http", IPFamily: config.IP6, NoIPFallback: true, MaxBodyBytes: 4096, Settings: &prober.HTTPSettings{
			Method:           "HEAD",
			Headers:          map[string]string{"Host": "example.com", "X-A": "b"},
			ValidStatusCodes: []int{200, 204},
			BodyRegexp:       "^ok",
			FollowRedirects:  true,
			TLS:              prober.TLSSettings{CAFile: "/ca.pem", ServerName: "s.example", CertFile: "c.pem", KeyFile: "k.pem", InsecureSkipVerify: true},
		}},
		"origin4":  {Kind: "oxcross", IPFamily: config.IP4, Settings: &prober.OxcrossSettings{HTTPSettings: prober.HTTPSettings{Headers: map[string]string{"Authorization": "Bearer x"}}}},
		"plain":    {Kind: "http", Settings: &prober.HTTPSettings{}},
		"filtered": {Kind: "oxcross", Settings: &prober.OxcrossSettings{ClockFilterSamples: new(16), HTTPSettings: prober.HTTPSettings{Method: "GET"}}},
		"ssh":      {Kind: "tcp", Settings: &prober.TCPSettings{TLS: true, TLSConfig: prober.TLSSettings{ServerName: "s.example"}}},
		"ping":     {Kind: "icmp", IPFamily: config.IP6, Settings: &prober.ICMPSettings{TrainSettings: prober.TrainSettings{Packets: 5, PacketInterval: prober.Duration(20 * time.Millisecond)}}},
	}
	if len(cfg.Modules) != len(want) {
		t.Errorf("%d modules, want %d: %+v", len(cfg.Modules), len(want), cfg.Modules)
	}
	for name, w := range want {
		if got, ok := cfg.Modules[name]; !ok || !reflect.DeepEqual(got, w) {
			t.Errorf("module %s:\n got  %+v (settings %+v)\n want %+v (settings %+v)", name, got, got.Settings, w, w.Settings)
		}
	}
	var modules []string
	for _, o := range cfg.Origins {
		modules = append(modules, o.Module)
	}
	if want := []string{"web", "origin4", "plain", "ssh", "ping"}; !reflect.DeepEqual(modules, want) {
		t.Errorf("origins' modules %q, want %q", modules, want)
	}
	// An origin of a module of the oxcross kind probes /oxcross.
	if got := cfg.Origins[1].URL; got != "http://h:9301/oxcross" {
		t.Errorf("origin of module origin4: URL %q", got)
	}
}

// TestModulesDoNotShareSettings: every module, the built-in ones of every
// config included, has settings of its own.
func TestModulesDoNotShareSettings(t *testing.T) {
	a := mustParse(t, []byte("modules:\n  m: {kind: http}\n  n: {kind: http}\norigins: [{url: 'http://h'}]\n"))
	b := mustParse(t, []byte("origins: [{url: 'http://h'}]\n"))
	seen := map[config.Settings]string{}
	for cfgName, cfg := range map[string]*config.Config{"a": a, "b": b} {
		for name, m := range cfg.Modules {
			if m.Settings == nil {
				continue
			}
			if other, dup := seen[m.Settings]; dup {
				t.Errorf("module %s of config %s shares its settings with %s", name, cfgName, other)
			}
			seen[m.Settings] = cfgName + "." + name
		}
	}
}

func TestModuleErrors(t *testing.T) {
	const origin = "origins: [{url: 'http://h'}]\n"
	checkErrors(t, []errorCase{
		// Structure and names.
		{"modules a list", "modules: [a]\n" + origin, []string{"line 1", "modules: want a mapping of names to modules, got a list"}},
		{"module a scalar", "modules:\n  m: http\n" + origin, []string{"line 2", `modules.m: want a mapping, got "http"`}},
		{"module null", "modules:\n  m:\n" + origin, []string{"line 2", "modules.m: want a mapping, got nothing"}},
		{"module name starting with a digit", "modules:\n  1m: {kind: http}\n" + origin, []string{"line 2", `modules: "1m" is not a valid module name`}},
		{"module name with a dot", "modules:\n  a.b: {kind: http}\n" + origin, []string{"line 2", `modules: "a.b" is not a valid module name`}},
		{"module name too long", "modules:\n  m" + strings.Repeat("x", 64) + ": {kind: http}\n" + origin, []string{"line 2", "is not a valid module name", "at most 64"}},
		{"built-in module simple redefined", "modules:\n  simple: {kind: http}\n" + origin, []string{"line 2", `modules.simple: "simple" is a built-in module and cannot be redefined`}},
		{"built-in module tcp redefined", "modules:\n  tcp: {kind: tcp}\n" + origin, []string{"line 2", `modules.tcp: "tcp" is a built-in module`}},
		{"module defined twice", "modules:\n  m: {kind: http}\n  m: {kind: tcp}\n" + origin, []string{"line 3", "modules.m: defined twice"}},
		{"module key given twice", "modules:\n  m:\n    kind: http\n    kind: tcp\n" + origin, []string{"line 4", `modules.m: field "kind" given twice`}},

		// The keys every kind has.
		{"kind missing", "modules:\n  m: {ip_family: ip4}\n" + origin, []string{"line 2", "modules.m: kind: missing (one of http, oxcross, tcp, icmp, dns, path)"}},
		{"kind unknown", "modules:\n  m:\n    kind: udp\n" + origin, []string{"line 3", `modules.m: kind: "udp" is not one of http, oxcross, tcp, icmp, dns, path`}},
		{"kind a list", "modules:\n  m:\n    kind: [http]\n" + origin, []string{"line 3", "modules.m: kind: want a string, got a list"}},
		{"ip_family unknown", "modules:\n  m:\n    kind: http\n    ip_family: ip5\n" + origin, []string{"line 4", `modules.m: ip_family: "ip5" is not ip4 or ip6`}},
		{"no_ip_fallback not a bool", "modules:\n  m:\n    kind: http\n    no_ip_fallback: maybe\n" + origin, []string{"line 4", `modules.m: no_ip_fallback: want true or false, got "maybe"`}},
		{"no_ip_fallback a list", "modules:\n  m:\n    kind: tcp\n    no_ip_fallback: [true]\n" + origin, []string{"line 4", "modules.m: no_ip_fallback: want true or false, got a list"}},
		{"max_body_bytes negative", "modules:\n  m:\n    kind: http\n    max_body_bytes: -1\n" + origin, []string{"line 4", "modules.m: max_body_bytes: -1 is not between 0 and 64 MiB"}},
		{"max_body_bytes over 64 MiB", "modules:\n  m:\n    kind: http\n    max_body_bytes: 67108865\n" + origin, []string{"line 4", "modules.m: max_body_bytes: 67108865 is not between 0 and 64 MiB"}},
		{"max_body_bytes not a number", "modules:\n  m:\n    kind: http\n    max_body_bytes: lots\n" + origin, []string{"line 4", `modules.m: max_body_bytes: "lots" is not a whole number`}},
		{"allowed_targets a string", "modules:\n  m:\n    kind: http\n    allowed_targets: 'https://a/'\n" + origin, []string{"line 4", `modules.m: allowed_targets: want a list of regular expressions, got "https://a/"`}},
		{"allowed_targets a bad regexp", "modules:\n  m:\n    kind: http\n    allowed_targets:\n      - 'https://a/.*'\n      - 'https://(b/'\n" + origin, []string{"line 6", "modules.m: allowed_targets[1]: error parsing regexp: missing closing ): `^(?:https://(b/)$`"}},
		{"allowed_targets an empty pattern", "modules:\n  m:\n    kind: tcp\n    allowed_targets: ['']\n" + origin, []string{"line 4", "modules.m: allowed_targets[0]: empty pattern"}},
		{"allowed_targets a list in a list", "modules:\n  m:\n    kind: tcp\n    allowed_targets: [[a]]\n" + origin, []string{"line 4", "modules.m: allowed_targets[0]: want a string, got a list"}},
		{"allowed_targets too many", "modules:\n  m:\n    kind: icmp\n    allowed_targets: [" + strings.Repeat("a, ", 100) + "a]\n" + origin, []string{"line 4", "modules.m: allowed_targets: 101 patterns, at most 100"}},
		{"unknown module key", "modules:\n  m:\n    kind: http\n    x: 1\n" + origin, []string{"line 4", `modules.m: unknown field "x" (known: kind, ip_family, no_ip_fallback, max_body_bytes, allowed_targets, dns, http, icmp, path, tcp)`}},
		{"settings of another kind: http for tcp", "modules:\n  m:\n    kind: tcp\n    http: {method: GET}\n" + origin, []string{"line 4", "modules.m: http: only for kinds http and oxcross"}},
		{"settings of another kind: tcp for http", "modules:\n  m:\n    kind: http\n    tcp: {tls: true}\n" + origin, []string{"line 4", "modules.m: tcp: only for kind tcp"}},
		{"settings of another kind: tcp for oxcross", "modules:\n  m:\n    kind: oxcross\n    tcp: {tls: true}\n" + origin, []string{"line 4", "modules.m: tcp: only for kind tcp"}},
		{"settings for icmp", "modules:\n  m:\n    kind: icmp\n    http: {method: GET}\n" + origin, []string{"line 4", "modules.m: http: only for kinds http and oxcross"}},

		// A kind's settings: decoded strictly, then validated.
		{"settings a list", "modules:\n  m:\n    kind: http\n    http: [GET]\n" + origin, []string{"line 4", "modules.m: http: want a mapping, got a list"}},
		{"settings a scalar", "modules:\n  m:\n    kind: tcp\n    tcp: tls\n" + origin, []string{"line 4", `modules.m: tcp: want a mapping, got "tls"`}},
		{"unknown settings field", "modules:\n  m:\n    kind: http\n    http:\n      method: GET\n      foo: 1\n" + origin, []string{"line 6", "modules.m: http: field foo not found in type prober.HTTPSettings"}},
		{"unknown tcp settings field", "modules:\n  m:\n    kind: tcp\n    tcp:\n      tls: true\n      tls_config:\n        ca: x\n" + origin, []string{"line 7", "modules.m: tcp: field ca not found in type prober.TLSSettings"}},
		{"settings field of the wrong type", "modules:\n  m:\n    kind: http\n    http:\n      valid_status_codes: ok\n" + origin, []string{"line 5", "modules.m: http: ", "`ok` into []int"}},
		{"method", "modules:\n  m:\n    kind: http\n    http:\n      method: FOO\n" + origin, []string{"line 5", `modules.m: http: method: "FOO" is not an HTTP method`}},
		{"header name", "modules:\n  m:\n    kind: http\n    http:\n      headers: {'X A': b}\n" + origin, []string{"line 5", `modules.m: http: headers: "X A" is not a header name`}},
		{"header value with a line break", "modules:\n  m:\n    kind: oxcross\n    http:\n      headers: {X-A: \"b\\r\\nX-B: c\"}\n" + origin, []string{"line 5", "modules.m: http: headers: X-A: value contains a line break"}},
		{"status code", "modules:\n  m:\n    kind: http\n    http:\n      valid_status_codes: [200, 600]\n" + origin, []string{"line 5", "modules.m: http: valid_status_codes: 600 is not an HTTP status code"}},
		{"body_regexp", "modules:\n  m:\n    kind: http\n    http:\n      body_regexp: '('\n" + origin, []string{"line 5", "modules.m: http: body_regexp: ", "missing closing )"}},
		{"http tls cert without key", "modules:\n  m:\n    kind: http\n    http:\n      tls: {cert_file: c.pem}\n" + origin, []string{"line 5", "modules.m: http: tls: cert_file and key_file go together"}},
		{"clock_filter_samples for http", "modules:\n  m:\n    kind: http\n    http:\n      clock_filter_samples: 4\n" + origin, []string{"line 5", "modules.m: http: field clock_filter_samples not found in type prober.HTTPSettings"}},
		{"clock_filter_samples too many", "modules:\n  m:\n    kind: oxcross\n    http:\n      clock_filter_samples: 65\n" + origin, []string{"line 5", "modules.m: http: clock_filter_samples: 65 is not between 1 and 64"}},
		{"clock_filter_samples zero", "modules:\n  m:\n    kind: oxcross\n    http:\n      clock_filter_samples: 0\n" + origin, []string{"line 5", "modules.m: http: clock_filter_samples: 0 is not between 1 and 64"}},
		{"clock_filter_samples negative", "modules:\n  m:\n    kind: oxcross\n    http:\n      clock_filter_samples: -1\n" + origin, []string{"line 5", "modules.m: http: clock_filter_samples: -1 is not between 1 and 64"}},
		{"tcp tls key without cert", "modules:\n  m:\n    kind: tcp\n    tcp:\n      tls_config: {key_file: k.pem}\n" + origin, []string{"line 5", "modules.m: tcp: tls_config: cert_file and key_file go together"}},

		// An origin of a refused module is refused too.
		{"origin of a refused module", "modules:\n  m: {kind: udp}\norigins:\n  - {url: 'http://h', module: m}\n", []string{`modules.m: kind: "udp"`, "line 4", `origins[0]: module: "m" is not a module`}},
	})
}

// TestModuleErrorsAll: every problem of every module is reported at once,
// each on its own line.
func TestModuleErrorsAll(t *testing.T) {
	_, err := parser.Parse([]byte(`modules:
  web:
    kind: http
    ip_family: ip5
    http:
      method: FOO
      valid_status_codes: [99]
      tls: {key_file: k.pem}
  ssh:
    kind: tcp
    http: {method: GET}
origins: [{url: 'http://h'}]
`))
	want := [][]string{
		{"line 4", `modules.web: ip_family: "ip5"`},
		{"line 6", `modules.web: http: method: "FOO"`},
		{"line 6", "modules.web: http: valid_status_codes: 99"},
		{"line 6", "modules.web: http: tls: cert_file and key_file go together"},
		{"line 11", "modules.ssh: http: only for kinds http and oxcross"},
	}
	checkJoined(t, err, want)
}

// TestModuleEmptySettings: an empty list or mapping in a kind's settings
// is none, as the normalized JSON writes it, so that the config reads back
// from its JSON equal (FuzzParse found `headers: {}` did not).
func TestModuleEmptySettings(t *testing.T) {
	cfg := mustParse(t, []byte(`modules:
  m: {kind: http, http: {headers: {}, valid_status_codes: [], method: GET}}
  n: {kind: oxcross, http: {headers: {}}}
origins: [{url: 'http://h'}]
`))
	if got := cfg.Modules["m"].Settings; !reflect.DeepEqual(got, &prober.HTTPSettings{Method: "GET"}) {
		t.Errorf("module m settings %+v, want no headers or status codes", got)
	}
	if got := cfg.Modules["n"].Settings; !reflect.DeepEqual(got, &prober.OxcrossSettings{}) {
		t.Errorf("module n settings %+v, want the defaults", got)
	}
	b, err := cfg.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if again := mustParse(t, b); !reflect.DeepEqual(again, cfg) {
		t.Errorf("round trip through %s changed the config", b)
	}
}

// TestModuleAllowedTargets: allowed_targets, a key of every kind's
// modules, is read as anchored regular expressions, kept in the normalized
// JSON, and read back equal.
func TestModuleAllowedTargets(t *testing.T) {
	cfg := mustParse(t, []byte(`modules:
  web:
    kind: http
    allowed_targets: ['https://[a-z]+\.example\.com/health', 'http://10\.0\.0\.1:8080/']
    http: {headers: {authorization: Bearer x}}
  ssh:
    kind: tcp
    allowed_targets: ['db[0-9]\.example\.com:22']
  empty: {kind: icmp, allowed_targets: []}
origins: [{url: 'http://h'}]
`))
	web, ssh := cfg.Modules["web"], cfg.Modules["ssh"]
	if want := []string{`https://[a-z]+\.example\.com/health`, `http://10\.0\.0\.1:8080/`}; !reflect.DeepEqual(web.AllowedTargets, want) {
		t.Errorf("web: allowed_targets %q, want %q", web.AllowedTargets, want)
	}
	if got := cfg.Modules["empty"].AllowedTargets; got != nil {
		t.Errorf("empty: allowed_targets %q, want none", got)
	}
	for _, tc := range []struct {
		m      config.Module
		target string
		want   bool
	}{
		{web, "https://api.example.com/health", true},
		{web, "http://10.0.0.1:8080/", true},
		// Anchored at both ends: no prefix, no suffix, no other host.
		{web, "https://api.example.com/health/more", false},
		{web, "https://api.example.com.evil.test/health", false},
		{web, "http://evil.test/?https://api.example.com/health", false},
		{web, "http://10.0.0.1:8080/x", false},
		{ssh, "db1.example.com:22", true},
		{ssh, "db1.example.com:2222", false},
		{ssh, "xdb1.example.com:22", false},
		{cfg.Modules["simple"], "http://h/", false},
	} {
		if got := tc.m.AllowsTarget(tc.target); got != tc.want {
			t.Errorf("module with %q: AllowsTarget(%q) = %v, want %v", tc.m.AllowedTargets, tc.target, got, tc.want)
		}
	}
	b, err := cfg.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"allowed_targets":["db[0-9]\\.example\\.com:22"]`) {
		t.Errorf("normalized JSON lacks ssh's allowed_targets: %s", b)
	}
	if again := mustParse(t, b); !reflect.DeepEqual(again, cfg) {
		t.Errorf("round trip through %s changed the config", b)
	}
}

// TestModuleRestricted: a module is restricted when its settings carry
// credentials (an Authorization, Proxy-Authorization or Cookie header in
// any case, a client certificate) or it lists allowed_targets; the
// built-in modules and plain ones are not.
func TestModuleRestricted(t *testing.T) {
	cfg := mustParse(t, []byte(`modules:
  bearer: {kind: http, http: {headers: {Authorization: Bearer x}}}
  lower: {kind: oxcross, http: {headers: {authorization: Basic eDp5}}}
  cookie: {kind: http, http: {headers: {COOKIE: session=1}}}
  proxy: {kind: http, http: {headers: {Proxy-Authorization: Basic eDp5}}}
  cert: {kind: http, http: {tls: {cert_file: c.pem, key_file: k.pem}}}
  tcpcert: {kind: tcp, tcp: {tls: true, tls_config: {cert_file: c.pem, key_file: k.pem}}}
  listed: {kind: icmp, allowed_targets: ['10\.0\.0\.[0-9]+']}
  plain: {kind: http, http: {headers: {X-Probe: oxcross, Host: example.com}, tls: {ca_file: ca.pem}}}
  tcptls: {kind: tcp, tcp: {tls: true, tls_config: {ca_file: ca.pem}}}
origins: [{url: 'http://h'}]
`))
	for name, want := range map[string][2]bool{ // credentials, restricted
		"bearer": {true, true}, "lower": {true, true}, "cookie": {true, true}, "proxy": {true, true},
		"cert": {true, true}, "tcpcert": {true, true}, "listed": {false, true},
		"plain": {false, false}, "tcptls": {false, false},
		"simple": {false, false}, "advanced": {false, false}, "tcp": {false, false}, "icmp": {false, false},
	} {
		m := cfg.Modules[name]
		if got := [2]bool{m.CarriesCredentials(), m.Restricted()}; got != want {
			t.Errorf("module %s: credentials, restricted = %v, want %v", name, got, want)
		}
	}
}
