package config_test

import (
	"bytes"
	"encoding/json"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
)

// originalTarget is what an origin resolves to, for these tests.
type originalTarget struct{ id, url, module string }

func targetsOf(cfg *config.Config) []originalTarget {
	var out []originalTarget
	for _, t := range cfg.Origins {
		out = append(out, originalTarget{t.ID, t.URL, t.Module})
	}
	return out
}

// checkWarnings checks that warnings are one for each of want, each
// containing all of its substrings (its line, entry, field).
func checkWarnings(t *testing.T, warnings []string, want [][]string) {
	t.Helper()
	if len(warnings) != len(want) {
		t.Errorf("%d warnings, want %d:\n%s", len(warnings), len(want), strings.Join(warnings, "\n"))
	}
	for _, w := range want {
		found := false
		for _, got := range warnings {
			found = found || containsAll(got, w...)
		}
		if !found {
			t.Errorf("no warning contains all of %q:\n%s", w, strings.Join(warnings, "\n"))
		}
	}
}

// sameTarget reports whether the original's URL (composed of scheme,
// hostname, port and mode) is what the new leaf requests at url.
func sameTarget(original, target string) bool {
	a, err1 := url.Parse(original)
	b, err2 := url.Parse(target)
	if err1 != nil || err2 != nil {
		return false
	}
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if u.Scheme == "https" {
			return "443"
		}
		return "80"
	}
	path := func(u *url.URL) string {
		if u.EscapedPath() == "" {
			return "/"
		}
		return u.EscapedPath()
	}
	return a.Scheme == b.Scheme && a.Hostname() == b.Hostname() && port(a) == port(b) && path(a) == path(b) && a.RawQuery == b.RawQuery && b.User == nil
}

var (
	edge1  = originalTarget{"edge1.example.com-9301-http", "http://edge1.example.com:9301/oxcross", "advanced"}
	status = originalTarget{"status.example.org-443-https", "https://status.example.org:443/", "simple"}
)

// TestOriginalFiles: the config files the original accepted load, with a
// warning naming the line of each thing it ignored or skipped, and their
// origins are the ones the original probed, under the same origin ids.
func TestOriginalFiles(t *testing.T) {
	for _, tc := range []struct {
		file     string
		warnings [][]string
	}{
		{"file-comment.json", [][]string{
			{"line 2:", `unknown field "comment" ignored`, "original"},
			{"line 11:", `origins[0]: unknown field "location" ignored`},
			{"line 18:", `origins[1]: unknown field "note" ignored`},
		}},
		{"file-capitalised.json", [][]string{
			{"line 2:", `field "Timeout" read as "timeout"`},
			{"line 3:", `field "Interval" read as "interval"`},
			{"line 4:", `field "Origins" read as "origins"`},
			{"line 6:", `origins[0]: field "Scheme" read as "scheme"`},
			{"line 7:", `origins[0]: field "Hostname" read as "hostname"`},
			{"line 8:", `origins[0]: field "Port" read as "port"`},
			{"line 9:", `origins[0]: field "Mode" read as "mode"`},
			{"line 13:", `origins[1]: field "HOSTNAME" read as "hostname"`},
		}},
		{"file-ftp.json", [][]string{
			{"line 12:", `origins[1]: scheme: "ftp" is not http or https; skipped`},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data := readTestdata(t, filepath.Join("original", tc.file))
			cfg := mustParse(t, data)
			if cfg.Interval != 30*time.Second || cfg.Timeout != 10*time.Second {
				t.Errorf("interval %s, timeout %s, want 30s and 10s", cfg.Interval, cfg.Timeout)
			}
			if got, want := targetsOf(cfg), []originalTarget{edge1, status}; !reflect.DeepEqual(got, want) {
				t.Errorf("origins %+v, want %+v", got, want)
			}
			checkWarnings(t, cfg.Warnings, tc.warnings)
			// The original read the same origins from it.
			orig, err := testutil.ParseOriginalConfig(data)
			if err != nil {
				t.Fatal(err)
			}
			if len(orig.Origins) != len(cfg.Origins) {
				t.Fatalf("the original reads %d origins: %+v", len(orig.Origins), orig.Origins)
			}
			for i, o := range orig.Origins {
				if got := cfg.Origins[i]; got.ID != o.ID() || !sameTarget(o.URL, got.URL) || got.Module != o.Mode {
					t.Errorf("origins[%d] = %+v, the original's %+v", i, got, o)
				}
			}
		})
	}
}

