package config_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
	"github.com/oxcross/oxcross/prober"
)

// kinds are the probe kinds Oxcross ships; the config package knows none
// itself, so its tests parse with these.
var kinds = prober.DefaultKinds(slog.New(slog.DiscardHandler))

// parser parses with the shipped kinds and no limits.
var parser = kinds.Parser(config.Limits{})

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t testing.TB, data []byte) *config.Config {
	t.Helper()
	cfg, err := parser.Parse(data)
	if err != nil {
		t.Fatalf("Parse(%q): unexpected error: %v", data, err)
	}
	if cfg == nil {
		t.Fatalf("Parse(%q): nil config without an error", data)
	}
	return cfg
}

func checkConfig(t *testing.T, got, want *config.Config) {
	t.Helper()
	if got.Interval != want.Interval || got.Timeout != want.Timeout {
		t.Errorf("config interval/timeout = %v/%v, want %v/%v", got.Interval, got.Timeout, want.Interval, want.Timeout)
	}
	if len(got.Origins) != len(want.Origins) {
		t.Fatalf("got %d origins, want %d: %+v", len(got.Origins), len(want.Origins), got.Origins)
	}
	for i := range want.Origins {
		if !reflect.DeepEqual(got.Origins[i], want.Origins[i]) {
			t.Errorf("origins[%d]:\n got  %+v\n want %+v", i, got.Origins[i], want.Origins[i])
		}
	}
}

// originCase is a config of one origin and what it resolves to.
type originCase struct {
	name   string
	in     string
	cfgInt time.Duration
	cfgTO  time.Duration
	want   config.Target
}

func checkOrigins(t *testing.T, tests []originCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, []byte(tt.in))
			checkConfig(t, cfg, &config.Config{Interval: tt.cfgInt, Timeout: tt.cfgTO, Origins: []config.Target{tt.want}})
		})
	}
}

// errorCase is a config Parse refuses; want are substrings the error must
// contain: its line, the entry and the field.
type errorCase struct {
	name string
	in   string
	want []string
}

func checkErrors(t *testing.T, tests []errorCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parser.Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.in, cfg)
			}
			if cfg != nil {
				t.Errorf("Parse(%q) returned a config with an error: %+v", tt.in, cfg)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(%q) error %q does not contain %q", tt.in, err, w)
				}
			}
			if strings.Contains(err.Error(), ": :") {
				t.Errorf("Parse(%q) error %q has an empty entry or field", tt.in, err)
			}
		})
	}
}

