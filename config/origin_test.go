package config_test

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/prober"
)

// TestOriginTargets: what an origin of a URL kind resolves to: its URL,
// path, port and origin_id.
func TestOriginTargets(t *testing.T) {
	const s = time.Second
	checkOrigins(t, []originCase{
		{
			name:   "simple mode default path",
			in:     "origins:\n  - {scheme: http, hostname: h, port: 8080, mode: simple}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-8080-http", URL: "http://h:8080/", Module: "simple", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "simple mode explicit path",
			in:     "origins:\n  - {scheme: http, hostname: h, mode: simple, path: /a/b}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-80-http", URL: "http://h:80/a/b", Module: "simple", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "simple mode path with a query",
			in:     "origins:\n  - {scheme: http, hostname: h, mode: simple, path: '/a%20b?x=1&y=%2F'}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-80-http", URL: "http://h:80/a%20b?x=1&y=%2F", Module: "simple", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "simple mode path starting with two slashes stays a path",
			in:     "origins:\n  - {scheme: http, hostname: h, mode: simple, path: //a/b}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-80-http", URL: "http://h:80//a/b", Module: "simple", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "simple mode path keeps an escaped slash",
			in:     "origins:\n  - {scheme: http, hostname: h, mode: simple, path: /a%2Fb}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-80-http", URL: "http://h:80/a%2Fb", Module: "simple", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "url form keeps an escaped slash",
			in:     "origins:\n  - {url: 'http://h/a%2Fb', mode: simple}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-80-http", URL: "http://h/a%2Fb", Module: "simple", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "IPv6 hostname with a zone",
			in:     "origins:\n  - {name: z, scheme: http, hostname: 'fe80::1%eth0', port: 9301}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "z", URL: "http://[fe80::1%25eth0]:9301/oxcross", Module: "advanced", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "http default port 80",
			in:     "origins:\n  - {scheme: http, hostname: h}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-80-http", URL: "http://h:80/oxcross", Module: "advanced", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "https default port 443",
			in:     "origins:\n  - {scheme: https, hostname: h}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-443-https", URL: "https://h:443/oxcross", Module: "advanced", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "url form, advanced, no path",
			in:     "origins:\n  - url: https://h\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-443-https", URL: "https://h/oxcross", Module: "advanced", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "url form, advanced, root path",
			in:     "origins:\n  - url: http://h:9301/\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-9301-http", URL: "http://h:9301/oxcross", Module: "advanced", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "url form, advanced, explicit path kept",
			in:     "origins:\n  - url: http://h:9301/custom/oxcross\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-9301-http", URL: "http://h:9301/custom/oxcross", Module: "advanced", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "url form, simple, no path",
			in:     "origins:\n  - {url: 'http://h', mode: simple}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-80-http", URL: "http://h/", Module: "simple", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "url form, IPv6",
			in:     "origins:\n  - url: 'http://[2001:db8::1]:9301'\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "2001:db8::1-9301-http", URL: "http://[2001:db8::1]:9301/oxcross", Module: "advanced", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "IPv6 hostname",
			in:     `{"origins": [{"scheme": "http", "hostname": "::1", "port": 9301}]}`,
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "::1-9301-http", URL: "http://[::1]:9301/oxcross", Module: "advanced", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "bracketed IPv6 hostname",
			in:     `{"origins": [{"scheme": "http", "hostname": "[::1]", "port": 9301}]}`,
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "::1-9301-http", URL: "http://[::1]:9301/oxcross", Module: "advanced", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "IPv4 hostname",
			in:     `{"origins": [{"scheme": "https", "hostname": "192.0.2.7"}]}`,
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "192.0.2.7-443-https", URL: "https://192.0.2.7:443/oxcross", Module: "advanced", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "name overrides the default id",
			in:     `{"origins": [{"name": "edge_1.fra:a-b", "scheme": "http", "hostname": "h"}]}`,
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "edge_1.fra:a-b", URL: "http://h:80/oxcross", Module: "advanced", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "name of maximal length",
			in:     `{"origins": [{"name": "` + strings.Repeat("n", config.MaxNameLength) + `", "scheme": "http", "hostname": "h"}]}`,
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: strings.Repeat("n", config.MaxNameLength), URL: "http://h:80/oxcross", Module: "advanced", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "empty name falls back to the default id",
			in:     `{"origins": [{"name": "", "scheme": "http", "hostname": "h"}]}`,
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-80-http", URL: "http://h:80/oxcross", Module: "advanced", Interval: 10 * s, Timeout: 10 * s},
		},
	})
}

