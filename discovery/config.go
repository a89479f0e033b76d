// Package discovery owns Oxcross' target configuration: its schema and
// parser, the leaf's client that keeps it current, and the files it is read
// from.
package discovery

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Mode is how an origin is probed.
type Mode string

const (
	// ModeAdvanced GETs an oxcross-origin's /oxcross endpoint and estimates
	// clock drift from its timestamps.
	ModeAdvanced Mode = "advanced"
	// ModeSimple GETs any URL and wants a 200.
	ModeSimple Mode = "simple"
)

// Defaults and limits of the configuration.
const (
	// DefaultInterval is the probe interval when the config sets none.
	DefaultInterval = 10 * time.Second
	// DefaultTimeout caps the default timeout, which is the smaller of it
	// and the interval.
	DefaultTimeout = 10 * time.Second
	// MaxNameLength bounds an origin_id, which becomes a label value.
	MaxNameLength = 128
	// MaxLabelValueLength bounds a label value from the config.
	MaxLabelValueLength = 256
	// MaxLabels bounds the number of labels of one origin.
	MaxLabels = 32
)

// Config is a parsed and validated target configuration.
type Config struct {
	// Interval and Timeout are the config-wide defaults.
	Interval time.Duration
	Timeout  time.Duration
	// Origins are the resolved targets, in file order.
	Origins []Target
	// Modules are the probe modules by name, the built-in ones included.
	Modules map[string]Module
	// Leaves are the leaves listed in the config, always in /sd/leaves.
	Leaves []StaticLeaf
}

// StaticLeaf is a leaf listed in the config rather than registered.
type StaticLeaf struct {
	ID      string            `json:"id"`
	Address string            `json:"address"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Target is one origin, resolved: every default applied, its URL complete.
type Target struct {
	// ID is the origin_id label value.
	ID string
	// URL is exactly what the leaf requests, for the http and oxcross
	// kinds (the oxcross kind adds the nonce).
	URL string
	// Address is host:port for the tcp kind and the host for icmp.
	Address string
	// Mode is the name of the origin's module.
	Mode     Mode
	Interval time.Duration
	Timeout  time.Duration
	// Labels are the config's labels for this origin; they are used for
	// service discovery, never attached to the leaf's probe metrics.
	Labels map[string]string
	// LeafSelector, when set, limits the origin to leaves whose labels
	// include all of these.
	LeafSelector map[string]string
}

// Selects reports whether t is meant for a leaf with leafLabels.
func (t *Target) Selects(leafLabels map[string]string) bool {
	for k, v := range t.LeafSelector {
		if leafLabels[k] != v {
			return false
		}
	}
	return true
}

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9._:\-]+$`)
	labelRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	// reservedLabels are the labels Oxcross sets itself.
	reservedLabels = map[string]bool{"origin_id": true, "source_id": true, "leaf_id": true, "result": true, "reason": true, "phase": true, "mode": true, "instance": true, "job": true}
)

var (
	topKeys    = []string{"interval", "timeout", "modules", "leaves", "origins"}
	originKeys = []string{"name", "scheme", "hostname", "port", "path", "url", "address", "mode", "module", "interval", "timeout", "labels", "leaf_selector"}
	leafKeys   = []string{"id", "address", "labels"}
)

// Limits bound what a config may ask of the programs that load it, so that
// a config with an absurd number of origins or a millisecond interval is
// refused with a clear message rather than allowed to exhaust a leaf. The
// zero value sets no limit; the programs apply DefaultLimits unless their
// --config.max-origins and --config.min-interval flags say otherwise.
type Limits struct {
	// MaxOrigins is the most origins a config may list; 0 means no limit.
	MaxOrigins int
	// MinInterval is the shortest probe interval a config may set, at the
	// top level or for an origin; 0 means no limit.
	MinInterval time.Duration
}

// DefaultLimits are the limits of --config.max-origins and
// --config.min-interval by default.
var DefaultLimits = Limits{MaxOrigins: 10000, MinInterval: time.Second}