// checkJoined checks that err is an errors.Join of one error for each
// problem of want, each error containing all the substrings of its
// problem: its line, entry and field.
func checkJoined(t *testing.T, err error, want [][]string) {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T is not an errors.Join of the problems: %v", err, err)
	}
	errs := joined.Unwrap()
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for _, w := range want {
		found := false
		for _, e := range errs {
			if containsAll(e.Error(), w...) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no error contains all of %q:\n%v", w, err)
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func TestParseOriginalJSON(t *testing.T) {
	cfg := mustParse(t, readTestdata(t, "original.json"))
	checkConfig(t, cfg, &config.Config{
		Interval: 30 * time.Second,
		Timeout:  10 * time.Second,
		Origins: []config.Target{{
			ID:       "example.com-9301-http",
			URL:      "http://example.com:9301/oxcross",
			Module:   "advanced",
			Interval: 30 * time.Second,
			Timeout:  10 * time.Second,
		}},
	})
}

// The original's JSON files are often indented with tabs, which YAML does
// not allow for block indentation but does allow inside flow (JSON) style.
func TestParseOriginalJSONIndented(t *testing.T) {
	var v any
	if err := json.Unmarshal(readTestdata(t, "original.json"), &v); err != nil {
		t.Fatal(err)
	}
	for _, indent := range []string{"\t", "  ", "    "} {
		b, err := json.MarshalIndent(v, "", indent)
		if err != nil {
			t.Fatal(err)
		}
		want := mustParse(t, readTestdata(t, "original.json"))
		got := mustParse(t, b)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("indent %q: got %+v, want %+v", indent, got, want)
		}
	}
}

func TestParseFullYAML(t *testing.T) {
	cfg := mustParse(t, readTestdata(t, "full.yaml"))
	checkConfig(t, cfg, &config.Config{
		Interval: time.Minute,
		Timeout:  1500 * time.Millisecond,
		Origins: []config.Target{
			{
				ID:       "example.com-9301-http",
				URL:      "http://example.com:9301/oxcross",
				Module:   "advanced",
				Interval: time.Minute,
				Timeout:  1500 * time.Millisecond,
			},
			{
				ID:       "fra-1",
				URL:      "https://fra1.example.net:8443/oxcross",
				Module:   "advanced",
				Interval: 30 * time.Second,
				Timeout:  2 * time.Second,
				Labels:   map[string]string{"region": "eu-central", "provider": "hetzner"},
			},
			{
				ID:       "status-page",
				URL:      "https://status.example.org:443/health?full=1",
				Module:   "simple",
				Interval: 15 * time.Second,
				Timeout:  1500 * time.Millisecond,
			},
			{
				ID:       "::1-9301-http",
				URL:      "http://[::1]:9301/oxcross",
				Module:   "advanced",
				Interval: time.Second,
				Timeout:  time.Second,
			},
			{
				ID:       "cdn.example.com-80-http",
				URL:      "http://cdn.example.com/pixel.gif",
				Module:   "simple",
				Interval: 500 * time.Millisecond,
				Timeout:  500 * time.Millisecond,
				Labels:   map[string]string{"tier": "1"},
			},
		},
	})
}

// TestParseDefaults: the config-wide interval and timeout, and what an
// origin inherits of them.
func TestParseDefaults(t *testing.T) {
	const s = time.Second
	checkOrigins(t, []originCase{
		{
			name:   "no interval, no timeout",
			in:     `{"origins": [{"scheme": "http", "hostname": "h", "port": 9301}]}`,
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Module: "advanced", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "timeout defaults to the shorter interval",
			in:     `{"interval": 5, "origins": [{"scheme": "http", "hostname": "h", "port": 9301}]}`,
			cfgInt: 5 * s, cfgTO: 5 * s,
			want: config.Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Module: "advanced", Interval: 5 * s, Timeout: 5 * s},
		},
		{
			name:   "timeout defaults to 10s under a longer interval",
			in:     `{"interval": "2m", "origins": [{"scheme": "http", "hostname": "h", "port": 9301}]}`,
			cfgInt: 2 * time.Minute, cfgTO: 10 * s,
			want: config.Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Module: "advanced", Interval: 2 * time.Minute, Timeout: 10 * s},
		},
		{
			name:   "inherited timeout clamped to a shorter per-origin interval",
			in:     `{"interval": 30, "timeout": 20, "origins": [{"scheme": "http", "hostname": "h", "port": 9301, "interval": 3}]}`,
			cfgInt: 30 * s, cfgTO: 20 * s,
			want: config.Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Module: "advanced", Interval: 3 * s, Timeout: 3 * s},
		},
		{
			name:   "per-origin interval longer than the top-level one keeps the top-level timeout",
			in:     `{"interval": 5, "timeout": 4, "origins": [{"scheme": "http", "hostname": "h", "port": 9301, "interval": 60}]}`,
			cfgInt: 5 * s, cfgTO: 4 * s,
			want: config.Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Module: "advanced", Interval: 60 * s, Timeout: 4 * s},
		},
		{
			name:   "per-origin timeout may exceed the top-level timeout",
			in:     `{"interval": 30, "timeout": 2, "origins": [{"scheme": "http", "hostname": "h", "port": 9301, "timeout": "29s"}]}`,
			cfgInt: 30 * s, cfgTO: 2 * s,
			want: config.Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Module: "advanced", Interval: 30 * s, Timeout: 29 * s},
		},
		{
			name:   "timeout equal to interval",
			in:     `{"interval": "1500ms", "timeout": 1.5, "origins": [{"scheme": "http", "hostname": "h", "port": 9301}]}`,
			cfgInt: 1500 * time.Millisecond, cfgTO: 1500 * time.Millisecond,
			want: config.Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Module: "advanced", Interval: 1500 * time.Millisecond, Timeout: 1500 * time.Millisecond},
		},
		{
			name:   "durations as strings of digits",
			in:     `{"interval": "30", "timeout": "10", "origins": [{"scheme": "http", "hostname": "h", "port": "9301"}]}`,
			cfgInt: 30 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Module: "advanced", Interval: 30 * s, Timeout: 10 * s},
		},
	})
}