// TestOriginAddressTargets: origins of the tcp (host:port) and icmp (host)
// kinds, given as address or as hostname and port.
func TestOriginAddressTargets(t *testing.T) {
	const s = time.Second
	checkOrigins(t, []originCase{
		{
			name:   "tcp address",
			in:     "origins:\n  - {address: 'db.example.com:5432', mode: tcp}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "db.example.com-5432-tcp", Address: "db.example.com:5432", Module: "tcp", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "tcp hostname and port",
			in:     "origins:\n  - {hostname: db.example.com, port: 5432, module: tcp}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "db.example.com-5432-tcp", Address: "db.example.com:5432", Module: "tcp", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "tcp IPv6 address",
			in:     "origins:\n  - {address: '[2001:db8::1]:22', mode: tcp}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "2001:db8::1-22-tcp", Address: "[2001:db8::1]:22", Module: "tcp", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "tcp IPv6 hostname, bracketed or not",
			in:     "origins:\n  - {hostname: '[::1]', port: 22, mode: tcp, name: a}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "a", Address: "[::1]:22", Module: "tcp", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "icmp address",
			in:     "origins:\n  - {address: 192.0.2.7, mode: icmp}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "192.0.2.7-icmp", Address: "192.0.2.7", Module: "icmp", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "icmp bracketed IPv6 address",
			in:     "origins:\n  - {address: '[2001:db8::1]', mode: icmp}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "2001:db8::1-icmp", Address: "2001:db8::1", Module: "icmp", Interval: 10 * s, Timeout: 10 * s},
		},
		{
			name:   "icmp hostname",
			in:     "interval: 30\norigins:\n  - {hostname: edge1.example.com, module: icmp, interval: 5}\n",
			cfgInt: 30 * s, cfgTO: 10 * s,
			want: config.Target{ID: "edge1.example.com-icmp", Address: "edge1.example.com", Module: "icmp", Interval: 5 * s, Timeout: 5 * s},
		},
		{
			name:   "a module of the tcp kind",
			in:     "modules:\n  tls: {kind: tcp, tcp: {tls: true}}\norigins:\n  - {address: 'h:443', module: tls}\n",
			cfgInt: 10 * s, cfgTO: 10 * s,
			want: config.Target{ID: "h-443-tcp", Address: "h:443", Module: "tls", Interval: 10 * s, Timeout: 10 * s},
		},
	})
}

func TestOriginOrderAndIDs(t *testing.T) {
	cfg := mustParse(t, []byte(`origins:
  - {scheme: http, hostname: b}
  - {scheme: http, hostname: a}
  - {scheme: https, hostname: a}
  - {scheme: http, hostname: a, port: 8080}
  - {name: a-80-http-2, url: "http://a"}
  - {address: 'a:80', mode: tcp}
  - {address: a, mode: icmp}
`))
	var ids []string
	for _, o := range cfg.Origins {
		ids = append(ids, o.ID)
	}
	want := []string{"b-80-http", "a-80-http", "a-443-https", "a-8080-http", "a-80-http-2", "a-80-tcp", "a-icmp"}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("ids = %q, want %q", ids, want)
	}
}