// TestOriginalConfigserverResponses: the new leaf reads the original
// configserver's /config, the URL key included, without a warning.
func TestOriginalConfigserverResponses(t *testing.T) {
	for name, want := range map[string]struct {
		interval, timeout time.Duration
		origins           []originalTarget
	}{
		"configserver-config.json":          {30 * time.Second, 10 * time.Second, []originalTarget{edge1, status, {"10.0.0.7-8080-http", "http://10.0.0.7:8080/", "simple"}}},
		"configserver-config-indented.json": {15 * time.Second, 5 * time.Second, []originalTarget{edge1}},
	} {
		t.Run(name, func(t *testing.T) {
			data := readTestdata(t, filepath.Join("original", name))
			// The fixture is what the original configserver serves: its
			// config, read and encoded as the original did.
			orig, err := testutil.ParseOriginalConfig(data)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := json.Marshal(orig)
			if err != nil {
				t.Fatal(err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, data); err != nil {
				t.Fatal(err)
			}
			if compact.String() != string(enc) {
				t.Errorf("fixture\n %s\nis not what the original serves:\n %s", compact.String(), enc)
			}
			for _, parse := range []func([]byte) (*config.Config, error){parser.Parse, parser.ParseView} {
				cfg, err := parse(data)
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Interval != want.interval || cfg.Timeout != want.timeout {
					t.Errorf("interval %s, timeout %s, want %s and %s", cfg.Interval, cfg.Timeout, want.interval, want.timeout)
				}
				if got := targetsOf(cfg); !reflect.DeepEqual(got, want.origins) {
					t.Errorf("origins %+v, want %+v", got, want.origins)
				}
				if len(cfg.Warnings) > 0 {
					t.Errorf("warnings: %q", cfg.Warnings)
				}
			}
		})
	}
}

// TestOriginalLeniency: what else the original read where the rules refuse
// it, each with its warning.
func TestOriginalLeniency(t *testing.T) {
	const h = `{"scheme": "http", "hostname": "h", "port": 9301}`
	hTarget := originalTarget{"h-9301-http", "http://h:9301/oxcross", "advanced"}
	for _, tc := range []struct {
		name              string
		in                string
		interval, timeout time.Duration
		origins           []originalTarget
		warnings          [][]string
	}{
		{"a key given again", `{"timeout": 5,
"Timeout": 7, "origins": [` + h + `]}`, 10 * time.Second, 7 * time.Second, []originalTarget{hTarget}, [][]string{
			{"line 2:", `"Timeout" read as "timeout"`}, {"line 2:", `"timeout" given again (before on line 1)`, "the last one counts"}}},
		{"null", `{"interval": null,
"origins": [{"scheme": "http", "hostname": "h", "port": 9301, "mode": null}]}`, 10 * time.Second, 10 * time.Second, []originalTarget{hTarget}, [][]string{
			{"line 1:", "interval: null ignored"}, {"line 2:", "origins[0]: mode: null ignored"}}},
		{"zero interval and timeout", `{"interval": 0, "timeout": 0, "origins": [` + h + `]}`, 10 * time.Second, 10 * time.Second, []originalTarget{hTarget}, [][]string{
			{"line 1:", "interval: 0 means the default"}, {"line 1:", "timeout: 0 means the default"}}},
		{"timeout longer than the interval", `{"interval": 5, "timeout": 10, "origins": [` + h + `]}`, 5 * time.Second, 5 * time.Second, []originalTarget{hTarget}, [][]string{
			{"line 1:", "timeout: 10s is longer than the interval 5s, cut to it"}}},
		{"timeout longer than the default interval", `{"timeout": 15, "origins": [` + h + `]}`, 10 * time.Second, 10 * time.Second, []originalTarget{hTarget}, [][]string{
			{"line 1:", "timeout: 15s is longer than the interval 10s"}}},
		{"a mode it did not know", `{"origins": [
{"scheme": "http", "hostname": "h", "port": 9301, "mode": "Advanced"}]}`, 10 * time.Second, 10 * time.Second, []originalTarget{{"h-9301-http", "http://h:9301/", "simple"}}, [][]string{
			{"line 2:", `origins[0]: mode: "Advanced" is not a mode; probed as simple`}}},
		{"ports it skipped or could not probe", `{"origins": [` + h + `,
{"scheme": "http", "hostname": "a", "port": 0},
{"scheme": "http", "hostname": "b", "port": -1},
{"scheme": "http", "hostname": "c", "port": 70000},
{"scheme": "http", "hostname": "d", "port": 40000}]}`, 10 * time.Second, 10 * time.Second, []originalTarget{hTarget, {"d-40000-http", "http://d:40000/oxcross", "advanced"}}, [][]string{
			{"line 2:", "origins[1]: port: 0 is outside 1-65535; skipped"},
			{"line 3:", "origins[2]: port: -1 is outside 1-65535; skipped"},
			{"line 4:", "origins[3]: port: 70000 is outside 1-65535; skipped"},
			{"line 5:", "origins[4]: port: 40000: the original Oxcross skipped ports above 32767; this one probes it"}}},
		{"hosts it could not probe", `{"origins": [` + h + `,
{"scheme": "http", "port": 80},
{"scheme": "https", "hostname": "a b"},
{"scheme": "HTTP", "hostname": "c"},
{"hostname": "d"}]}`, 10 * time.Second, 10 * time.Second, []originalTarget{hTarget}, [][]string{
			{"line 2:", "origins[1]: hostname: missing; the original Oxcross could not probe it; skipped"},
			{"line 3:", `origins[2]: hostname: "a b" is not a host name or IP address; skipped`},
			{"line 4:", `origins[3]: scheme: "HTTP" is not http or https; skipped`},
			{"line 5:", "origins[4]: scheme: missing (http or https); skipped"}}},
		{"its URL key", `{"origins": [
{"scheme": "http", "hostname": "h", "port": 9301, "mode": "advanced", "URL": "http://h:9301/oxcross"},
{"scheme": "http", "hostname": "i", "port": 9301, "mode": "simple", "Url": "http://elsewhere/"}]}`, 10 * time.Second, 10 * time.Second, []originalTarget{hTarget, {"i-9301-http", "http://i:9301/", "simple"}}, [][]string{
			{"line 3:", `origins[1]: field "Url" read as "URL"`},
			{"line 3:", `origins[1]: URL: "http://elsewhere/" ignored: the URL is composed of scheme, hostname, port and mode (http://i:9301)`}}},
		// Kinds the original did not have keep their rules: the original's
		// keys with a new mode mean what they mean in YAML.
		{"a tcp origin", `{"origins": [{"hostname": "h", "port": 22, "mode": "tcp"}]}`, 10 * time.Second, 10 * time.Second, []originalTarget{{"h-22-tcp", "", "tcp"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, []byte(tc.in))
			if cfg.Interval != tc.interval || cfg.Timeout != tc.timeout {
				t.Errorf("interval %s, timeout %s, want %s and %s", cfg.Interval, cfg.Timeout, tc.interval, tc.timeout)
			}
			if got := targetsOf(cfg); !reflect.DeepEqual(got, tc.origins) {
				t.Errorf("origins %+v, want %+v", got, tc.origins)
			}
			checkWarnings(t, cfg.Warnings, tc.warnings)
		})
	}
}

// TestOriginalShapeOnly: the leniency covers the original's JSON shape
// only. YAML, JSON with a key this Oxcross added, and the served config's
// own part are strict, with the errors they always had.
func TestOriginalShapeOnly(t *testing.T) {
	const origin = `{"scheme": "http", "hostname": "h", "port": 9301}`
	checkErrors(t, []errorCase{
		{"YAML with a comment key", "comment: x\norigins:\n  - {scheme: http, hostname: h, port: 9301}\n", []string{"line 1", `unknown field "comment"`}},
		{"YAML with a key of the original in capitals", "Timeout: 10\norigins:\n  - {scheme: http, hostname: h, port: 9301}\n", []string{"line 1", `unknown field "Timeout"`}},
		{"YAML with an ftp origin", "origins:\n  - {scheme: http, hostname: h}\n  - {scheme: ftp, hostname: f}\n", []string{"line 3", `origins[1]: scheme: "ftp" is not http or https`}},
		{"YAML flow style", `{comment: x, origins: [` + origin + `]}`, []string{"line 1", `unknown field "comment"`}},
		{"JSON with modules", `{"modules": {}, "comment": "x", "origins": [` + origin + `]}`, []string{"line 1", `unknown field "comment"`}},
		{"JSON with an origin's name", `{"origins": [{"name": "a", "scheme": "ftp", "hostname": "h"}]}`, []string{"line 1", `origins[0] ("a"): scheme: "ftp" is not http or https`}},
		{"JSON with a url", `{"Comment": 1, "origins": [{"url": "http://h/"}]}`, []string{"line 1", `unknown field "Comment"`}},
		{"JSON with url and the original's keys", `{"origins": [{"scheme": "http", "hostname": "h", "port": 1, "url": "http://h:1/oxcross"}]}`, []string{"line 1", "scheme: not allowed together with url"}},
		{"JSON with a new key in an origin", `{"origins": [{"scheme": "http", "hostname": "h", "interval": 5, "note": "x"}]}`, []string{"line 1", `unknown field "note"`}},
		{"served, a key beside it", `{"comment": 1, "oxcross": {"origins": [{"url": "http://h/"}]}}`, []string{"line 1", `unknown field "comment"`}},
		{"served, the original's shape inside", `{"oxcross": {"Origins": [` + origin + `]}}`, []string{"line 1", `unknown field "Origins"`}},
		{"every origin skipped", `{"origins": [{"scheme": "ftp", "hostname": "h", "port": 21}]}`, []string{"line 1", "origins: all 1 skipped"}},
		{"what the original refused too", `{"origins": [{"scheme": "http", "hostname": "h", "mode": "tcp"}]}`, []string{"line 1", "scheme: not for module tcp"}},
	})
}

// TestOriginalShapeMeansTheSame: JSON in the original's shape that the
// rules accept means what it means as YAML, without a warning: the
// leniency only reads what they would refuse.
func TestOriginalShapeMeansTheSame(t *testing.T) {
	for _, in := range []string{
		string(readTestdata(t, "original.json")),
		`{"interval": "1500ms", "timeout": 1, "origins": [{"scheme": "https", "hostname": "h", "mode": "simple"}]}`,
		`{"origins": [{"hostname": "h", "port": 22, "mode": "tcp"}, {"hostname": "::1", "mode": "icmp"}]}`,
		`{"origins": [{"scheme": "http", "hostname": "[::1]", "port": "9301", "mode": ""}]}`,
	} {
		json := mustParse(t, []byte(in))
		yaml := mustParse(t, []byte("# YAML, not JSON\n"+in))
		if json.Warnings != nil {
			t.Errorf("%s: warnings %q", in, json.Warnings)
		}
		if !reflect.DeepEqual(targetsOf(json), targetsOf(yaml)) || json.Interval != yaml.Interval || json.Timeout != yaml.Timeout {
			t.Errorf("%s: read as %+v, as YAML %+v", in, json, yaml)
		}
	}
}

// TestServed: GET /config's body. The original leaf reads its integer
// seconds and the origins it would probe as the new leaf does; the new
// leaf reads the config itself under "oxcross", exactly.
func TestServed(t *testing.T) {
	cfg := mustParse(t, []byte(`interval: 1500ms
timeout: 200ms
modules:
  web: {kind: http, http: {method: HEAD}}
origins:
  - {name: adv, url: 'http://a.example:9301'}
  - {scheme: https, hostname: b.example, mode: simple}
  - {url: 'http://[::1]:8080/', mode: simple}
  - {url: 'http://c.example/health', mode: simple}
  - {name: q, url: 'http://c.example/?q=1', mode: simple}
  - {name: u, url: 'http://u:p@c.example/', mode: simple}
  - {name: high, url: 'http://c.example:40000'}
  - {name: o2, url: 'http://c.example/other'}
  - {url: 'http://d.example/', module: web}
  - {address: 'e.example:22', mode: tcp}
  - {hostname: f.example, mode: icmp}
  - {name: eu, url: 'http://g.example:9301', leaf_selector: {region: eu}}
  - {name: zone, hostname: 'fe80::1%eth0', scheme: http, port: 9301}
`))
	snap, err := config.NewSnapshot(cfg)
	if err != nil {
		t.Fatal(err)
	}
	normalized, err := cfg.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"interval":2,"timeout":1,"origins":[` +
		`{"scheme":"http","hostname":"a.example","port":9301,"mode":"advanced"},` +
		`{"scheme":"https","hostname":"b.example","port":443,"mode":"simple"},` +
		`{"scheme":"http","hostname":"[::1]","port":8080,"mode":"simple"}` +
		`],"oxcross":` + string(normalized) + `}`
	if string(snap.Body) != want {
		t.Errorf("served\n %s\nwant\n %s", snap.Body, want)
	}
	if snap.ETag != config.ETag(snap.Body) {
		t.Errorf("ETag %s is not the whole body's", snap.ETag)
	}
	// The new leaf reads it back exactly, as a config and as a view.
	for _, parse := range []func([]byte) (*config.Config, error){parser.Parse, parser.ParseView} {
		again, err := parse(snap.Body)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again, cfg) {
			t.Errorf("read back as %+v, want %+v", again, cfg)
		}
	}
	// A leaf of region eu: its view, and what the original leaf reads of it.
	view, err := config.NewSnapshot(cfg.ForLeaf(map[string]string{"region": "eu"}))
	if err != nil {
		t.Fatal(err)
	}
	orig, err := testutil.ParseOriginalConfig(view.Body)
	if err != nil {
		t.Fatal(err)
	}
	if orig.Interval != 2 || orig.Timeout != 1 {
		t.Errorf("the original reads interval %d, timeout %d", orig.Interval, orig.Timeout)
	}
	var urls []string
	for _, o := range orig.Origins {
		urls = append(urls, o.URL)
	}
	if w := []string{"http://a.example:9301/oxcross", "https://b.example:443", "http://[::1]:8080", "http://g.example:9301/oxcross"}; !reflect.DeepEqual(urls, w) {
		t.Errorf("the original leaf of region eu probes %q, want %q", urls, w)
	}
}

// TestServedNoOriginalOrigins: a view without an origin the original can
// probe lists none; the original leaf refuses it (and keeps its config),
// the new one reads it.
func TestServedNoOriginalOrigins(t *testing.T) {
	cfg := mustParse(t, []byte("origins: [{address: 'h:22', mode: tcp}]"))
	snap, err := config.NewSnapshot(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(snap.Body), `{"interval":10,"timeout":10,"origins":[],"oxcross":{`) {
		t.Errorf("served %s", snap.Body)
	}
	if _, err := testutil.ParseOriginalConfig(snap.Body); err == nil {
		t.Error("the original reads a config without origins")
	}
	if again, err := parser.Parse(snap.Body); err != nil || len(again.Origins) != 1 {
		t.Errorf("read back as %+v, %v", again, err)
	}
}

// TestCheckWarnings: --config.check prints each warning with the file and
// its line, and succeeds.
func TestCheckWarnings(t *testing.T) {
	path := filepath.Join("testdata", "original", "file-ftp.json")
	var out, errOut bytes.Buffer
	if code := config.Check(path, parser, &out, &errOut); code != 0 {
		t.Fatalf("Check: %d %s", code, errOut.String())
	}
	want := "WARNING: config file " + path + `: line 12: origins[1]: scheme: "ftp" is not http or https; skipped, as the original Oxcross did` + "\n"
	if errOut.String() != want {
		t.Errorf("Check wrote to stderr\n%s\nwant\n%s", errOut.String(), want)
	}
	if !strings.HasPrefix(out.String(), "SUCCESS: "+path+" is valid\n2 origins (advanced 1, simple 1)") {
		t.Errorf("Check wrote\n%s", out.String())
	}
}