// TestParseView: the view of a config served to one leaf may list no
// origins; a config file may not.
func TestParseView(t *testing.T) {
	in := []byte(`{"interval": "30s", "timeout": "10s", "origins": []}`)
	cfg, err := parser.ParseView(in)
	if err != nil {
		t.Fatalf("ParseView without origins: %v", err)
	}
	if cfg.Interval != 30*time.Second || cfg.Timeout != 10*time.Second || len(cfg.Origins) != 0 {
		t.Errorf("ParseView = %+v", cfg)
	}
	for name, m := range kinds.Base().Modules {
		if !reflect.DeepEqual(cfg.Modules[name], m) {
			t.Errorf("ParseView: built-in module %s = %+v, want %+v", name, cfg.Modules[name], m)
		}
	}
	if _, err := parser.Parse(in); err == nil || !strings.Contains(err.Error(), "origins: empty") {
		t.Errorf("Parse without origins: %v, want it refused", err)
	}
	// Everything else is checked as by Parse.
	if _, err := parser.ParseView([]byte(`{"interval": "0s", "origins": []}`)); err == nil || !strings.Contains(err.Error(), `interval: "0s"`) {
		t.Errorf("ParseView of a bad interval: %v", err)
	}
	if _, err := parser.ParseView([]byte(`{"interval": "1s"}`)); err == nil || !strings.Contains(err.Error(), "origins: missing") {
		t.Errorf("ParseView without an origins key: %v", err)
	}
}