func TestOriginErrors(t *testing.T) {
	checkErrors(t, []errorCase{
		// Identity.
		{"duplicate default id", "origins:\n  - scheme: http\n    hostname: a\n  - url: http://a:80/\n", []string{"line 4", "origins[1]", "origin_id", `"a-80-http"`, "origins[0]"}},
		{"duplicate default id, original form", `{"origins": [{"scheme": "http", "hostname": "a", "port": 9301},` + "\n" + `{"scheme": "http", "hostname": "a", "port": 9301, "mode": "simple"}]}`, []string{"line 2", "origins[1]", "origin_id", `"a-9301-http"`}},
		{"duplicate name", "origins:\n  - {name: x, url: 'http://a'}\n  - {name: y, url: 'http://b'}\n  - {name: x, url: 'http://c'}\n", []string{"line 4", "origins[2]", "origin_id", `"x"`, "origins[0]"}},
		{"name equals another's default id", "origins:\n  - {url: 'http://a'}\n  - {name: a-80-http, url: 'http://b'}\n", []string{"line 3", "origins[1]", "origin_id", `"a-80-http"`}},
		{"name with a space", "origins:\n  - url: http://a\n    name: a b\n", []string{"line 2", "origins[0]", "name", `"a b"`}},
		{"name with a slash", "origins:\n  - url: http://a\n    name: a/b\n", []string{"line 2", "origins[0]", "name", `"a/b"`}},
		{"name with unicode", "origins:\n  - url: http://a\n    name: zürich\n", []string{"line 2", "origins[0]", "name"}},
		{"name too long", "origins:\n  - url: http://a\n    name: " + strings.Repeat("n", config.MaxNameLength+1) + "\n", []string{"line 2", "origins[0]", "name", "128"}},
		{"default id too long", "origins:\n  - url: http://" + strings.Repeat("a", config.MaxNameLength) + "\n", []string{"line 2", "origins[0]", "name", "origin_id"}},
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

		// Mode and path.
		{"bad mode", "origins:\n  - url: http://h\n    mode: fancy\n", []string{"line 3", "origins[0]", "mode", `"fancy"`}},
		{"path in advanced mode", "origins:\n  - scheme: http\n    hostname: h\n    path: /x\n", []string{"line 4", "origins[0]", "path", "not for module advanced (kind oxcross)", "always probes /oxcross"}},
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

		// Module.
		{"mode and module", "origins:\n  - url: http://h\n    mode: simple\n    module: simple\n", []string{"line 4", "origins[0]", "module: not allowed together with mode"}},
		{"unknown module", "origins:\n  - url: http://h\n    module: fancy\n", []string{"line 3", "origins[0]", `module: "fancy" is not a module (known: advanced, icmp, simple, tcp)`}},
		{"module a list", "origins:\n  - url: http://h\n    module: [simple]\n", []string{"line 3", "origins[0]", "module: want a string"}},
	})
}

