package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Kind names a probe kind, implemented by a prober plugin.
type Kind string

// The probe kinds.
const (
	// KindHTTP GETs (or another method) a URL and checks the status code
	// and optionally the body.
	KindHTTP Kind = "http"
	// KindOxcross is KindHTTP against an oxcross-origin's /oxcross, with
	// nonce, token and clock-drift checks.
	KindOxcross Kind = "oxcross"
	// KindTCP connects, optionally with a TLS handshake.
	KindTCP Kind = "tcp"
	// KindICMP sends an echo request and waits for the reply.
	KindICMP Kind = "icmp"
)

// Kinds lists every probe kind.
var Kinds = []Kind{KindHTTP, KindOxcross, KindTCP, KindICMP}

// IPFamily is an IP protocol preference.
type IPFamily string

// The IP families.
const (
	IPAny IPFamily = ""
	IP4   IPFamily = "ip4"
	IP6   IPFamily = "ip6"
)

// Module is a named set of probe settings; origins choose one by name with
// `module:` (or `mode:`).
type Module struct {
	Kind Kind `yaml:"kind" json:"kind"`
	// IPFamily prefers IPv4 or IPv6 when a name resolves to both.
	IPFamily IPFamily `yaml:"ip_family,omitempty" json:"ip_family,omitempty"`
	// NoIPFallback refuses the other family when the preferred one has no
	// address.
	NoIPFallback bool `yaml:"no_ip_fallback,omitempty" json:"no_ip_fallback,omitempty"`
	// MaxBodyBytes bounds the response body read (http, oxcross); a longer
	// body fails the probe with reason body_too_large. 0 means 1 MiB.
	MaxBodyBytes int64        `yaml:"max_body_bytes,omitempty" json:"max_body_bytes,omitempty"`
	HTTP         HTTPSettings `yaml:"http,omitempty" json:"http,omitzero"`
	TCP          TCPSettings  `yaml:"tcp,omitempty" json:"tcp,omitzero"`
}

// HTTPSettings configure the http and oxcross kinds.
type HTTPSettings struct {
	// Method defaults to GET.
	Method  string            `yaml:"method,omitempty" json:"method,omitempty"`
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// ValidStatusCodes default to 200.
	ValidStatusCodes []int `yaml:"valid_status_codes,omitempty" json:"valid_status_codes,omitempty"`
	// BodyRegexp, when set, must match the body.
	BodyRegexp      string      `yaml:"body_regexp,omitempty" json:"body_regexp,omitempty"`
	FollowRedirects bool        `yaml:"follow_redirects,omitempty" json:"follow_redirects,omitempty"`
	TLS             TLSSettings `yaml:"tls,omitempty" json:"tls,omitzero"`
}

// TCPSettings configure the tcp kind.
type TCPSettings struct {
	// TLS makes the probe do a TLS handshake after connecting.
	TLS       bool        `yaml:"tls,omitempty" json:"tls,omitempty"`
	TLSConfig TLSSettings `yaml:"tls_config,omitempty" json:"tls_config,omitzero"`
}

// TLSSettings are a probe's TLS client settings. Files are read by the leaf
// that runs the probe.
type TLSSettings struct {
	CAFile             string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	ServerName         string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
	CertFile           string `yaml:"cert_file,omitempty" json:"cert_file,omitempty"`
	KeyFile            string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify,omitempty" json:"insecure_skip_verify,omitempty"`
}

// BuiltinModules are the modules every config has: the original's two
// modes, and tcp and icmp with default settings.
func BuiltinModules() map[string]Module {
	return map[string]Module{
		string(ModeSimple):   {Kind: KindHTTP},
		string(ModeAdvanced): {Kind: KindOxcross},
		string(KindTCP):      {Kind: KindTCP},
		string(KindICMP):     {Kind: KindICMP},
	}
}

var moduleNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_\-]{0,63}$`)

// modules parses the config's modules: a mapping of names to settings.
func (p *parser) modules(n *yaml.Node) map[string]Module {
	out := BuiltinModules()
	if n == nil {
		return out
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "modules: want a mapping of names to modules, got %s", kindName(n))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := k.Value
		where := fmt.Sprintf("modules.%s", name)
		if !moduleNameRE.MatchString(name) {
			p.errorf(k, "modules: %q is not a valid module name (letters, digits, '_' and '-', at most 64)", name)
			continue
		}
		if isBuiltin(name) {
			p.errorf(k, "%s: %q is a built-in module and cannot be redefined", where, name)
			continue
		}
		if _, dup := out[name]; dup {
			p.errorf(k, "%s: defined twice", where)
			continue
		}
		m, ok := p.module(v, where)
		if ok {
			out[name] = m
		}
	}
	return out
}

func (p *parser) module(n *yaml.Node, where string) (Module, bool) {
	var m Module
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: want a mapping, got %s", where, kindName(n))
		return m, false
	}
	// Decode strictly: re-encode the node and decode it with unknown
	// fields refused, reporting lines of the original file.
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(n); err != nil {
		p.errorf(n, "%s: %v", where, err)
		return m, false
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		line, msg := relineYAMLError(err, n.Line)
		p.errs = append(p.errs, fmt.Errorf("line %d: %s: %s", line, where, msg))
		return m, false
	}
	before := len(p.errs)
	switch m.Kind {
	case KindHTTP, KindOxcross, KindTCP, KindICMP:
	case "":
		p.errorf(n, "%s: kind: missing (one of %s)", where, kindList())
	default:
		p.errorf(n, "%s: kind: %q is not one of %s", where, m.Kind, kindList())
	}
	switch m.IPFamily {
	case IPAny, IP4, IP6:
	default:
		p.errorf(n, "%s: ip_family: %q is not ip4 or ip6", where, m.IPFamily)
	}
	if m.MaxBodyBytes < 0 || m.MaxBodyBytes > 64<<20 {
		p.errorf(n, "%s: max_body_bytes: %d is not between 0 and 64 MiB", where, m.MaxBodyBytes)
	}
	h := m.HTTP
	if h.Method != "" && !validMethod(h.Method) {
		p.errorf(n, "%s: http: method: %q is not an HTTP method", where, h.Method)
	}
	for k := range h.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") {
			p.errorf(n, "%s: http: headers: %q is not a header name", where, k)
		}
	}
	for k, v := range h.Headers {
		if strings.ContainsAny(v, "\r\n") {
			p.errorf(n, "%s: http: headers: %s: value contains a line break", where, k)
		}
	}
	for _, c := range h.ValidStatusCodes {
		if c < 100 || c > 599 {
			p.errorf(n, "%s: http: valid_status_codes: %d is not an HTTP status code", where, c)
		}
	}
	if h.BodyRegexp != "" {
		if _, err := regexp.Compile(h.BodyRegexp); err != nil {
			p.errorf(n, "%s: http: body_regexp: %v", where, err)
		}
	}
	if (h.TLS.CertFile == "") != (h.TLS.KeyFile == "") {
		p.errorf(n, "%s: http: tls: cert_file and key_file go together", where)
	}
	if (m.TCP.TLSConfig.CertFile == "") != (m.TCP.TLSConfig.KeyFile == "") {
		p.errorf(n, "%s: tcp: tls_config: cert_file and key_file go together", where)
	}
	if m.Kind != KindHTTP && m.Kind != KindOxcross && !isZeroHTTP(h) {
		p.errorf(n, "%s: http: only for kinds http and oxcross", where)
	}
	if m.Kind != KindTCP && (m.TCP.TLS || m.TCP.TLSConfig != TLSSettings{}) {
		p.errorf(n, "%s: tcp: only for kind tcp", where)
	}
	return m, len(p.errs) == before
}

func isZeroHTTP(h HTTPSettings) bool {
	return h.Method == "" && len(h.Headers) == 0 && len(h.ValidStatusCodes) == 0 && h.BodyRegexp == "" && !h.FollowRedirects && h.TLS == TLSSettings{}
}

func validMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

func kindList() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// relineYAMLError returns the line of a yaml error in a snippet re-encoded
// from the node at line first, as a line of the original file, and the
// error's message without its line.
func relineYAMLError(err error, first int) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		if i := strings.Index(msg, ":"); i >= 0 {
			return first + line - 1, strings.TrimSpace(msg[i+1:])
		}
	}
	return first, msg
}

// moduleNames lists the module names for messages.
func moduleNames(mods map[string]Module) string {
	names := make([]string, 0, len(mods))
	for n := range mods {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// ProbeTarget resolves a one-off probe's target (a URL, or host:port, or
// a host, as module's kind wants) with the same rules as a config entry.
// modules are the config's modules, the built-in ones included.
func ProbeTarget(raw, module string, modules map[string]Module, timeout time.Duration) (Target, Module, error) {
	m, ok := modules[module]
	if !ok {
		return Target{}, Module{}, fmt.Errorf("unknown module %q (known: %s)", module, moduleNames(modules))
	}
	if raw == "" {
		return Target{}, Module{}, errors.New("target is empty")
	}
	o := jsonOrigin{Name: "probe", Mode: Mode(module), Interval: timeout.String(), Timeout: timeout.String()}
	switch m.Kind {
	case KindHTTP, KindOxcross:
		if !strings.Contains(raw, "://") {
			raw = "http://" + raw
		}
		o.URL = raw
	default:
		o.Address = raw
	}
	jc := jsonConfig{Interval: o.Interval, Timeout: o.Timeout, Origins: []jsonOrigin{o}}
	jc.Modules = ownModules(modules)
	body, err := json.Marshal(jc)
	if err != nil {
		return Target{}, Module{}, fmt.Errorf("target %q: %w", raw, err)
	}
	cfg, err := Parse(body)
	if err != nil {
		msg := strings.NewReplacer("line 1: ", "", `origins[0] ("probe"): `, "").Replace(err.Error())
		return Target{}, Module{}, fmt.Errorf("target %q for module %s: %s", raw, module, msg)
	}
	return cfg.Origins[0], m, nil
}

// isBuiltin reports whether name is a built-in module's.
func isBuiltin(name string) bool {
	_, ok := BuiltinModules()[name]
	return ok
}

// ownModules returns the modules a config defines itself (nil if none):
// what its normalized JSON lists, the built-in ones being implied.
func ownModules(modules map[string]Module) map[string]Module {
	var out map[string]Module
	for name, m := range modules {
		if isBuiltin(name) {
			continue
		}
		if out == nil {
			out = make(map[string]Module)
		}
		out[name] = m
	}
	return out
}
