package config

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The original Oxcross, both ways.
//
// Serving: GET /config is read by leaves of both generations. The original
// leaf decodes it with encoding/json into a struct of integer-second
// `interval` and `timeout` and `origins` of `scheme`, `hostname`, `port`
// and `mode`, ignores every other key and composes each origin's URL
// itself. So the served body has those keys, for the origins an original
// leaf would probe exactly as the new one does, and the whole config in
// its normalized form under the key `oxcross`, which the original ignores
// and the new leaf reads (see served and unwrapServed).
//
// Reading: a config in the original's JSON shape (see originalShape) is
// read as the original read it, where the strict rules would refuse it:
// keys matched whatever their case, unknown keys ignored, origins it
// skipped skipped; each with a warning naming its line (Config.Warnings).

// ServedKey is the top-level key of the served config that holds the
// whole config in its normalized form (Config.MarshalJSON).
const ServedKey = "oxcross"

// The original's keys: its Config and OriginEntry structs.
var (
	originalTopKeys    = []string{"interval", "timeout", "origins"}
	originalOriginKeys = []string{"scheme", "hostname", "port", "mode", "URL"}
)

// originalMaxPort is the highest port the original probed: it skipped
// origins with a port above it.
const originalMaxPort = 32767

// servedConfig is the served body: the config as the original leaf reads
// it, and the config itself under ServedKey.
type servedConfig struct {
	Interval int              `json:"interval"`
	Timeout  int              `json:"timeout"`
	Origins  []originalOrigin `json:"origins"`
	// The normalized config follows, under ServedKey: appended as it is,
	// which encoding/json would check and compact again.
}

// originalOrigin is an origin as the original leaf reads it.
type originalOrigin struct {
	Scheme   string `json:"scheme"`
	Hostname string `json:"hostname"`
	Port     int    `json:"port"`
	Mode     string `json:"mode"`
}

// served encodes the config as GET /config serves it and a leaf caches it:
// the original leaf's view of it, and under ServedKey its normalized JSON
// (MarshalJSON), which a Parser reads back to an equal Config.
//
// The original's view has the interval and timeout in whole seconds,
// rounded up, and lists the origins an original leaf would probe exactly
// as the new one does (see originalEntry) and would select: those a leaf
// without labels is meant to probe, since an original leaf has none.
func (c *Config) served() ([]byte, error) {
	normalized, err := c.MarshalJSON()
	if err != nil {
		return nil, err
	}
	sc := servedConfig{Interval: originalSeconds(c.Interval), Timeout: originalSeconds(c.Timeout), Origins: []originalOrigin{}}
	for i := range c.Origins {
		t := &c.Origins[i]
		if !t.Selects(nil) {
			continue
		}
		if o, ok := c.originalEntry(t); ok {
			sc.Origins = append(sc.Origins, o)
		}
	}
	view, err := json.Marshal(sc)
	if err != nil {
		return nil, err
	}
	body := make([]byte, 0, len(view)+len(ServedKey)+len(normalized)+4)
	body = append(body, view[:len(view)-1]...)
	body = append(body, `,"`+ServedKey+`":`...)
	body = append(body, normalized...)
	return append(body, '}'), nil
}

// originalSeconds is d in whole seconds as the original reads them:
// rounded up, at least 1.
func originalSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

// originalEntry returns t as the original leaf reads an origin, when the
// original would probe it exactly as the new leaf does: with a built-in
// module it knows (advanced or simple, whose settings cannot change) and a
// URL it composes the same from scheme, hostname and port (no path but
// advanced's /oxcross, no query or user, a port it does not skip).
func (c *Config) originalEntry(t *Target) (originalOrigin, bool) {
	if t.URL == "" || (t.Module != "advanced" && t.Module != "simple") || c.kinds == nil || !c.kinds.IsBuiltin(t.Module) {
		return originalOrigin{}, false
	}
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return originalOrigin{}, false
	}
	path := ""
	switch p := u.EscapedPath(); {
	case t.Module == "advanced" && p == "/oxcross":
		path = p
	case t.Module == "simple" && (p == "" || p == "/"):
	default:
		return originalOrigin{}, false
	}
	host, port := u.Hostname(), portOf(u)
	if port > originalMaxPort || strings.Contains(host, "%") {
		return originalOrigin{}, false
	}
	hostname := host
	if strings.Contains(host, ":") {
		hostname = "[" + host + "]" // an IPv6 address, which the original puts in the URL as it is
	}
	// The original composes its URL so; it must read back to t's target.
	back, err := url.Parse(fmt.Sprintf("%s://%s:%d%s", u.Scheme, hostname, port, path))
	if err != nil || back.Hostname() != host || back.Port() != strconv.Itoa(port) || back.EscapedPath() != path {
		return originalOrigin{}, false
	}
	return originalOrigin{Scheme: u.Scheme, Hostname: hostname, Port: port, Mode: t.Module}, true
}