// Parse parses and validates a YAML or JSON target configuration; the
// original Oxcross JSON loads unchanged. It returns every problem it finds,
// each naming its line, entry and field. A config with any error is refused
// whole. It applies no Limits; see Limits.Parse.
func Parse(data []byte) (*Config, error) {
	return Limits{}.Parse(data)
}

// ParseServed parses a config served by a configserver to one leaf, which
// may list no origins at all when none is meant for that leaf. It applies
// no Limits; see Limits.ParseServed.
func ParseServed(data []byte) (*Config, error) {
	return Limits{}.ParseServed(data)
}

// Parse is the package's Parse, refusing a config beyond lim.
func (lim Limits) Parse(data []byte) (*Config, error) {
	return parse(data, false, lim)
}

// ParseServed is the package's ParseServed, refusing a config beyond lim.
func (lim Limits) ParseServed(data []byte) (*Config, error) {
	return parse(data, true, lim)
}

func parse(data []byte, allowEmpty bool, lim Limits) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing config: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errors.New("config is empty: it needs at least one origin")
	}
	p := &parser{allowEmpty: allowEmpty, lim: lim}
	cfg := p.config(doc.Content[0])
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return cfg, nil
}

type parser struct {
	errs       []error
	allowEmpty bool
	lim        Limits
}

// interval checks a probe interval against the minimum interval.
func (p *parser) interval(n *yaml.Node, where string, d time.Duration) {
	if p.lim.MinInterval > 0 && d < p.lim.MinInterval {
		p.errorf(n, "%s: %s is shorter than the minimum interval %s (--config.min-interval)", where, d, p.lim.MinInterval)
	}
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("line %d: %s", n.Line, fmt.Sprintf(format, args...)))
}

// fields checks that n is a mapping with only known, unique keys and
// returns its values by key.
func (p *parser) fields(n *yaml.Node, where string, known []string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%swant a mapping, got %s", prefix(where), kindName(n))
		return nil
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		if !contains(known, key) {
			p.errorf(k, "%sunknown field %q (known: %s)", prefix(where), key, strings.Join(known, ", "))
			continue
		}
		if _, dup := out[key]; dup {
			p.errorf(k, "%sfield %q given twice", prefix(where), key)
			continue
		}
		out[key] = v
	}
	return out
}

func prefix(where string) string {
	if where == "" {
		return ""
	}
	return where + ": "
}

func (p *parser) config(root *yaml.Node) *Config {
	f := p.fields(root, "", topKeys)
	if f == nil {
		return nil
	}
	cfg := &Config{Interval: DefaultInterval}
	if n := f["interval"]; n != nil {
		if d, ok := p.duration(n, "interval"); ok {
			cfg.Interval = d
			p.interval(n, "interval", d)
		}
	}
	cfg.Timeout = min(DefaultTimeout, cfg.Interval)
	if n := f["timeout"]; n != nil {
		if d, ok := p.duration(n, "timeout"); ok {
			cfg.Timeout = d
			if d > cfg.Interval {
				p.errorf(n, "timeout: %s is longer than the interval %s", d, cfg.Interval)
			}
		}
	}
	cfg.Modules = p.modules(f["modules"])
	cfg.Leaves = p.leaves(f["leaves"])
	origins := f["origins"]
	if origins == nil {
		p.errorf(root, "origins: missing: the config needs at least one origin")
		return nil
	}
	if origins.Kind != yaml.SequenceNode {
		p.errorf(origins, "origins: want a list, got %s", kindName(origins))
		return nil
	}
	if len(origins.Content) == 0 {
		if p.allowEmpty {
			return cfg
		}
		p.errorf(origins, "origins: empty: the config needs at least one origin")
		return nil
	}
	if limit := p.lim.MaxOrigins; limit > 0 && len(origins.Content) > limit {
		// Refused before any entry is looked at: a huge list costs no more.
		p.errorf(origins, "origins: %d origins, more than the limit of %d (--config.max-origins)", len(origins.Content), limit)
		return nil
	}
	seen := make(map[string]int)
	for i, n := range origins.Content {
		t, ok := p.origin(cfg, i, n)
		if !ok {
			continue
		}
		if j, dup := seen[t.ID]; dup {
			p.errorf(n, "origins[%d]: origin_id %q is already used by origins[%d]; set a distinct name", i, t.ID, j)
			continue
		}
		seen[t.ID] = i
		cfg.Origins = append(cfg.Origins, t)
	}
	return cfg
}