// TestOriginTargetShapeErrors: an origin gives the target its module's
// kind wants, and nothing else.
func TestOriginTargetShapeErrors(t *testing.T) {
	checkErrors(t, []errorCase{
		// A URL kind given an address.
		{"address for simple", "origins:\n  - address: 'h:80'\n    mode: simple\n", []string{"line 2", "origins[0]", "address: not for module simple (kind http); give a url or scheme, hostname and port"}},
		{"address for advanced", "origins:\n  - address: 'h:9301'\n", []string{"line 2", "origins[0]", "address: not for module advanced (kind oxcross)"}},

		// An address kind given a URL.
		{"url for tcp", "origins:\n  - url: http://h:22\n    mode: tcp\n", []string{"line 2", "origins[0]", "url: not for module tcp (kind tcp); give address or hostname"}},
		{"scheme for tcp", "origins:\n  - {scheme: http, hostname: h, port: 22, mode: tcp}\n", []string{"line 2", "origins[0]", "scheme: not for module tcp (kind tcp)"}},
		{"path for icmp", "origins:\n  - hostname: h\n    mode: icmp\n    path: /x\n", []string{"line 4", "origins[0]", "path: not for module icmp (kind icmp)"}},
		{"url for a module of the tcp kind", "modules:\n  ssh: {kind: tcp}\norigins:\n  - {url: 'http://h', module: ssh}\n", []string{"line 4", "origins[0]", "url: not for module ssh (kind tcp)"}},

		// tcp.
		{"tcp address and hostname", "origins:\n  - address: 'h:22'\n    hostname: h\n    mode: tcp\n", []string{"line 3", "origins[0]", "hostname: not allowed together with address"}},
		{"tcp address and port", "origins:\n  - address: 'h:22'\n    port: 22\n    mode: tcp\n", []string{"line 3", "origins[0]", "port: not allowed together with address"}},
		{"tcp address without port", "origins:\n  - {address: h, mode: tcp}\n", []string{"line 2", "origins[0]", `address: "h" is not host:port`}},
		{"tcp address port 0", "origins:\n  - {address: 'h:0', mode: tcp}\n", []string{"line 2", "origins[0]", `address: port "0" is outside 1-65535`}},
		{"tcp address port name", "origins:\n  - {address: 'h:ssh', mode: tcp}\n", []string{"line 2", "origins[0]", `address: port "ssh" is not 1-65535 in plain digits`}},
		{"tcp address with a path", "origins:\n  - {address: 'h/x:22', mode: tcp}\n", []string{"line 2", "origins[0]", `address: "h/x" is not a host name or IP address`}},
		{"tcp address of an empty host", "origins:\n  - {address: ':22', mode: tcp}\n", []string{"line 2", "origins[0]", `address: "" is not a host name or IP address`}},
		{"tcp address a list", "origins:\n  - {address: ['h:22'], mode: tcp}\n", []string{"line 2", "origins[0]", "address: want a string"}},
		{"tcp without address or hostname", "origins:\n  - {port: 22, mode: tcp}\n", []string{"line 2", "origins[0]", "hostname: missing, or give an address"}},
		{"tcp hostname without port", "origins:\n  - {hostname: h, mode: tcp}\n", []string{"line 2", "origins[0]", "port: missing; the tcp kind needs one"}},
		{"tcp port 70000", "origins:\n  - hostname: h\n    port: 70000\n    mode: tcp\n", []string{"line 3", "origins[0]", "port: 70000 is outside 1-65535"}},
		{"tcp port abc", "origins:\n  - hostname: h\n    port: abc\n    mode: tcp\n", []string{"line 3", "origins[0]", `port: "abc" is not 1-65535 in plain digits`}},
		{"tcp hostname with a space", "origins:\n  - mode: tcp\n    port: 22\n    hostname: 'a b'\n", []string{"line 4", "origins[0]", `hostname: "a b" is not a host name or IP address`}},
		{"tcp hostname neither a name nor IPv6", "origins:\n  - mode: tcp\n    port: 22\n    hostname: 'a:b:c'\n", []string{"line 4", "origins[0]", `hostname: "a:b:c" is not a host name or IP address`}},
		{"tcp duplicate default id", "origins:\n  - {address: 'h:22', mode: tcp}\n  - {hostname: h, port: 22, mode: tcp}\n", []string{"line 3", "origins[1]", `origin_id "h-22-tcp" is already used by origins[0]`}},

		// icmp.
		{"icmp port", "origins:\n  - hostname: h\n    port: 7\n    mode: icmp\n", []string{"line 3", "origins[0]", "port: not for the icmp kind"}},
		{"icmp address with a port", "origins:\n  - {address: 'h:7', mode: icmp}\n", []string{"line 2", "origins[0]", `address: "h:7" is not a host name or IP address`}},
		{"icmp address with a slash", "origins:\n  - {address: 'h/x', mode: icmp}\n", []string{"line 2", "origins[0]", `address: "h/x" is not a host name or IP address`}},
		{"icmp empty hostname", "origins:\n  - {hostname: '', mode: icmp}\n", []string{"line 2", "origins[0]", `hostname: "" is not a host name or IP address`}},
		{"icmp hostname with a control character", "origins:\n  - mode: icmp\n    hostname: \"a\\x00b\"\n", []string{"line 3", "origins[0]", "hostname", "is not a host name or IP address"}},
	})
}

// probeConfig is a config with modules of its own, for one-off probes.
const probeConfig = `modules:
  head: {kind: http, http: {method: HEAD}}
  ssh: {kind: tcp, tcp: {tls: true}}
  ping6: {kind: icmp, ip_family: ip6}
origins:
  - url: http://h
`

