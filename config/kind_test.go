package config_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
)

// testSettings are the settings of the test kinds: `x`, which may not be
// "bad" and, with y, not "worse" either.
type testSettings struct {
	X string `yaml:"x,omitempty" json:"x,omitempty"`
	Y int    `yaml:"y,omitempty" json:"y,omitempty"`
}

func (s *testSettings) Validate() error {
	var errs []error
	if s.X == "bad" || s.X == "worse" {
		errs = append(errs, errors.New("x: bad"))
	}
	if s.X == "worse" && s.Y != 0 {
		errs = append(errs, errors.New("y: worse"))
	}
	return errors.Join(errs...)
}

func newTestSettings() config.Settings { return &testSettings{} }

func mustKinds(t *testing.T, kinds ...config.Kind) *config.Kinds {
	t.Helper()
	ks, err := config.NewKinds(kinds...)
	if err != nil {
		t.Fatalf("NewKinds: %v", err)
	}
	return ks
}

// TestNewKindsErrors: kinds must have distinct names and built-in modules,
// and a settings key that is neither without settings nor a key every
// module has.
func TestNewKindsErrors(t *testing.T) {
	a := config.Kind{Name: "a", Builtin: "m"}
	for _, tc := range []struct {
		name  string
		kinds []config.Kind
		want  string
	}{
		{"no name", []config.Kind{{Builtin: "m"}}, "probe kind without a name"},
		{"name twice", []config.Kind{a, {Name: "a"}}, `probe kind "a" registered twice`},
		{"built-in module twice", []config.Kind{a, {Name: "b", Builtin: "m"}}, `probe kinds "a" and "b" both define the built-in module "m"`},
		{"settings key without settings", []config.Kind{{Name: "a", SettingsKey: "a"}}, `probe kind "a": settings key "a" without NewSettings`},
		{"settings key kind", []config.Kind{{Name: "a", SettingsKey: "kind", NewSettings: newTestSettings}}, `probe kind "a": settings key "kind" is a module key of every kind`},
		{"settings key ip_family", []config.Kind{{Name: "a", SettingsKey: "ip_family", NewSettings: newTestSettings}}, `settings key "ip_family" is a module key of every kind`},
		{"settings key no_ip_fallback", []config.Kind{{Name: "a", SettingsKey: "no_ip_fallback", NewSettings: newTestSettings}}, `settings key "no_ip_fallback" is a module key of every kind`},
		{"settings key max_body_bytes", []config.Kind{{Name: "a", SettingsKey: "max_body_bytes", NewSettings: newTestSettings}}, `settings key "max_body_bytes" is a module key of every kind`},
		{"settings key allowed_targets", []config.Kind{{Name: "a", SettingsKey: "allowed_targets", NewSettings: newTestSettings}}, `settings key "allowed_targets" is a module key of every kind`},
	} {
		ks, err := config.NewKinds(tc.kinds...)
		if err == nil || ks != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: NewKinds = %v, %v; want an error containing %q", tc.name, ks, err, tc.want)
		}
	}
	// Kinds may share a settings key (http and oxcross do).
	mustKinds(t, config.Kind{Name: "a", SettingsKey: "s", NewSettings: newTestSettings}, config.Kind{Name: "b", SettingsKey: "s", NewSettings: newTestSettings})
	mustKinds(t)
}

func TestKinds(t *testing.T) {
	ks := mustKinds(t,
		config.Kind{Name: "web", Builtin: "w", Target: config.TargetURL, SettingsKey: "web", NewSettings: newTestSettings},
		config.Kind{Name: "port", Builtin: "p", Target: config.TargetHostPort},
		config.Kind{Name: "host", Target: config.TargetHost},
	)
	if got, want := ks.Names(), []string{"web", "port", "host"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names() = %q, want %q (registration order)", got, want)
	}
	k, ok := ks.Lookup("web")
	if !ok || k.Name != "web" || k.DefaultPath != "/" {
		t.Errorf(`Lookup("web") = %+v, %v; want the kind, its default path "/"`, k, ok)
	}
	if k, ok := ks.Lookup("nope"); ok || k != nil {
		t.Errorf(`Lookup("nope") = %+v, %v`, k, ok)
	}
	for name, want := range map[string]bool{"w": true, "p": true, "web": false, "host": false, "": false} {
		if ks.IsBuiltin(name) != want {
			t.Errorf("IsBuiltin(%q) = %v, want %v", name, !want, want)
		}
	}
	want := map[string]config.Module{"w": {Kind: "web", Settings: &testSettings{}}, "p": {Kind: "port"}}
	mods := ks.BuiltinModules()
	if !reflect.DeepEqual(mods, want) {
		t.Errorf("BuiltinModules() = %+v, want %+v", mods, want)
	}
	// Each call has settings of its own.
	if ks.BuiltinModules()["w"].Settings == mods["w"].Settings {
		t.Errorf("BuiltinModules() hands out the same settings twice")
	}
	base := ks.Base()
	if base.Interval != config.DefaultInterval || base.Timeout != config.DefaultTimeout || len(base.Origins) != 0 || !reflect.DeepEqual(base.Modules, want) {
		t.Errorf("Base() = %+v", base)
	}
	// Base is what /probe resolves against before a config is loaded.
	if tg, _, err := base.ProbeTarget("h:1", "p", config.DefaultTimeout); err != nil || tg.Address != "h:1" {
		t.Errorf("ProbeTarget of Base(): %+v, %v", tg, err)
	}
}