func (p *parser) origin(cfg *Config, i int, n *yaml.Node) (Target, bool) {
	before := len(p.errs)
	where := fmt.Sprintf("origins[%d]", i)
	f := p.fields(n, where, originKeys)
	if f == nil {
		return Target{}, false
	}
	str := func(key string) string {
		if v := f[key]; v != nil {
			return p.str(v, where+": "+key)
		}
		return ""
	}
	name := str("name")
	if name != "" {
		where = fmt.Sprintf("origins[%d] (%q)", i, name)
	}
	t := Target{Mode: ModeAdvanced, Interval: cfg.Interval}
	modeKey, mv := "mode", f["mode"]
	if mod := f["module"]; mod != nil {
		if mv != nil {
			p.errorf(mod, "%s: module: not allowed together with mode (they are the same)", where)
		}
		modeKey, mv = "module", mod
	}
	if mv != nil {
		m := p.str(mv, where+": "+modeKey)
		if _, ok := cfg.Modules[m]; ok {
			t.Mode = Mode(m)
		} else if m != "" {
			p.errorf(mv, "%s: %s: %q is not a module (known: %s)", where, modeKey, m, moduleNames(cfg.Modules))
		}
	}
	kind := cfg.Modules[string(t.Mode)].Kind
	if v := f["interval"]; v != nil {
		if d, ok := p.duration(v, where+": interval"); ok {
			t.Interval = d
			p.interval(v, where+": interval", d)
		}
	}
	t.Timeout = min(cfg.Timeout, t.Interval)
	if v := f["timeout"]; v != nil {
		if d, ok := p.duration(v, where+": timeout"); ok {
			t.Timeout = d
			if d > t.Interval {
				p.errorf(v, "%s: timeout: %s is longer than the interval %s", where, d, t.Interval)
			}
		}
	}

	var scheme, host string
	var port int
	if kind == KindTCP || kind == KindICMP {
		host, port = p.address(t.Mode, kind, f, where, n, &t)
		scheme = string(kind)
	} else if f["address"] != nil {
		p.errorf(f["address"], "%s: address: only for the tcp and icmp kinds; give a url or scheme, hostname and port", where)
	} else if v := f["url"]; v != nil {
		for _, k := range []string{"scheme", "hostname", "port", "path"} {
			if f[k] != nil {
				p.errorf(f[k], "%s: %s: not allowed together with url", where, k)
			}
		}
		raw := p.str(v, where+": url")
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			p.errorf(v, "%s: url: %v", where, err)
		case strings.Contains(raw, " "):
			p.errorf(v, "%s: url: %q contains a space; write it as %%20", where, raw)
		case u.Scheme != "http" && u.Scheme != "https":
			p.errorf(v, "%s: url: scheme %q is not http or https", where, u.Scheme)
		case u.Hostname() == "":
			p.errorf(v, "%s: url: %q has no host", where, raw)
		case u.Fragment != "":
			p.errorf(v, "%s: url: %q has a fragment", where, raw)
		default:
			scheme, host = u.Scheme, u.Hostname()
			port = defaultPort(scheme)
			if ps := u.Port(); ps != "" {
				port, _ = strconv.Atoi(ps)
				if port < 1 || port > 65535 {
					p.errorf(v, "%s: url: port %s is outside 1-65535", where, ps)
				}
			}
			if kind == KindOxcross && (u.Path == "" || u.Path == "/") {
				u.Path = "/oxcross"
			} else if u.Path == "" {
				u.Path = "/"
			}
			t.URL = u.String()
		}
	} else {
		scheme = str("scheme")
		host = str("hostname")
		switch {
		case f["scheme"] == nil:
			p.errorf(n, "%s: scheme: missing (http or https), or give a url", where)
		case scheme != "http" && scheme != "https":
			p.errorf(f["scheme"], "%s: scheme: %q is not http or https", where, scheme)
		}
		if host == "" {
			p.errorf(n, "%s: hostname: missing, or give a url", where)
		} else if strings.ContainsAny(host, "/?#@ \t") || strings.Contains(strings.Trim(host, "[]"), "[") || !validHost(strings.Trim(host, "[]")) {
			p.errorf(f["hostname"], "%s: hostname: %q is not a host name or IP address", where, host)
		}
		host = strings.Trim(host, "[]")
		port = defaultPort(scheme)
		if v := f["port"]; v != nil {
			port = p.integer(v, where+": port")
			if port < 1 || port > 65535 {
				p.errorf(v, "%s: port: %d is outside 1-65535", where, port)
			}
		}
		path := "/"
		if kind == KindOxcross {
			path = "/oxcross"
		}
		if v := f["path"]; v != nil {
			ps := p.str(v, where+": path")
			switch {
			case kind != KindHTTP:
				p.errorf(v, "%s: path: only for the http kind (simple mode); advanced mode always probes /oxcross", where)
			case !strings.HasPrefix(ps, "/"):
				p.errorf(v, "%s: path: %q does not start with /", where, ps)
			case strings.Contains(ps, " "):
				p.errorf(v, "%s: path: %q contains a space; write it as %%20", where, ps)
			case strings.Contains(ps, "#"):
				p.errorf(v, "%s: path: %q has a fragment", where, ps)
			default:
				path = ps
			}
		}
		pathURL, err := url.ParseRequestURI(path)
		if err != nil {
			p.errorf(n, "%s: path: %v", where, err)
		} else {
			u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: pathURL.Path, RawPath: pathURL.RawPath, RawQuery: pathURL.RawQuery}
			t.URL = u.String()
		}
	}
	if name == "" && host != "" {
		if kind == KindICMP {
			name = host + "-icmp"
		} else {
			name = fmt.Sprintf("%s-%d-%s", host, port, scheme)
		}
	}
	t.ID = name
	if len(name) > MaxNameLength || (name != "" && !nameRE.MatchString(name)) {
		p.errorf(n, "%s: name: origin_id %q must be 1-%d characters of letters, digits, '.', '_', ':' and '-'", where, name, MaxNameLength)
	}
	if v := f["labels"]; v != nil {
		t.Labels = p.labels(v, where)
	}
	if v := f["leaf_selector"]; v != nil {
		t.LeafSelector = p.labelMap(v, where+": leaf_selector", false)
	}
	return t, len(p.errs) == before
}