// unwrapServed returns the config of a served body, the value of its
// ServedKey; the original's view beside it is not read. Any other
// document is returned as it is.
func (p *parser) unwrapServed(root *yaml.Node) *yaml.Node {
	if root.Kind != yaml.MappingNode {
		return root
	}
	var inner *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == ServedKey {
			inner = root.Content[i+1]
			break
		}
	}
	if inner == nil {
		return root
	}
	// Besides the config, only the original's view of it.
	p.fields(root, "", append(originalTopKeys[:len(originalTopKeys):len(originalTopKeys)], ServedKey))
	return inner
}

// originalShape reports whether a config is in the original Oxcross' JSON
// shape, the only one read leniently: a JSON document (RFC 8259, as
// encoding/json reads it) whose value is an object in which no key, at
// the top or in an entry of its origins, is spelled exactly as a key that
// this Oxcross added (top: modules, leaves, oxcross; origins: name, url,
// path, address, module, interval, timeout, labels, leaf_selector). The
// original's own keys may have any case, as may keys it did not know.
// YAML, and JSON that uses the new keys, are read strictly.
func originalShape(data []byte, root *yaml.Node) bool {
	if root.Kind != yaml.MappingNode {
		return false
	}
	newTop := added(topKeys, originalTopKeys)
	newOrigin := added(originKeys, originalOriginKeys)
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i].Value, root.Content[i+1]
		if k == ServedKey || contains(newTop, k) {
			return false
		}
		if !strings.EqualFold(k, "origins") || v.Kind != yaml.SequenceNode {
			continue
		}
		for _, o := range v.Content {
			if o.Kind != yaml.MappingNode {
				continue
			}
			for j := 0; j < len(o.Content); j += 2 {
				if contains(newOrigin, o.Content[j].Value) {
					return false
				}
			}
		}
	}
	return json.Valid(data)
}

// added lists the keys of all that are not the original's.
func added(all, original []string) []string {
	var out []string
	for _, k := range all {
		if !contains(original, k) {
			out = append(out, k)
		}
	}
	return out
}

// original reads a config in the original's shape as the original did.
type original struct {
	// fields holds each mapping's fields once read, so that a warning is
	// given once.
	fields map[*yaml.Node]map[string]*yaml.Node
	// origins is the origins list, and skipped the number of its entries
	// skipped.
	origins *yaml.Node
	skipped int
}

func (p *parser) warnf(n *yaml.Node, format string, args ...any) {
	p.warnings = append(p.warnings, fmt.Sprintf("line %d: %s", n.Line, fmt.Sprintf(format, args...)))
}

// originalFields reads a mapping of the original's config (known is the
// strict parser's keys of that mapping: topKeys or originKeys) as
// encoding/json read it into the original's structs: a key matches
// whatever its case, a key the original did not have is ignored, a key
// given again replaces the earlier value, and null leaves a key unset,
// each with a warning. Besides, as the original read them: an interval or
// timeout of 0 is unset, a timeout longer than the interval is cut to it,
// and a mode that is not a built-in module probes as simple.
func (p *parser) originalFields(n *yaml.Node, where string, known []string) map[string]*yaml.Node {
	o := p.original
	if f, ok := o.fields[n]; ok {
		return f
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%swant a mapping, got %s", prefix(where), kindName(n))
		return nil
	}
	top := contains(known, "origins")
	keys := originalOriginKeys
	if top {
		keys = originalTopKeys
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	lines := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := ""
		for _, key := range keys {
			if strings.EqualFold(k.Value, key) {
				name = key
				break
			}
		}
		switch {
		case name == "":
			p.warnf(k, "%sunknown field %q ignored, as the original Oxcross did (it reads %s)", prefix(where), k.Value, strings.Join(keys, ", "))
			continue
		case k.Value != name:
			p.warnf(k, "%sfield %q read as %q, as the original Oxcross did (it matched keys whatever their case)", prefix(where), k.Value, name)
		}
		if line, dup := lines[name]; dup {
			p.warnf(k, "%sfield %q given again (before on line %d): the last one counts, as in the original Oxcross", prefix(where), name, line)
		}
		lines[name] = k.Line
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			p.warnf(v, "%s%s: null ignored, as the original Oxcross did", prefix(where), name)
			continue
		}
		out[name] = v
	}
	if top {
		p.originalDurations(out)
	} else {
		p.originalMode(out, where)
	}
	o.fields[n] = out
	return out
}

// originalDurations reads the top level's interval and timeout as the
// original did where the strict rules refuse them: 0 is unset (the
// default), and a timeout longer than the interval is cut to it.
func (p *parser) originalDurations(f map[string]*yaml.Node) {
	for _, key := range []string{"interval", "timeout"} {
		if v := f[key]; v != nil && v.Kind == yaml.ScalarNode {
			if x, err := strconv.ParseFloat(v.Value, 64); err == nil && x == 0 {
				p.warnf(v, "%s: 0 means the default, as in the original Oxcross", key)
				delete(f, key)
			}
		}
	}
	iv, tv := f["interval"], f["timeout"]
	if tv == nil || tv.Kind != yaml.ScalarNode {
		return
	}
	interval, value := DefaultInterval, DefaultInterval.String()
	if iv != nil {
		d, err := ParseDuration(iv.Value)
		if iv.Kind != yaml.ScalarNode || err != nil {
			return // refused as it is
		}
		interval, value = d, iv.Value
	}
	if timeout, err := ParseDuration(tv.Value); err == nil && timeout > interval {
		p.warnf(tv, "timeout: %s is longer than the interval %s, cut to it (the original Oxcross let probes overlap)", timeout, interval)
		f["timeout"] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value, Line: tv.Line, Column: tv.Column}
	}
}