// TestKindTargets: a kind's target shape and path decide what its origins
// take and resolve to.
func TestKindTargets(t *testing.T) {
	ks := mustKinds(t,
		config.Kind{Name: "health", Builtin: "advanced", Target: config.TargetURL, DefaultPath: "/health"},
		config.Kind{Name: "status", Builtin: "status", Target: config.TargetURL, DefaultPath: "/status", FixedPath: true},
		config.Kind{Name: "port", Builtin: "port", Target: config.TargetHostPort},
		config.Kind{Name: "host", Builtin: "host", Target: config.TargetHost},
	)
	p := config.Parser{Kinds: ks}
	cfg, err := p.Parse([]byte(`origins:
  - {url: 'http://h:80'}
  - {url: 'http://h:81/'}
  - {scheme: https, hostname: h}
  - {scheme: http, hostname: h, port: 82, path: /x}
  - {url: 'http://h:83', mode: status}
  - {url: 'http://h:84/', mode: status}
  - {url: 'http://h:85/other', mode: status}
  - {scheme: http, hostname: h, port: 86, mode: status}
  - {address: 'h:87', mode: port}
  - {hostname: h, mode: host}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range cfg.Origins {
		got = append(got, o.ID+" "+o.URL+o.Address)
	}
	want := []string{
		"h-80-http http://h:80/health", // a kind's default path
		"h-81-http http://h:81/",       // not fixed: a URL's own "/" is kept
		"h-443-https https://h:443/health",
		"h-82-http http://h:82/x",
		"h-83-http http://h:83/status",
		"h-84-http http://h:84/status", // fixed: it replaces "/"
		"h-85-http http://h:85/other",  // but not another path
		"h-86-http http://h:86/status",
		"h-87-port h:87", // origin_id host-port-kind
		"h-host h",       // and host-kind
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("origins\n got  %q\n want %q", got, want)
	}

	_, err = p.Parse([]byte("origins:\n  - {scheme: http, hostname: h, mode: status, path: /x}\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2: origins[0]: path: not for module status (kind status), which always probes /status") {
		t.Errorf("a path for a kind with a fixed one: %v", err)
	}
	_, err = p.Parse([]byte("origins:\n  - {address: 'h:1', mode: host}\n"))
	if err == nil || !strings.Contains(err.Error(), `line 2: origins[0]: address: "h:1" is not a host name or IP address`) {
		t.Errorf("host:port for a host kind: %v", err)
	}
}

// TestKindDefaultPort: a host:port kind with a default port takes a host
// alone, in an address, a hostname or a /probe target; an explicit port
// wins.
func TestKindDefaultPort(t *testing.T) {
	ks := mustKinds(t, config.Kind{Name: "dns", Builtin: "dns", Target: config.TargetHostPort, DefaultPort: 53})
	p := config.Parser{Kinds: ks}
	cfg, err := p.Parse([]byte(`origins:
  - {address: 'ns.test', mode: dns}
  - {address: 'ns.test:5353', mode: dns}
  - {hostname: ns.test, mode: dns, name: by-hostname}
  - {hostname: ns.test, port: 54, mode: dns}
  - {address: '192.0.2.1', mode: dns}
  - {address: '2001:db8::1', mode: dns}
  - {address: '[2001:db8::2]', mode: dns}
  - {address: '[2001:db8::3]:55', mode: dns}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range cfg.Origins {
		got = append(got, o.ID+" "+o.Address)
	}
	want := []string{
		"ns.test-53-dns ns.test:53",
		"ns.test-5353-dns ns.test:5353",
		"by-hostname ns.test:53",
		"ns.test-54-dns ns.test:54",
		"192.0.2.1-53-dns 192.0.2.1:53",
		"2001:db8::1-53-dns [2001:db8::1]:53",
		"2001:db8::2-53-dns [2001:db8::2]:53",
		"2001:db8::3-55-dns [2001:db8::3]:55",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("origins\n got  %q\n want %q", got, want)
	}
	for raw, want := range map[string]string{"ns.test": "ns.test:53", "[::1]": "[::1]:53", "::1": "[::1]:53", "h:1": "h:1"} {
		if tg, _, err := ks.Base().ProbeTarget(raw, "dns", config.DefaultTimeout); err != nil || tg.Address != want {
			t.Errorf("ProbeTarget(%q) = %q, %v; want %q", raw, tg.Address, err, want)
		}
	}
	for _, bad := range []string{"ns.test:", "ns.test:x", "a b"} {
		if _, _, err := ks.Base().ProbeTarget(bad, "dns", config.DefaultTimeout); err == nil {
			t.Errorf("ProbeTarget(%q): no error", bad)
		}
	}
}

// TestKindsWithoutDefaultModule: an origin that names no module takes the
// module advanced; with kinds that have none it must name one.
func TestKindsWithoutDefaultModule(t *testing.T) {
	p := config.Parser{Kinds: mustKinds(t, config.Kind{Name: "port", Builtin: "port", Target: config.TargetHostPort})}
	_, err := p.Parse([]byte("origins:\n  - {address: 'h:1'}\n"))
	if err == nil || !strings.Contains(err.Error(), `line 2: origins[0]: mode: missing, and there is no default module "advanced" (known: port)`) {
		t.Errorf("an origin without a module: %v", err)
	}
	if _, err := p.Parse([]byte("origins:\n  - {address: 'h:1', module: port}\n")); err != nil {
		t.Errorf("an origin naming its module: %v", err)
	}
}

// TestKindSettings: a kind's settings are read from its key, strictly,
// validated by the kind (every problem on a line of its own), and written
// back under the key.
func TestKindSettings(t *testing.T) {
	ks := mustKinds(t,
		config.Kind{Name: "a", Builtin: "advanced", Target: config.TargetURL, SettingsKey: "s", NewSettings: newTestSettings},
		config.Kind{Name: "b", Target: config.TargetHost, SettingsKey: "s", NewSettings: newTestSettings},
		config.Kind{Name: "c", Target: config.TargetHost, SettingsKey: "s", NewSettings: newTestSettings},
		config.Kind{Name: "d", Target: config.TargetHost, SettingsKey: "t", NewSettings: newTestSettings},
		config.Kind{Name: "e", Target: config.TargetHost},
	)
	p := config.Parser{Kinds: ks}
	cfg, err := p.Parse([]byte(`modules:
  m: {kind: b, s: {x: y, y: 2}}
  n: {kind: d}
origins: [{hostname: h, module: m}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Modules["m"].Settings; !reflect.DeepEqual(got, &testSettings{X: "y", Y: 2}) {
		t.Errorf("module m settings %+v", got)
	}
	if got := cfg.Modules["n"].Settings; !reflect.DeepEqual(got, &testSettings{}) {
		t.Errorf("module n without settings: %+v, want the defaults", got)
	}
	b, err := cfg.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"m":{"kind":"b","s":{"x":"y","y":2}}`) || !strings.Contains(string(b), `"n":{"kind":"d"}`) {
		t.Errorf("MarshalJSON = %s, want the settings under their key, defaults left out", b)
	}
	if again, err := p.Parse(b); err != nil || !reflect.DeepEqual(again, cfg) {
		t.Errorf("round trip through %s: %v", b, err)
	}

	_, err = p.Parse([]byte(`modules:
  m1: {kind: d, s: {x: y}}
  m2: {kind: e, s: {x: y}}
  m3: {kind: a, t: {x: y}}
  m4:
    kind: a
    s: {x: worse, y: 1}
  m5: {kind: a, s: {z: 1}}
  m6: {kind: a, u: 1}
origins: [{url: 'http://h'}]
`))
	for _, want := range []string{
		"line 2: modules.m1: s: only for kinds a, b and c", // a shared key lists its kinds
		"line 3: modules.m2: s: only for kinds a, b and c",
		"line 4: modules.m3: t: only for kind d",
		"line 7: modules.m4: s: x: bad\n", // each of Validate's problems on its own line
		"line 7: modules.m4: s: y: worse",
		"line 8: modules.m5: s: field z not found in type config_test.testSettings",
		`line 9: modules.m6: unknown field "u" (known: kind, ip_family, no_ip_fallback, max_body_bytes, allowed_targets, s, t)`,
	} {
		if err == nil || !strings.Contains(err.Error()+"\n", want) {
			t.Errorf("error %v, want it to contain %q", err, want)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 7 {
		t.Errorf("%d errors, want 7:\n%v", n, err)
	}
}

// TestKindDefaultInterval: a kind's own interval and timeout apply to its
// origins that set none, over the top level's; an origin's own win, and
// the kind's timeout is cut to the origin's interval.
func TestKindDefaultInterval(t *testing.T) {
	p := config.Parser{Kinds: mustKinds(t,
		config.Kind{Name: "slow", Builtin: "slow", Target: config.TargetHost, DefaultInterval: 5 * time.Minute, DefaultTimeout: time.Minute},
		config.Kind{Name: "fast", Builtin: "fast", Target: config.TargetHost},
	)}
	cfg, err := p.Parse([]byte(`interval: 30s
timeout: 5s
origins:
  - {name: a, address: h, mode: slow}
  - {name: b, address: h, mode: slow, interval: 20s}
  - {name: c, address: h, mode: slow, interval: 2m, timeout: 90s}
  - {name: d, address: h, mode: fast}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]time.Duration{
		"a": {5 * time.Minute, time.Minute},
		"b": {20 * time.Second, 20 * time.Second},
		"c": {2 * time.Minute, 90 * time.Second},
		"d": {30 * time.Second, 5 * time.Second},
	}
	for _, o := range cfg.Origins {
		if got := [2]time.Duration{o.Interval, o.Timeout}; got != want[o.ID] {
			t.Errorf("origin %s: interval, timeout %v, want %v", o.ID, got, want[o.ID])
		}
	}
}