// leaves parses the config's static leaves.
func (p *parser) leaves(n *yaml.Node) []StaticLeaf {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "leaves: want a list, got %s", kindName(n))
		return nil
	}
	var out []StaticLeaf
	seen := map[string]int{}
	for i, ln := range n.Content {
		where := fmt.Sprintf("leaves[%d]", i)
		f := p.fields(ln, where, leafKeys)
		if f == nil {
			continue
		}
		var l StaticLeaf
		if v := f["id"]; v != nil {
			l.ID = p.str(v, where+": id")
		}
		if err := ValidateLeafID(l.ID); err != nil {
			p.errorf(ln, "%s: id: %v", where, err)
		} else if j, dup := seen[l.ID]; dup {
			p.errorf(ln, "%s: id %q is already used by leaves[%d]", where, l.ID, j)
		}
		seen[l.ID] = i
		if v := f["address"]; v != nil {
			l.Address = p.str(v, where+": address")
		}
		if err := ValidateAddress(l.Address); err != nil {
			p.errorf(ln, "%s: address: %v", where, err)
		}
		if v := f["labels"]; v != nil {
			l.Labels = p.labelMap(v, where+": labels", true)
		}
		out = append(out, l)
	}
	return out
}

// address reads the target of the tcp and icmp kinds: `address`
// (host:port for tcp, a host for icmp) or `hostname` and, for tcp, `port`.
func (p *parser) address(mode Mode, kind Kind, f map[string]*yaml.Node, where string, n *yaml.Node, t *Target) (string, int) {
	for _, k := range []string{"url", "scheme", "path"} {
		if f[k] != nil {
			p.errorf(f[k], "%s: %s: not for module %s (kind %s); give address or hostname", where, k, mode, kind)
		}
	}
	var host string
	port := 0
	if v := f["address"]; v != nil {
		for _, k := range []string{"hostname", "port"} {
			if f[k] != nil {
				p.errorf(f[k], "%s: %s: not allowed together with address", where, k)
			}
		}
		raw := p.str(v, where+": address")
		if kind == KindTCP {
			h, ps, err := net.SplitHostPort(raw)
			if err != nil {
				p.errorf(v, "%s: address: %q is not host:port", where, raw)
				return "", 0
			}
			host = h
			var perr error
			port, perr = strconv.Atoi(ps)
			if perr != nil || port < 1 || port > 65535 {
				p.errorf(v, "%s: address: port %q is outside 1-65535", where, ps)
			}
		} else {
			host = strings.Trim(raw, "[]")
		}
	} else {
		if f["hostname"] == nil {
			p.errorf(n, "%s: hostname: missing, or give an address", where)
			return "", 0
		}
		host = strings.Trim(p.str(f["hostname"], where+": hostname"), "[]")
		if kind == KindTCP {
			if f["port"] == nil {
				p.errorf(n, "%s: port: missing; the tcp kind needs one", where)
			} else {
				port = p.integer(f["port"], where+": port")
				if port < 1 || port > 65535 {
					p.errorf(f["port"], "%s: port: %d is outside 1-65535", where, port)
				}
			}
		} else if f["port"] != nil {
			p.errorf(f["port"], "%s: port: not for the icmp kind", where)
		}
	}
	if host == "" || strings.ContainsAny(host, "/?#@ \t") || !validHost(host) {
		p.errorf(n, "%s: %q is not a host name or IP address", where, host)
		return "", 0
	}
	if kind == KindTCP {
		t.Address = net.JoinHostPort(host, strconv.Itoa(port))
	} else {
		t.Address = host
	}
	return host, port
}