// originalMode reads an origin's mode as the original did: one it did not
// know (anything but advanced, the default) probed the URL without
// /oxcross and succeeded on 200, which is the simple module.
func (p *parser) originalMode(f map[string]*yaml.Node, where string) {
	v := f["mode"]
	if v == nil || v.Kind != yaml.ScalarNode || v.Tag != "!!str" || v.Value == "" || p.kinds.IsBuiltin(v.Value) || !p.kinds.IsBuiltin("simple") {
		return
	}
	p.warnf(v, "%smode: %q is not a mode; probed as simple (GET scheme://hostname:port/, success on 200), as the original Oxcross did", prefix(where), v.Value)
	f["mode"] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "simple", Line: v.Line, Column: v.Column}
}

// skipOriginal reports whether origin i of a config in the original's
// shape is one the original skipped, or could not probe, and is skipped
// with a warning: a URL origin whose scheme is not http or https, whose
// hostname is missing or not a host, or whose port is outside 1-65535.
// Anything else wrong with it is refused by the strict rules.
func (p *parser) skipOriginal(origins *yaml.Node, i int, n *yaml.Node) bool {
	o := p.original
	o.origins = origins
	where := fmt.Sprintf("origins[%d]", i)
	f := p.originalFields(n, where, originKeys)
	if f == nil {
		return false
	}
	module := DefaultModule
	if v := f["mode"]; v != nil && v.Kind == yaml.ScalarNode && v.Value != "" {
		module = v.Value
	}
	if !p.kinds.IsBuiltin(module) {
		return false
	}
	if k, ok := p.kinds.Lookup(p.kinds.builtin[module]); !ok || k.Target != TargetURL {
		return false
	}
	skip := func(at *yaml.Node, format string, args ...any) bool {
		p.warnf(at, "%s: %s; skipped, as the original Oxcross did", where, fmt.Sprintf(format, args...))
		o.skipped++
		return true
	}
	sv, hv, pv := f["scheme"], f["hostname"], f["port"]
	scalar := func(v *yaml.Node) bool { return v != nil && v.Kind == yaml.ScalarNode }
	switch {
	case sv == nil:
		return skip(n, "scheme: missing (http or https)")
	case !scalar(sv):
		return false
	case sv.Value != "http" && sv.Value != "https":
		return skip(sv, "scheme: %q is not http or https", sv.Value)
	}
	if hv == nil || (scalar(hv) && hv.Value == "") {
		return skip(n, "hostname: missing; the original Oxcross could not probe it")
	}
	if !scalar(hv) {
		return false
	}
	if host := strings.Trim(hv.Value, "[]"); strings.ContainsAny(hv.Value, "/?#@ \t") || strings.Contains(host, "[") || !validHost(host) {
		return skip(hv, "hostname: %q is not a host name or IP address", hv.Value)
	}
	port := 0
	if pv != nil {
		if !scalar(pv) {
			return false
		}
		n, err := strconv.Atoi(pv.Value)
		if err != nil {
			return false
		}
		if n < 1 || n > 65535 {
			return skip(pv, "port: %d is outside 1-65535", n)
		}
		if n > originalMaxPort {
			p.warnf(pv, "%s: port: %d: the original Oxcross skipped ports above %d; this one probes it, original leaves still skip it", where, n, originalMaxPort)
		}
		port = n
	}
	if uv := f["URL"]; uv != nil {
		mode := ""
		if v := f["mode"]; v != nil {
			mode = v.Value
		}
		composed := fmt.Sprintf("%s://%s:%d", sv.Value, hv.Value, port)
		if mode == "" || mode == "advanced" {
			composed += "/oxcross"
		}
		if uv.Kind != yaml.ScalarNode || uv.Value != composed {
			p.warnf(uv, "%s: URL: %s ignored: the URL is composed of scheme, hostname, port and mode (%s), as the original Oxcross did", where, kindName(uv), composed)
		}
	}
	return false
}

// finishOriginal refuses a config in the original's shape whose origins
// were all skipped, as the original did.
func (p *parser) finishOriginal(cfg *Config) {
	o := p.original
	if cfg == nil || len(cfg.Origins) > 0 || o.skipped == 0 || len(p.errs) > 0 || p.allowEmpty {
		return
	}
	p.errorf(o.origins, "origins: all %d skipped (see the warnings): the config needs at least one origin", o.skipped)
}
