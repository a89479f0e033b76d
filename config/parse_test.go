package discovery

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t testing.TB, data []byte) *Config {
	t.Helper()
	cfg, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(%q): unexpected error: %v", data, err)
	}
	if cfg == nil {
		t.Fatalf("Parse(%q): nil config without an error", data)
	}
	return cfg
}

func checkConfig(t *testing.T, got, want *Config) {
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

func TestParseOriginalJSON(t *testing.T) {
	cfg := mustParse(t, readTestdata(t, "original.json"))
	checkConfig(t, cfg, &Config{
		Interval: 30 * time.Second,
		Timeout:  10 * time.Second,
		Origins: []Target{{
			ID:       "example.com-9301-http",
			URL:      "http://example.com:9301/oxcross",
			Mode:     ModeAdvanced,
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
	checkConfig(t, cfg, &Config{
		Interval: time.Minute,
		Timeout:  1500 * time.Millisecond,
		Origins: []Target{
			{
				ID:       "example.com-9301-http",
				URL:      "http://example.com:9301/oxcross",
				Mode:     ModeAdvanced,
				Interval: time.Minute,
				Timeout:  1500 * time.Millisecond,
			},
			{
				ID:       "fra-1",
				URL:      "https://fra1.example.net:8443/oxcross",
				Mode:     ModeAdvanced,
				Interval: 30 * time.Second,
				Timeout:  2 * time.Second,
				Labels:   map[string]string{"region": "eu-central", "provider": "hetzner"},
			},
			{
				ID:       "status-page",
				URL:      "https://status.example.org:443/health?full=1",
				Mode:     ModeSimple,
				Interval: 15 * time.Second,
				Timeout:  1500 * time.Millisecond,
			},
			{
				ID:       "::1-9301-http",
				URL:      "http://[::1]:9301/oxcross",
				Mode:     ModeAdvanced,
				Interval: time.Second,
				Timeout:  time.Second,
			},
			{
				ID:       "cdn.example.com-80-http",
				URL:      "http://cdn.example.com/pixel.gif",
				Mode:     ModeSimple,
				Interval: 500 * time.Millisecond,
				Timeout:  500 * time.Millisecond,
				Labels:   map[string]string{"tier": "1"},
			},
		},
	})
}

func TestParseDefaults(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name   string
		in     string
		cfgInt time.Duration
		cfgTO  time.Duration
		want   Target
	}{
		{
			name:   "no interval, no timeout",
			in:     `{"origins": [{"scheme": "http", "hostname": "h", "port": 9301}]}`,
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Mode: ModeAdvanced, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "timeout defaults to the shorter interval",
			in:     `{"interval": 5, "origins": [{"scheme": "http", "hostname": "h", "port": 9301}]}`,
			cfgInt: 5 * s, cfgTO: 5 * s,
			want: Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Mode: ModeAdvanced, Interval: 5 * s, Timeout: 5 * s},
		},
		{
			name:   "timeout defaults to 10s under a longer interval",
			in:     `{"interval": "2m", "origins": [{"scheme": "http", "hostname": "h", "port": 9301}]}`,
			cfgInt: 2 * time.Minute, cfgTO: 10 * s,
			want: Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Mode: ModeAdvanced, Interval: 2 * time.Minute, Timeout: 10 * s},
		},
		{
			name:   "inherited timeout clamped to a shorter per-origin interval",
			in:     `{"interval": 30, "timeout": 20, "origins": [{"scheme": "http", "hostname": "h", "port": 9301, "interval": 3}]}`,
			cfgInt: 30 * s, cfgTO: 20 * s,
			want: Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Mode: ModeAdvanced, Interval: 3 * s, Timeout: 3 * s},
		},
		{
			name:   "per-origin interval longer than the top-level one keeps the top-level timeout",
			in:     `{"interval": 5, "timeout": 4, "origins": [{"scheme": "http", "hostname": "h", "port": 9301, "interval": 60}]}`,
			cfgInt: 5 * s, cfgTO: 4 * s,
			want: Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Mode: ModeAdvanced, Interval: 60 * s, Timeout: 4 * s},
		},
		{
			name:   "per-origin timeout may exceed the top-level timeout",
			in:     `{"interval": 30, "timeout": 2, "origins": [{"scheme": "http", "hostname": "h", "port": 9301, "timeout": "29s"}]}`,
			cfgInt: 30 * s, cfgTO: 2 * s,
			want: Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Mode: ModeAdvanced, Interval: 30 * s, Timeout: 29 * s},
		},
		{
			name:   "timeout equal to interval",
			in:     `{"interval": "1500ms", "timeout": 1.5, "origins": [{"scheme": "http", "hostname": "h", "port": 9301}]}`,
			cfgInt: 1500 * time.Millisecond, cfgTO: 1500 * time.Millisecond,
			want: Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Mode: ModeAdvanced, Interval: 1500 * time.Millisecond, Timeout: 1500 * time.Millisecond},
		},
		{
			name:   "durations as strings of digits",
			in:     `{"interval": "30", "timeout": "10", "origins": [{"scheme": "http", "hostname": "h", "port": "9301"}]}`,
			cfgInt: 30 * s, cfgTO: 10 * s,
			want: Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Mode: ModeAdvanced, Interval: 30 * s, Timeout: 10 * s},
		},
		{
			name:   "simple mode default path",
			in:     "origins:\n  - {scheme: http, hostname: h, port: 8080, mode: simple}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "h-8080-http", URL: "http://h:8080/", Mode: ModeSimple, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "simple mode explicit path",
			in:     "origins:\n  - {scheme: http, hostname: h, mode: simple, path: /a/b}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "h-80-http", URL: "http://h:80/a/b", Mode: ModeSimple, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "simple mode path with a query",
			in:     "origins:\n  - {scheme: http, hostname: h, mode: simple, path: '/a%20b?x=1&y=%2F'}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "h-80-http", URL: "http://h:80/a%20b?x=1&y=%2F", Mode: ModeSimple, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "simple mode path starting with two slashes stays a path",
			in:     "origins:\n  - {scheme: http, hostname: h, mode: simple, path: //a/b}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "h-80-http", URL: "http://h:80//a/b", Mode: ModeSimple, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "simple mode path keeps an escaped slash",
			in:     "origins:\n  - {scheme: http, hostname: h, mode: simple, path: /a%2Fb}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "h-80-http", URL: "http://h:80/a%2Fb", Mode: ModeSimple, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "url form keeps an escaped slash",
			in:     "origins:\n  - {url: 'http://h/a%2Fb', mode: simple}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "h-80-http", URL: "http://h/a%2Fb", Mode: ModeSimple, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "IPv6 hostname with a zone",
			in:     "origins:\n  - {name: z, scheme: http, hostname: 'fe80::1%eth0', port: 9301}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "z", URL: "http://[fe80::1%25eth0]:9301/oxcross", Mode: ModeAdvanced, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "http default port 80",
			in:     "origins:\n  - {scheme: http, hostname: h}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "h-80-http", URL: "http://h:80/oxcross", Mode: ModeAdvanced, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "https default port 443",
			in:     "origins:\n  - {scheme: https, hostname: h}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "h-443-https", URL: "https://h:443/oxcross", Mode: ModeAdvanced, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "url form, advanced, no path",
			in:     "origins:\n  - url: https://h\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "h-443-https", URL: "https://h/oxcross", Mode: ModeAdvanced, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "url form, advanced, root path",
			in:     "origins:\n  - url: http://h:9301/\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Mode: ModeAdvanced, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "url form, advanced, explicit path kept",
			in:     "origins:\n  - url: http://h:9301/custom/oxcross\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "h-9301-http", URL: "http://h:9301/custom/oxcross", Mode: ModeAdvanced, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "url form, simple, no path",
			in:     "origins:\n  - {url: 'http://h', mode: simple}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "h-80-http", URL: "http://h/", Mode: ModeSimple, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "url form, IPv6",
			in:     "origins:\n  - url: 'http://[2001:db8::1]:9301'\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "2001:db8::1-9301-http", URL: "http://[2001:db8::1]:9301/oxcross", Mode: ModeAdvanced, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "IPv6 hostname",
			in:     `{"origins": [{"scheme": "http", "hostname": "::1", "port": 9301}]}`,
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "::1-9301-http", URL: "http://[::1]:9301/oxcross", Mode: ModeAdvanced, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "bracketed IPv6 hostname",
			in:     `{"origins": [{"scheme": "http", "hostname": "[::1]", "port": 9301}]}`,
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "::1-9301-http", URL: "http://[::1]:9301/oxcross", Mode: ModeAdvanced, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "IPv4 hostname",
			in:     `{"origins": [{"scheme": "https", "hostname": "192.0.2.7"}]}`,
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "192.0.2.7-443-https", URL: "https://192.0.2.7:443/oxcross", Mode: ModeAdvanced, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "name overrides the default id",
			in:     `{"origins": [{"name": "edge_1.fra:a-b", "scheme": "http", "hostname": "h"}]}`,
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "edge_1.fra:a-b", URL: "http://h:80/oxcross", Mode: ModeAdvanced, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "name of maximal length",
			in:     `{"origins": [{"name": "` + strings.Repeat("n", MaxNameLength) + `", "scheme": "http", "hostname": "h"}]}`,
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: strings.Repeat("n", MaxNameLength), URL: "http://h:80/oxcross", Mode: ModeAdvanced, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "labels, non-string scalar values become strings",
			in:     "origins:\n  - url: http://h\n    labels: {a: 1, b_c: true, _d: x}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "h-80-http", URL: "http://h/oxcross", Mode: ModeAdvanced, Interval: 10 * s, Timeout: 10 * s, Labels: map[string]string{"a": "1", "b_c": "true", "_d": "x"}},
		},
		{
			name:   "empty labels are no labels",
			in:     "origins:\n  - url: http://h\n    labels: {}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "h-80-http", URL: "http://h/oxcross", Mode: ModeAdvanced, Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "maximal number of labels",
			in:     "origins:\n  - url: http://h\n    labels: {" + manyLabels(MaxLabels) + "}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "h-80-http", URL: "http://h/oxcross", Mode: ModeAdvanced, Interval: 10 * s, Timeout: 10 * s, Labels: manyLabelsMap(MaxLabels)},
		},
		{
			name:   "empty name falls back to the default id",
			in:     `{"origins": [{"name": "", "scheme": "http", "hostname": "h"}]}`,
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: Target{ID: "h-80-http", URL: "http://h:80/oxcross", Mode: ModeAdvanced, Interval: 10 * s, Timeout: 10 * s},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, []byte(tt.in))
			checkConfig(t, cfg, &Config{Interval: tt.cfgInt, Timeout: tt.cfgTO, Origins: []Target{tt.want}})
		})
	}
}