// TestParserWithoutKinds: a Parser needs the probe kinds; without them it
// refuses every config rather than panicking.
func TestParserWithoutKinds(t *testing.T) {
	for _, parse := range []func([]byte) (*config.Config, error){config.Parser{}.Parse, config.Parser{}.ParseView} {
		cfg, err := parse(readTestdata(t, "original.json"))
		if err == nil || cfg != nil || !strings.Contains(err.Error(), "without probe kinds") {
			t.Errorf("Parse without kinds = %+v, %v; want an error", cfg, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	checkErrors(t, []errorCase{
		// Structure.
		{"empty file", ``, []string{"empty"}},
		{"only a comment", "# nothing here\n", []string{"empty"}},
		{"yaml syntax error", "interval: 5\norigins: [\n", []string{"line 2"}},
		{"yaml bad indentation", "origins:\n  - scheme: http\n hostname: h\n", []string{"line 2"}},
		{"non-mapping root list", "- a\n- b\n", []string{"line 1", "want a mapping", "a list"}},
		{"non-mapping root scalar", "hello\n", []string{"line 1", "want a mapping", `"hello"`}},
		{"null root", "null\n", []string{"line 1", "want a mapping"}},
		{"unknown top-level field", "interval: 5\nintervall: 7\norigins: [{url: 'http://h'}]\n", []string{"line 2", "unknown field", `"intervall"`}},
		{"top-level field twice", "interval: 5\ninterval: 7\norigins: [{url: 'http://h'}]\n", []string{"line 2", `"interval"`, "twice"}},
		{"missing origins", "interval: 5\n", []string{"line 1", "origins", "missing"}},
		{"empty origins", "interval: 5\norigins: []\n", []string{"line 2", "origins", "empty"}},
		{"null origins", "interval: 5\norigins:\n", []string{"line 2", "origins", "want a list"}},
		{"origins a mapping", "origins:\n  a: b\n", []string{"line 2", "origins", "want a list"}},
		{"origin not a mapping", "origins:\n  - http://h\n", []string{"line 2", "origins[0]", "want a mapping"}},
		{"origin null", "origins:\n  - {url: 'http://h'}\n  -\n", []string{"line 3", "origins[1]", "want a mapping"}},
		{"unknown origin field", "origins:\n  - scheme: http\n    hostname: a\n  - scheme: http\n    hostname: b\n    prot: 80\n", []string{"line 6", "origins[1]", "unknown field", `"prot"`}},
		{"origin field twice", "origins:\n  - scheme: http\n    hostname: a\n    hostname: b\n", []string{"line 4", "origins[0]", `"hostname"`, "twice"}},

		// Durations.
		{"top-level timeout longer than interval", "interval: 5\ntimeout: 6\norigins: [{url: 'http://h'}]\n", []string{"line 2", "timeout", "longer than the interval"}},
		{"top-level timeout longer than default interval", "timeout: 11s\norigins: [{url: 'http://h'}]\n", []string{"line 1", "timeout", "longer than the interval"}},
		{"per-origin timeout longer than interval", "origins:\n  - url: http://h\n    interval: 2\n    timeout: 3\n", []string{"line 4", "origins[0]", "timeout", "longer than the interval"}},
		{"per-origin timeout longer than inherited interval", "interval: 5\norigins:\n  - url: http://h\n    timeout: 6s\n", []string{"line 4", "origins[0]", "timeout", "longer than the interval"}},
		{"negative interval", "interval: -5\norigins: [{url: 'http://h'}]\n", []string{"line 1", "interval", `"-5"`}},
		{"zero interval", "interval: 0\norigins: [{url: 'http://h'}]\n", []string{"line 1", "interval", `"0"`}},
		{"zero duration interval", "interval: 0s\norigins: [{url: 'http://h'}]\n", []string{"line 1", "interval", `"0s"`}},
		{"garbage interval", "interval: soon\norigins: [{url: 'http://h'}]\n", []string{"line 1", "interval", `"soon"`}},
		{"empty interval", "interval: ''\norigins: [{url: 'http://h'}]\n", []string{"line 1", "interval"}},
		{"null interval", "interval:\norigins: [{url: 'http://h'}]\n", []string{"line 1", "interval", "nothing"}},
		{"interval over a day", "interval: 25h\norigins: [{url: 'http://h'}]\n", []string{"line 1", "interval", `"25h"`}},
		{"interval in days", "interval: 1d\norigins: [{url: 'http://h'}]\n", []string{"line 1", "interval", `"1d"`}},
		{"negative timeout", "timeout: -1s\norigins: [{url: 'http://h'}]\n", []string{"line 1", "timeout", `"-1s"`}},
		{"zero timeout", "timeout: 0\norigins: [{url: 'http://h'}]\n", []string{"line 1", "timeout", `"0"`}},
		{"per-origin negative interval", "origins:\n  - url: http://h\n    interval: -1\n", []string{"line 3", "origins[0]", "interval", `"-1"`}},
		{"per-origin zero timeout", "origins:\n  - url: http://h\n    timeout: 0ms\n", []string{"line 3", "origins[0]", "timeout", `"0ms"`}},
		{"per-origin garbage timeout", "origins:\n  - url: http://h\n    timeout: fast\n", []string{"line 3", "origins[0]", "timeout", `"fast"`}},
		{"per-origin interval a list", "origins:\n  - url: http://h\n    interval: [1]\n", []string{"line 3", "origins[0]", "interval", "a list"}},
		{"named origin error names the entry", "origins:\n  - name: edge\n    url: http://h\n    timeout: fast\n", []string{"line 4", "origins[0]", `"edge"`, "timeout"}},
	})
}

// A config with one bad origin is refused whole, and the error names only
// the bad one.
func TestParseRefusedWhole(t *testing.T) {
	in := `origins:
  - scheme: http
    hostname: good.example.com
  - scheme: ftp
    hostname: bad.example.com
`
	cfg, err := parser.Parse([]byte(in))
	if err == nil || cfg != nil {
		t.Fatalf("Parse = %+v, %v; want nil and an error", cfg, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "origins[1]") || strings.Contains(msg, "origins[0]") || !strings.Contains(msg, "line 4") {
		t.Errorf("error %q should name origins[1] at line 4 only", msg)
	}
}

// Every problem is reported at once, each with its line, entry and field.
func TestParseAllErrors(t *testing.T) {
	in := `interval: 5
timeout: 6
bogus: 1
origins:
  - scheme: ftp
    hostname: a
  - scheme: http
    hostname: b
    port: 0
  - name: "bad name"
    url: http://c
  - url: http://d
    mode: simple
    labels: {job: x}
`
	_, err := parser.Parse([]byte(in))
	if err == nil {
		t.Fatal("Parse succeeded, want errors")
	}
	want := [][]string{
		{"line 2", "timeout"},
		{"line 3", `"bogus"`},
		{"line 5", "origins[0]", "scheme"},
		{"line 9", "origins[1]", "port"},
		{"line 10", "origins[2]", "name"},
		{"line 14", "origins[3]", "labels", `"job"`},
	}
	checkJoined(t, err, want)
	if lines := strings.Split(err.Error(), "\n"); len(lines) != len(want) {
		t.Errorf("error text has %d lines, want one per problem (%d):\n%v", len(lines), len(want), err)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "30", want: 30 * time.Second},
		{in: "1", want: time.Second},
		{in: "0.5", want: 500 * time.Millisecond},
		{in: "1.5", want: 1500 * time.Millisecond},
		{in: "0.57", want: 570 * time.Millisecond},
		{in: "0.001", want: time.Millisecond},
		{in: "86400", want: 24 * time.Hour},
		{in: "1500ms", want: 1500 * time.Millisecond},
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "1m", want: time.Minute},
		{in: "1m30s", want: 90 * time.Second},
		{in: "2h", want: 2 * time.Hour},
		{in: "24h", want: 24 * time.Hour},
		{in: "1ns", want: time.Nanosecond},
		{in: "250us", want: 250 * time.Microsecond},
		{in: "+5", want: 5 * time.Second},
		{in: "1e1", want: 10 * time.Second},
		{in: "0", wantErr: true},
		{in: "0.0", wantErr: true},
		{in: "0s", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "-0.5", wantErr: true},
		{in: "-1s", wantErr: true},
		{in: "86401", wantErr: true},
		{in: "24h0m1s", wantErr: true},
		{in: "25h", wantErr: true},
		{in: "1e-10", wantErr: true},
		{in: "1d", wantErr: true},
		{in: "1w", wantErr: true},
		{in: "", wantErr: true},
		{in: " ", wantErr: true},
		{in: "soon", wantErr: true},
		{in: "10 s", wantErr: true},
		{in: "s", wantErr: true},
		{in: "NaN", wantErr: true},
		{in: "Inf", wantErr: true},
		{in: "-Inf", wantErr: true},
		{in: "1e300", wantErr: true},
		{in: "9999999999h", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := config.ParseDuration(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseDuration(%q) = %v, want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.in)) {
					t.Errorf("ParseDuration(%q) error %q does not quote the input", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDuration(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestDefaultLimits(t *testing.T) {
	if config.DefaultLimits.MaxOrigins != 10000 || config.DefaultLimits.MinInterval != time.Second {
		t.Errorf("DefaultLimits = %+v, want 10000 origins and 1s (docs/configuration.md says so)", config.DefaultLimits)
	}
}

// TestLimitsMaxOrigins: a config with more origins than the limit is
// refused whole, with a message that gives the count, the limit and the
// flag; one at the limit loads; without limits anything goes.
func TestLimitsMaxOrigins(t *testing.T) {
	lim := kinds.Parser(config.Limits{MaxOrigins: 50})
	if cfg, err := lim.Parse([]byte(testutil.OriginsConfig(50, "10s"))); err != nil || len(cfg.Origins) != 50 {
		t.Fatalf("50 origins with a limit of 50: %v", err)
	}
	_, err := lim.Parse([]byte(testutil.OriginsConfig(51, "10s")))
	if err == nil || !containsAll(err.Error(), "line 3", "origins", "51 origins", "limit of 50", "--config.max-origins") {
		t.Errorf("51 origins with a limit of 50: %v", err)
	}
	// Served configs (the leaf's side) are held to the same limit.
	if _, err := lim.ParseView([]byte(testutil.OriginsConfig(51, "10s"))); err == nil {
		t.Errorf("ParseView accepted 51 origins with a limit of 50")
	}
	if _, err := parser.Parse([]byte(testutil.OriginsConfig(51, "10s"))); err != nil {
		t.Errorf("Parse without limits: %v", err)
	}
}

// TestLimitsMaxOriginsDefault: the default limit refuses 10,001
// origins without validating each: an absurd list costs little more than
// reading it.
func TestLimitsMaxOriginsDefault(t *testing.T) {
	text := []byte(testutil.OriginsConfig(config.DefaultLimits.MaxOrigins+1, "10s"))
	start := time.Now()
	_, err := kinds.Parser(config.DefaultLimits).Parse(text)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "10001 origins, more than the limit of 10000") {
		t.Fatalf("10001 origins: %v", err)
	}
	// One error only: the entries were not looked at.
	if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
		t.Errorf("%d errors, want the one about the count", n)
	}
	t.Logf("refused %d bytes, 10001 origins, in %s", len(text), took)
}

// TestLimitsMinInterval: an interval shorter than the minimum is refused at
// the top level and per origin, naming the entry, the field and the flag;
// the minimum itself is fine.
func TestLimitsMinInterval(t *testing.T) {
	lim := kinds.Parser(config.Limits{MinInterval: time.Second})
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"top level 1ms", "interval: 1ms\ntimeout: 1ms\norigins:\n  - url: http://h/\n    mode: simple\n",
			[]string{"line 1", "interval: 1ms is shorter than the minimum interval 1s", "--config.min-interval"}},
		{"top level in seconds", "interval: 0.001\norigins:\n  - url: http://h/\n", []string{"line 1", "interval: 1ms"}},
		{"per origin", "origins:\n  - url: http://h/\n  - name: fast\n    url: http://h/x\n    interval: 500ms\n",
			[]string{"line 5", `origins[1] ("fast"): interval: 500ms is shorter than the minimum interval 1s`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := lim.Parse([]byte(tc.text))
			if err == nil || !containsAll(err.Error(), tc.want...) {
				t.Errorf("error %v, want it to mention %q", err, tc.want)
			}
			if _, err := parser.Parse([]byte(tc.text)); err != nil {
				t.Errorf("without limits: %v", err)
			}
		})
	}
	if _, err := lim.Parse([]byte("interval: 1s\norigins:\n  - url: http://h/\n    interval: 1000ms\n")); err != nil {
		t.Errorf("intervals at the minimum: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.*"))
	if err != nil {
		f.Fatal(err)
	}
	// The original's configs and its configserver's /config.
	original, err := filepath.Glob(filepath.Join("testdata", "original", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	files = append(files, original...)
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"",
		"origins: []",
		"origins: [{url: 'http://h'}]",
		"origins: [{url: 'http://[::1]:9301/x?y=1', mode: simple, labels: {a: b}}]",
		"interval: 5\ntimeout: 5\norigins:\n  - {scheme: https, hostname: '::1', port: 8443, interval: 1500ms}\n",
		"origins: [{name: n, scheme: http, hostname: 'fe80::1%eth0', mode: simple, path: '/a?b'}]",
		"origins: [{scheme: http, hostname: h, labels: {}}]",
		"origins: [{scheme: http, hostname: 'a:b', name: x}]",
		"origins: [{scheme: http, hostname: \"a\\x00b\", name: x}]",
		"origins: [{scheme: http, hostname: h, mode: simple, path: '//a/b%2Fc?d=e'}]",
		"origins: [{url: 'https://u@h:8443//x?y', mode: simple}]",
		"origins: [{url: 'http://h/?a b'}]",
		"origins: [{name: u, scheme: https, hostname: 'bücher.example', interval: 0.3, timeout: 0.1}]",
		`{"timeout": 10, "interval": 30, "origins": [{"scheme": "http", "hostname": "example.com", "port": 9301, "mode": "advanced"}]}`,
		"a: &x [1]\norigins: *x\n",
		// The kinds with address targets, modules with settings, static
		// leaves and leaf selectors.
		"origins: [{address: '[::1]:22', mode: tcp}, {hostname: h, port: 443, module: tcp}, {address: h, mode: icmp}, {hostname: '[::1]', mode: icmp}]",
		"modules:\n  web:\n    kind: http\n    ip_family: ip6\n    no_ip_fallback: true\n    max_body_bytes: 4096\n    http:\n      method: HEAD\n      headers: {X-A: b}\n      valid_status_codes: [200, 204]\n      body_regexp: ok\n      follow_redirects: true\n      tls: {server_name: s, insecure_skip_verify: true}\norigins: [{url: 'https://h/x', module: web}]\n",
		"modules:\n  ssh: {kind: tcp, tcp: {tls: true, tls_config: {ca_file: /ca.pem, cert_file: c, key_file: k}}}\n  ping: {kind: icmp, ip_family: ip4}\n  o: {kind: oxcross, http: {headers: {}, valid_status_codes: []}}\norigins:\n  - {address: 'h:22', module: ssh}\n  - {address: h, module: ping}\n  - {url: 'http://h', module: o}\n",
		"leaves:\n  - {id: leaf-1, address: '127.0.0.1:9299', labels: {region: eu}}\norigins:\n  - {url: 'http://h', leaf_selector: {region: eu}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parser.Parse(data)
		if err != nil {
			if cfg != nil {
				t.Fatalf("Parse returned a config with an error: %v", err)
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if cfg == nil || len(cfg.Origins) == 0 {
			t.Fatalf("Parse succeeded with no origins: %+v", cfg)
		}
		if cfg.Timeout <= 0 || cfg.Timeout > cfg.Interval {
			t.Errorf("config timeout %v, interval %v", cfg.Timeout, cfg.Interval)
		}
		for name, m := range cfg.Modules {
			if m.Settings != nil {
				if err := m.Settings.Validate(); err != nil {
					t.Errorf("module %s: settings accepted but invalid: %v", name, err)
				}
			}
		}
		ids := make(map[string]bool)
		for i, o := range cfg.Origins {
			if o.ID == "" {
				t.Errorf("origins[%d] has an empty ID: %+v", i, o)
			}
			if ids[o.ID] {
				t.Errorf("origins[%d]: duplicate ID %q", i, o.ID)
			}
			ids[o.ID] = true
			if o.Timeout <= 0 || o.Timeout > o.Interval {
				t.Errorf("origins[%d]: timeout %v, interval %v", i, o.Timeout, o.Interval)
			}
			m, ok := cfg.Modules[o.Module]
			if !ok {
				t.Errorf("origins[%d]: module %q is not one of the config's", i, o.Module)
				continue
			}
			// The target has the shape its module's kind wants.
			switch m.Kind {
			case "http", "oxcross":
				if u, err := url.Parse(o.URL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.Fragment != "" || strings.Contains(o.URL, " ") || o.Address != "" {
					t.Errorf("origins[%d]: URL %q (address %q) is not a usable http(s) URL (%v)", i, o.URL, o.Address, err)
				}
			case "tcp":
				host, port, err := net.SplitHostPort(o.Address)
				if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 || o.URL != "" {
					t.Errorf("origins[%d]: address %q (URL %q) is not host:port", i, o.Address, o.URL)
				}
			case "icmp":
				if o.Address == "" || strings.ContainsAny(o.Address, "[]/ ") || o.URL != "" {
					t.Errorf("origins[%d]: address %q (URL %q) is not a host", i, o.Address, o.URL)
				}
			default:
				t.Errorf("origins[%d]: module %q has kind %q", i, o.Module, m.Kind)
			}
		}
		// The warnings are the text's, not the config's: its JSON has none.
		for _, w := range cfg.Warnings {
			if !strings.HasPrefix(w, "line ") {
				t.Errorf("warning %q does not name its line", w)
			}
		}
		cfg.Warnings = nil
		b, err := cfg.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		again, err := parser.Parse(b)
		if err != nil {
			t.Fatalf("Parse(MarshalJSON()) of\n %s\nfailed: %v", b, err)
		}
		if !reflect.DeepEqual(cfg, again) {
			t.Fatalf("round trip through\n %s\nchanged the config:\n got  %+v\n want %+v", b, again, cfg)
		}
		// The served body reads back the same, as a config and as a view.
		snap, err := config.NewSnapshot(cfg)
		if err != nil {
			t.Fatalf("NewSnapshot: %v", err)
		}
		for _, parse := range []func([]byte) (*config.Config, error){parser.Parse, parser.ParseView} {
			served, err := parse(snap.Body)
			if err != nil {
				t.Fatalf("parsing the served\n %s\nfailed: %v", snap.Body, err)
			}
			if !reflect.DeepEqual(cfg, served) {
				t.Fatalf("round trip through the served\n %s\nchanged the config:\n got  %+v\n want %+v", snap.Body, served, cfg)
			}
		}
		// The original leaf reads it, and probes each origin it finds as
		// the new leaf does: the same URL, with the same module.
		orig, err := testutil.ParseOriginalConfig(snap.Body)
		if err != nil {
			var doc struct{ Origins []json.RawMessage }
			if jerr := json.Unmarshal(snap.Body, &doc); jerr != nil || len(doc.Origins) > 0 {
				t.Fatalf("the original cannot read the served\n %s\n%v", snap.Body, err)
			}
			return // none it can probe
		}
		if want := int((cfg.Interval + time.Second - 1) / time.Second); orig.Interval != max(want, 1) {
			t.Errorf("the original reads interval %d for %s", orig.Interval, cfg.Interval)
		}
		for _, o := range orig.Origins {
			found := false
			for _, t := range cfg.Origins {
				found = found || (t.Module == o.Mode && t.Selects(nil) && sameTarget(o.URL, t.URL))
			}
			if !found {
				t.Errorf("the original probes %s (%s), which is no origin of the config: %s", o.URL, o.Mode, snap.Body)
			}
		}
	})
}