// TestProbeTarget: a one-off probe's target (/probe?target=) resolves by
// its module's kind: a URL (http:// when it gives no scheme, the kind's
// path when it gives none), host:port or a host; the module is the
// config's, the built-in ones included.
func TestProbeTarget(t *testing.T) {
	base := kinds.Base()
	cfg := mustParse(t, []byte(probeConfig))
	const timeout = 5 * time.Second
	for _, tc := range []struct {
		cfg               *config.Config
		raw, module       string
		wantURL, wantAddr string
	}{
		{base, "example.com", "simple", "http://example.com/", ""},
		{base, "example.com:8080/x?y=1", "simple", "http://example.com:8080/x?y=1", ""},
		{base, "https://example.com", "simple", "https://example.com/", ""},
		{base, "https://example.com/a%2Fb?c", "simple", "https://example.com/a%2Fb?c", ""},
		{base, "example.com:9301", "advanced", "http://example.com:9301/oxcross", ""},
		{base, "https://example.com/", "advanced", "https://example.com/oxcross", ""},
		{base, "http://example.com/custom", "advanced", "http://example.com/custom", ""},
		{base, "[::1]:9301", "advanced", "http://[::1]:9301/oxcross", ""},
		{base, "db.example.com:5432", "tcp", "", "db.example.com:5432"},
		{base, "[::1]:22", "tcp", "", "[::1]:22"},
		{base, "192.0.2.7", "icmp", "", "192.0.2.7"},
		{base, "[2001:db8::1]", "icmp", "", "2001:db8::1"},
		{cfg, "example.com", "head", "http://example.com/", ""},
		{cfg, "h:22", "ssh", "", "h:22"},
		{cfg, "h", "ping6", "", "h"},
		{cfg, "h:22", "tcp", "", "h:22"},
	} {
		got, m, err := tc.cfg.ProbeTarget(tc.raw, tc.module, timeout)
		if err != nil {
			t.Errorf("ProbeTarget(%q, %s): %v", tc.raw, tc.module, err)
			continue
		}
		want := config.Target{ID: "probe", URL: tc.wantURL, Address: tc.wantAddr, Module: tc.module, Interval: timeout, Timeout: timeout}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ProbeTarget(%q, %s) target\n got  %+v\n want %+v", tc.raw, tc.module, got, want)
		}
		if !reflect.DeepEqual(m, tc.cfg.Modules[tc.module]) {
			t.Errorf("ProbeTarget(%q, %s) module %+v, want the config's %+v", tc.raw, tc.module, m, tc.cfg.Modules[tc.module])
		}
	}
	if _, m, _ := cfg.ProbeTarget("h", "head", timeout); m.Settings.(*prober.HTTPSettings).Method != "HEAD" {
		t.Errorf("ProbeTarget with the config's module head: settings %+v", m.Settings)
	}
}