// labelMap parses a mapping of label names to values; with reserved, the
// names Oxcross sets itself are refused.
func (p *parser) labelMap(n *yaml.Node, where string, reserved bool) map[string]string {
	return p.labelsAt(n, where, reserved)
}

func (p *parser) labels(n *yaml.Node, where string) map[string]string {
	return p.labelsAt(n, where+": labels", true)
}

func (p *parser) labelsAt(n *yaml.Node, where string, reserved bool) map[string]string {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: want a mapping, got %s", where, kindName(n))
		return nil
	}
	if len(n.Content)/2 > MaxLabels {
		p.errorf(n, "%s: %d labels, at most %d are allowed", where, len(n.Content)/2, MaxLabels)
		return nil
	}
	out := make(map[string]string, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if problem := labelNameProblem(k.Value, reserved); problem != "" {
			p.errorf(k, "%s: %s", where, problem)
			continue
		}
		if _, dup := out[k.Value]; dup {
			p.errorf(k, "%s: %q given twice", where, k.Value)
			continue
		}
		val := p.str(v, where+": "+k.Value)
		if problem := labelValueProblem(k.Value, val); problem != "" {
			p.errorf(v, "%s: %s", where, problem)
			continue
		}
		out[k.Value] = val
	}
	if len(out) == 0 {
		return nil // as without labels, so that the config round-trips
	}
	return out
}

func (p *parser) str(n *yaml.Node, where string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "%s: want a string, got %s", where, kindName(n))
		return ""
	}
	return n.Value
}