func manyLabels(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("l%d: v%d", i, i)
	}
	return strings.Join(parts, ", ")
}

func manyLabelsMap(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("l%d", i)] = fmt.Sprintf("v%d", i)
	}
	return m
}

func TestParseOrderAndIDs(t *testing.T) {
	cfg := mustParse(t, []byte(`origins:
  - {scheme: http, hostname: b}
  - {scheme: http, hostname: a}
  - {scheme: https, hostname: a}
  - {scheme: http, hostname: a, port: 8080}
  - {name: a-80-http-2, url: "http://a"}
`))
	var ids []string
	for _, o := range cfg.Origins {
		ids = append(ids, o.ID)
	}
	want := []string{"b-80-http", "a-80-http", "a-443-https", "a-8080-http", "a-80-http-2"}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("ids = %q, want %q", ids, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		// want are substrings the error must contain: its line, the entry
		// and the field.
		want []string
	}{
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

		// Identity.
		{"duplicate default id", "origins:\n  - scheme: http\n    hostname: a\n  - url: http://a:80/\n", []string{"line 4", "origins[1]", "origin_id", `"a-80-http"`, "origins[0]"}},
		{"duplicate default id, original form", `{"origins": [{"scheme": "http", "hostname": "a", "port": 9301},` + "\n" + `{"scheme": "http", "hostname": "a", "port": 9301, "mode": "simple"}]}`, []string{"line 2", "origins[1]", "origin_id", `"a-9301-http"`}},
		{"duplicate name", "origins:\n  - {name: x, url: 'http://a'}\n  - {name: y, url: 'http://b'}\n  - {name: x, url: 'http://c'}\n", []string{"line 4", "origins[2]", "origin_id", `"x"`, "origins[0]"}},
		{"name equals another's default id", "origins:\n  - {url: 'http://a'}\n  - {name: a-80-http, url: 'http://b'}\n", []string{"line 3", "origins[1]", "origin_id", `"a-80-http"`}},
		{"name with a space", "origins:\n  - url: http://a\n    name: a b\n", []string{"line 2", "origins[0]", "name", `"a b"`}},
		{"name with a slash", "origins:\n  - url: http://a\n    name: a/b\n", []string{"line 2", "origins[0]", "name", `"a/b"`}},
		{"name with unicode", "origins:\n  - url: http://a\n    name: zürich\n", []string{"line 2", "origins[0]", "name"}},
		{"name too long", "origins:\n  - url: http://a\n    name: " + strings.Repeat("n", MaxNameLength+1) + "\n", []string{"line 2", "origins[0]", "name", "128"}},
		{"default id too long", "origins:\n  - url: http://" + strings.Repeat("a", MaxNameLength) + "\n", []string{"line 2", "origins[0]", "name", "origin_id"}},
		{"name a mapping", "origins:\n  - url: http://a\n    name: {x: y}\n", []string{"line 3", "origins[0]", "name", "want a string"}},

		// Scheme, host, port.
		{"bad scheme", "origins:\n  - scheme: ftp\n    hostname: a\n", []string{"line 2", "origins[0]", "scheme", `"ftp"`}},
		{"upper-case scheme", "origins:\n  - scheme: HTTP\n    hostname: a\n", []string{"line 2", "origins[0]", "scheme", `"HTTP"`}},
		{"missing scheme", "origins:\n  - url: http://a\n  - hostname: a\n    port: 80\n", []string{"line 3", "origins[1]", "scheme", "missing"}},
		{"null scheme", "origins:\n  - hostname: a\n    scheme:\n", []string{"line 3", "origins[0]", "scheme"}},
		{"missing hostname", "origins:\n  - scheme: http\n    port: 80\n", []string{"line 2", "origins[0]", "hostname", "missing"}},
		{"empty hostname", "origins:\n  - scheme: http\n    hostname: ''\n", []string{"line 2", "origins[0]", "hostname", "missing"}},
		{"hostname with a path", "origins:\n  - scheme: http\n    hostname: a/b\n", []string{"line 3", "origins[0]", "hostname", `"a/b"`}},
		{"hostname with a port", "origins:\n  - scheme: http\n    hostname: 'a:80'\n", []string{"line 3", "origins[0]", "hostname", `"a:80"`}},
		{"hostname with a control character", "origins:\n  - name: x\n    scheme: http\n    hostname: \"a\\x00b\"\n", []string{"line 4", "origins[0]", "hostname"}},
		{"hostname neither a name nor IPv6", "origins:\n  - scheme: http\n    hostname: 'a:b:c'\n", []string{"line 3", "origins[0]", "hostname", `"a:b:c"`}},
		{"hostname a url", "origins:\n  - scheme: http\n    hostname: http://a\n", []string{"line 3", "origins[0]", "hostname"}},
		{"port 0", "origins:\n  - scheme: http\n    hostname: a\n    port: 0\n", []string{"line 4", "origins[0]", "port", "0"}},
		{"port 70000", "origins:\n  - scheme: http\n    hostname: a\n    port: 70000\n", []string{"line 4", "origins[0]", "port", "70000"}},
		{"port negative", "origins:\n  - scheme: http\n    hostname: a\n    port: -1\n", []string{"line 4", "origins[0]", "port"}},
		{"port abc", "origins:\n  - scheme: http\n    hostname: a\n    port: abc\n", []string{"line 4", "origins[0]", "port", `"abc"`}},
		{"port fractional", `{"origins": [{"scheme": "http", "hostname": "a", "port": 80.5}]}`, []string{"line 1", "origins[0]", "port", `"80.5"`}},
		{"port a list", "origins:\n  - scheme: http\n    hostname: a\n    port: [80]\n", []string{"line 4", "origins[0]", "port"}},

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

		// Mode and path.
		{"bad mode", "origins:\n  - url: http://h\n    mode: fancy\n", []string{"line 3", "origins[0]", "mode", `"fancy"`}},
		{"path in advanced mode", "origins:\n  - scheme: http\n    hostname: h\n    path: /x\n", []string{"line 4", "origins[0]", "path", "simple"}},
		{"path in default mode, explicit advanced", "origins:\n  - scheme: http\n    hostname: h\n    mode: advanced\n    path: /oxcross\n", []string{"line 5", "origins[0]", "path"}},
		{"path with a fragment", "origins:\n  - scheme: http\n    hostname: h\n    mode: simple\n    path: '/a?b#c'\n", []string{"line 5", "origins[0]", "path", "fragment"}},
		{"path with a space", "origins:\n  - {scheme: http, hostname: h, mode: simple, path: '/a?b c'}\n", []string{"line 2", "origins[0]", "path", "space"}},
		{"path with a bad escape", "origins:\n  - {scheme: http, hostname: h, mode: simple, path: '/%zz'}\n", []string{"line 2", "origins[0]", "path"}},
		{"path without leading slash", "origins:\n  - scheme: http\n    hostname: h\n    mode: simple\n    path: health\n", []string{"line 5", "origins[0]", "path", `"health"`}},

		// URL form.
		{"url with hostname", "origins:\n  - url: http://h\n    hostname: h\n", []string{"line 3", "origins[0]", "hostname", "url"}},
		{"url with scheme", "origins:\n  - url: http://h\n    scheme: http\n", []string{"line 3", "origins[0]", "scheme", "url"}},
		{"url with port", "origins:\n  - url: http://h\n    port: 80\n", []string{"line 3", "origins[0]", "port", "url"}},
		{"url with path", "origins:\n  - url: http://h\n    mode: simple\n    path: /x\n", []string{"line 4", "origins[0]", "path", "url"}},
		{"url with bad scheme", "origins:\n  - url: ftp://h/x\n", []string{"line 2", "origins[0]", "url", `"ftp"`}},
		{"url without scheme", "origins:\n  - url: h.example.com\n", []string{"line 2", "origins[0]", "url"}},
		{"url without host", "origins:\n  - url: http:///x\n", []string{"line 2", "origins[0]", "url", "no host"}},
		{"url with only a port", "origins:\n  - url: 'http://:80/'\n", []string{"line 2", "origins[0]", "url", "no host"}},
		{"url with a space", "origins:\n  - url: 'http://h/?a b'\n", []string{"line 2", "origins[0]", "url", "space"}},
		{"url with a control character", "origins:\n  - url: \"http://h/\\x7f\"\n", []string{"line 2", "origins[0]", "url"}},
		{"url with a fragment", "origins:\n  - url: 'http://h/#x'\n", []string{"line 2", "origins[0]", "url", "fragment"}},
		{"url with port 0", "origins:\n  - url: 'http://h:0/'\n", []string{"line 2", "origins[0]", "url", "port"}},
		{"url with port 70000", "origins:\n  - url: 'http://h:70000/'\n", []string{"line 2", "origins[0]", "url", "port"}},
		{"url unparsable", "origins:\n  - url: 'http://h:x/'\n", []string{"line 2", "origins[0]", "url"}},
		{"url a list", "origins:\n  - url: [http://h]\n", []string{"line 2", "origins[0]", "url", "want a string"}},

		// Labels.
		{"label name starting with a digit", "origins:\n  - url: http://h\n    labels:\n      1abc: x\n", []string{"line 4", "origins[0]", "labels", `"1abc"`}},
		{"label name with a dash", "origins:\n  - url: http://h\n    labels:\n      a-b: x\n", []string{"line 4", "origins[0]", "labels", `"a-b"`}},
		{"label name with double underscore", "origins:\n  - url: http://h\n    labels:\n      __meta: x\n", []string{"line 4", "origins[0]", "labels", `"__meta"`}},
		{"reserved label origin_id", "origins:\n  - url: http://h\n    labels:\n      origin_id: x\n", []string{"line 4", "origins[0]", "labels", `"origin_id"`}},
		{"reserved label job", "origins:\n  - url: http://h\n    labels:\n      job: x\n", []string{"line 4", "origins[0]", "labels", `"job"`}},
		{"reserved label source_id", "origins:\n  - url: http://h\n    labels: {source_id: x}\n", []string{"line 3", "origins[0]", "labels", `"source_id"`}},
		{"label twice", "origins:\n  - url: http://h\n    labels:\n      a: x\n      a: y\n", []string{"line 5", "origins[0]", "labels", `"a"`, "twice"}},
		{"too many labels", "origins:\n  - url: http://h\n    labels: {" + manyLabels(MaxLabels+1) + "}\n", []string{"line 3", "origins[0]", "labels", "33"}},
		{"label value too long", "origins:\n  - url: http://h\n    labels:\n      a: " + strings.Repeat("v", MaxLabelValueLength+1) + "\n", []string{"line 4", "origins[0]", "labels", "a"}},
		{"label value a list", "origins:\n  - url: http://h\n    labels:\n      a: [x]\n", []string{"line 4", "origins[0]", "labels", "want a string"}},
		{"labels a list", "origins:\n  - url: http://h\n    labels: [a]\n", []string{"line 3", "origins[0]", "labels", "want a mapping"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.in))
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

// A config with one bad origin is refused whole, and the error names only
// the bad one.
func TestParseRefusedWhole(t *testing.T) {
	in := `origins:
  - scheme: http
    hostname: good.example.com
  - scheme: ftp
    hostname: bad.example.com
`
	cfg, err := Parse([]byte(in))
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
	_, err := Parse([]byte(in))
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
			if containsAll(e.Error(), w) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no error contains all of %q:\n%v", w, err)
		}
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != len(want) {
		t.Errorf("error text has %d lines, want one per problem (%d):\n%v", len(lines), len(want), err)
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
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
			got, err := ParseDuration(tt.in)
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
	a1 := ETag([]byte(`{"origins":[]}`))
	a2 := ETag([]byte(`{"origins":[]}`))
	b := ETag([]byte(`{"origins":[] }`))
	empty := ETag(nil)
	if a1 != a2 {
		t.Errorf("ETag not stable: %s != %s", a1, a2)
	}
	if a1 == b {
		t.Errorf("ETag of different bodies equal: %s", a1)
	}
	if empty == a1 || empty != ETag([]byte{}) {
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

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.*"))
	if err != nil {
		f.Fatal(err)
	}
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
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
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
		ids := make(map[string]bool)
		for i, o := range cfg.Origins {
			if o.ID == "" || o.URL == "" {
				t.Errorf("origins[%d] has an empty ID or URL: %+v", i, o)
			}
			if ids[o.ID] {
				t.Errorf("origins[%d]: duplicate ID %q", i, o.ID)
			}
			ids[o.ID] = true
			if o.Timeout <= 0 || o.Timeout > o.Interval {
				t.Errorf("origins[%d]: timeout %v, interval %v", i, o.Timeout, o.Interval)
			}
			if u, err := url.Parse(o.URL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.Fragment != "" || strings.Contains(o.URL, " ") {
				t.Errorf("origins[%d]: URL %q is not a usable http(s) URL (%v)", i, o.URL, err)
			}
			if o.Mode != ModeAdvanced && o.Mode != ModeSimple {
				t.Errorf("origins[%d]: mode %q", i, o.Mode)
			}
		}
		b, err := cfg.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		again, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(MarshalJSON()) of\n %s\nfailed: %v", b, err)
		}
		if !reflect.DeepEqual(cfg, again) {
			t.Fatalf("round trip through\n %s\nchanged the config:\n got  %+v\n want %+v", b, again, cfg)
		}
	})
}