func TestProbeTargetErrors(t *testing.T) {
	base := kinds.Base()
	cfg := mustParse(t, []byte(probeConfig))
	for _, tc := range []struct {
		cfg         *config.Config
		raw, module string
		want        []string
	}{
		{base, "h", "nope", []string{`unknown module "nope" (known: advanced, icmp, simple, tcp)`}},
		{cfg, "h", "nope", []string{`unknown module "nope" (known: advanced, head, icmp, ping6, simple, ssh, tcp)`}},
		{base, "", "simple", []string{"target is empty"}},
		{base, "ftp://h/", "simple", []string{`target "ftp://h/" for module simple: url: scheme "ftp" is not http or https`}},
		{base, "http://h/#x", "simple", []string{`target "http://h/#x" for module simple: url: `, "has a fragment"}},
		{base, "h/a b", "advanced", []string{`target "h/a b" for module advanced: url: `, "contains a space"}},
		{base, "h:0", "simple", []string{`target "h:0" for module simple: url: port 0 is outside 1-65535`}},
		{base, "h:70000", "advanced", []string{"url: port 70000 is outside 1-65535"}},
		{base, "h:x", "simple", []string{`target "h:x" for module simple: url: `}},
		{base, "http:///x", "simple", []string{"url: ", "has no host"}},
		{cfg, "ftp://h", "head", []string{`target "ftp://h" for module head: url: scheme "ftp"`}},
		{base, "h", "tcp", []string{`target "h" for module tcp: address: "h" is not host:port`}},
		{base, "h:0", "tcp", []string{`target "h:0" for module tcp: address: port "0" is outside 1-65535`}},
		{base, "a b:22", "tcp", []string{`address: "a b" is not a host name or IP address`}},
		{cfg, "h", "ssh", []string{`target "h" for module ssh: address: "h" is not host:port`}},
		{base, "h:7", "icmp", []string{`target "h:7" for module icmp: address: "h:7" is not a host name or IP address`}},
		{base, "h/x", "icmp", []string{`address: "h/x" is not a host name or IP address`}},
		{cfg, "a\x00b", "ping6", []string{"for module ping6: address: ", "is not a host name or IP address"}},
	} {
		got, m, err := tc.cfg.ProbeTarget(tc.raw, tc.module, time.Second)
		if err == nil {
			t.Errorf("ProbeTarget(%q, %s) = %+v, %+v; want an error", tc.raw, tc.module, got, m)
			continue
		}
		if !containsAll(err.Error(), tc.want...) {
			t.Errorf("ProbeTarget(%q, %s) error %q, want it to contain %q", tc.raw, tc.module, err, tc.want)
		}
		if !reflect.DeepEqual(got, config.Target{}) || !reflect.DeepEqual(m, config.Module{}) {
			t.Errorf("ProbeTarget(%q, %s) returned %+v, %+v with an error", tc.raw, tc.module, got, m)
		}
	}

	// A config that was not parsed knows no kinds.
	bare := &config.Config{Modules: map[string]config.Module{"m": {Kind: "http"}}}
	if _, _, err := bare.ProbeTarget("h", "m", time.Second); err == nil || !strings.Contains(err.Error(), `module m: unknown probe kind "http"`) {
		t.Errorf("ProbeTarget of a config without kinds: %v", err)
	}
}

// TestProbeTargetAsOrigin: a one-off probe's target follows the rules of
// an origin of the config: it is accepted exactly when the same origin
// would be, and resolves to the same target.
func TestProbeTargetAsOrigin(t *testing.T) {
	for _, tc := range []struct{ raw, module string }{
		{"example.com", "simple"}, {"https://example.com:8443/a%2Fb?c=d", "simple"}, {"h:9301", "advanced"},
		{"http://h/", "advanced"}, {"http://h/x/", "advanced"}, {"[fe80::1%25eth0]:9301", "advanced"},
		{"https://u:p@h/", "simple"}, {"h/a b", "simple"}, {"h/#f", "simple"}, {"ftp://h", "advanced"},
		{"h:0", "simple"}, {"h:65536", "simple"}, {"h:x", "simple"}, {"http://:80/", "simple"},
		{"h:22", "tcp"}, {"[::1]:22", "tcp"}, {"h", "tcp"}, {"h:0", "tcp"}, {"a/b:22", "tcp"}, {":22", "tcp"}, {"a:b:22", "tcp"},
		{"h", "icmp"}, {"[::1]", "icmp"}, {"fe80::1%eth0", "icmp"}, {"h:7", "icmp"}, {"a b", "icmp"}, {"bücher.example", "icmp"},
	} {
		key, value := "address", tc.raw
		if tc.module == "simple" || tc.module == "advanced" {
			key = "url"
			if !strings.Contains(value, "://") {
				value = "http://" + value
			}
		}
		text := "interval: 5s\norigins:\n  - {name: probe, mode: " + tc.module + ", " + key + ": " + strconv.Quote(value) + "}\n"
		cfg, perr := parser.Parse([]byte(text))
		got, _, err := kinds.Base().ProbeTarget(tc.raw, tc.module, 5*time.Second)
		switch {
		case (perr == nil) != (err == nil):
			t.Errorf("%s %q: as an origin: %v; as a probe target: %v", tc.module, tc.raw, perr, err)
		case err == nil && !reflect.DeepEqual(got, cfg.Origins[0]):
			t.Errorf("%s %q: probe target\n %+v\nwant the origin's\n %+v", tc.module, tc.raw, got, cfg.Origins[0])
		}
	}
}