func (p *parser) integer(n *yaml.Node, where string) int {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, "%s: want a number, got %s", where, kindName(n))
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		p.errorf(n, "%s: %q is not a whole number", where, n.Value)
		return 0
	}
	return v
}

// duration reads whole seconds (the original's format, a number or a string
// of digits) or a Go duration ("1500ms"); it must be positive.
func (p *parser) duration(n *yaml.Node, where string) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "%s: want seconds or a duration like 1500ms, got %s", where, kindName(n))
		return 0, false
	}
	d, err := ParseDuration(n.Value)
	if err != nil {
		p.errorf(n, "%s: %v", where, err)
		return 0, false
	}
	return d, true
}

// ParseDuration parses whole or fractional seconds ("30", "0.5") or a Go
// duration ("1500ms", "1m"). The result must be positive and at most a day.
func ParseDuration(s string) (time.Duration, error) {
	var d time.Duration
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f <= 0 || f > 86400 {
			return 0, fmt.Errorf("%q seconds is not between 0 and 86400", s)
		}
		d = time.Duration(f * float64(time.Second))
	} else {
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is neither seconds nor a duration like 1500ms", s)
		}
	}
	if d <= 0 || d > 24*time.Hour {
		return 0, fmt.Errorf("%q is not between 0 and 24h", s)
	}
	return d, nil
}

// validHost reports whether h makes a URL that reads back to the same host:
// a name with a colon must be an IPv6 address, and no control characters.
func validHost(h string) bool {
	u, err := url.Parse((&url.URL{Scheme: "http", Host: net.JoinHostPort(h, "80")}).String())
	return err == nil && u.Hostname() == h
}

func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

// jsonConfig and jsonOrigin are the normalized form the configserver serves
// and the leaf caches: every default applied, durations as Go durations.
type jsonConfig struct {
	Interval string            `json:"interval"`
	Timeout  string            `json:"timeout"`
	Modules  map[string]Module `json:"modules,omitempty"`
	Leaves   []StaticLeaf      `json:"leaves,omitempty"`
	Origins  []jsonOrigin      `json:"origins"`
}

type jsonOrigin struct {
	Name     string            `json:"name"`
	URL      string            `json:"url,omitempty"`
	Address  string            `json:"address,omitempty"`
	Mode     Mode              `json:"mode"`
	Interval string            `json:"interval"`
	Timeout  string            `json:"timeout"`
	Labels   map[string]string `json:"labels,omitempty"`
	Selector map[string]string `json:"leaf_selector,omitempty"`
}

// MarshalJSON encodes the config in its normalized form, which Parse reads
// back to an equal Config.
func (c *Config) MarshalJSON() ([]byte, error) {
	jc := jsonConfig{Interval: c.Interval.String(), Timeout: c.Timeout.String(), Leaves: c.Leaves, Origins: make([]jsonOrigin, 0, len(c.Origins))}
	jc.Modules = ownModules(c.Modules)
	for _, t := range c.Origins {
		jc.Origins = append(jc.Origins, jsonOrigin{Name: t.ID, URL: t.URL, Address: t.Address, Mode: t.Mode, Interval: t.Interval.String(), Timeout: t.Timeout.String(), Labels: t.Labels, Selector: t.LeafSelector})
	}
	return json.Marshal(jc)
}

// ForLeaf returns the config as a leaf with leafLabels sees it: only the
// origins meant for it, and no static leaves. It returns c itself when
// nothing would change.
func (c *Config) ForLeaf(leafLabels map[string]string) *Config {
	selective := len(c.Leaves) > 0
	for i := range c.Origins {
		if len(c.Origins[i].LeafSelector) > 0 {
			selective = true
			break
		}
	}
	if !selective {
		return c
	}
	out := *c
	out.Leaves = nil
	out.Origins = make([]Target, 0, len(c.Origins))
	for _, t := range c.Origins {
		if t.Selects(leafLabels) {
			t.LeafSelector = nil
			out.Origins = append(out.Origins, t)
		}
	}
	return &out
}

// ETag returns a strong entity tag for a served body.
func ETag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}
