package config

import (
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

var (
	nameRE     = regexp.MustCompile(`^[A-Za-z0-9._:\-]+$`)
	originKeys = []string{"name", "scheme", "hostname", "port", "path", "url", "address", "mode", "module", "interval", "timeout", "labels", "leaf_selector"}
)

func (p *parser) origin(cfg *Config, i int, n *yaml.Node) (Target, bool) {
	before := len(p.errs)
	where := fmt.Sprintf("origins[%d]", i)
	f := p.fields(n, where, originKeys)
	if f == nil {
		return Target{}, false
	}
	name := ""
	if v := f["name"]; v != nil {
		name = p.str(v, where+": name")
	}
	if name != "" {
		where = fmt.Sprintf("origins[%d] (%q)", i, name)
	}
	t := Target{Module: DefaultModule, Interval: cfg.Interval}
	moduleKey, mv := "mode", f["mode"]
	if mod := f["module"]; mod != nil {
		if mv != nil {
			p.errorf(mod, "%s: module: not allowed together with mode (they are the same)", where)
		}
		moduleKey, mv = "module", mod
	}
	if mv != nil {
		m := p.str(mv, where+": "+moduleKey)
		if _, ok := cfg.Modules[m]; ok {
			t.Module = m
		} else if m != "" {
			p.errorf(mv, "%s: %s: %q is not a module (known: %s)", where, moduleKey, m, moduleNames(cfg.Modules))
		}
	}
	kind, ok := p.kinds.Lookup(cfg.Modules[t.Module].Kind)
	if !ok {
		p.errorf(n, "%s: mode: missing, and there is no default module %q (known: %s)", where, DefaultModule, moduleNames(cfg.Modules))
		return Target{}, false
	}
	if kind.DefaultInterval > 0 {
		t.Interval = kind.DefaultInterval
	}
	if v := f["interval"]; v != nil {
		if d, ok := p.duration(v, where+": interval"); ok {
			t.Interval = d
			p.interval(v, where+": interval", d)
		}
	}
	t.Timeout = min(cfg.Timeout, t.Interval)
	if kind.DefaultTimeout > 0 {
		t.Timeout = min(kind.DefaultTimeout, t.Interval)
	}
	if v := f["timeout"]; v != nil {
		if d, ok := p.duration(v, where+": timeout"); ok {
			t.Timeout = d
			if d > t.Interval {
				p.errorf(v, "%s: timeout: %s is longer than the interval %s", where, d, t.Interval)
			}
		}
	}
	if err := cfg.Modules[t.Module].checkTimeout(t.Timeout); err != nil {
		at := n
		if v := f["timeout"]; v != nil {
			at = v
		}
		p.errorf(at, "%s: timeout: %s is too short for module %s: %v", where, t.Timeout, t.Module, err)
	}

	var scheme, host string
	var port int
	targetErrs := len(p.errs)
	if kind.Target == TargetURL {
		scheme, host, port = p.urlOrigin(kind, t.Module, f, where, n, &t)
	} else {
		host, port = p.addressOrigin(kind, t.Module, f, where, n, &t)
		scheme = kind.Name
	}
	// A name derived from a target in error would only repeat the error.
	if name == "" && host != "" && len(p.errs) == targetErrs {
		if kind.Target == TargetHost {
			name = host + "-" + kind.Name
		} else {
			name = fmt.Sprintf("%s-%d-%s", host, port, scheme)
		}
	}
	t.ID = name
	if len(name) > MaxNameLength || (name != "" && !nameRE.MatchString(name)) {
		p.errorf(n, "%s: name: origin_id %q must be 1-%d characters of letters, digits, '.', '_', ':' and '-'", where, name, MaxNameLength)
	}
	if v := f["labels"]; v != nil {
		t.Labels = p.labels(v, where+": labels", true)
	}
	if v := f["leaf_selector"]; v != nil {
		t.LeafSelector = p.labels(v, where+": leaf_selector", false)
	}
	return t, len(p.errs) == before
}

// urlOrigin reads the target of a URL kind: `url`, or `scheme`,
// `hostname`, `port` and `path`. It returns the scheme, host and port.
func (p *parser) urlOrigin(k *Kind, module string, f map[string]*yaml.Node, where string, n *yaml.Node, t *Target) (string, string, int) {
	if v := f["address"]; v != nil {
		p.errorf(v, "%s: address: not for module %s (kind %s); give a url or scheme, hostname and port", where, module, k.Name)
		return "", "", 0
	}
	if v := f["url"]; v != nil {
		for _, key := range []string{"scheme", "hostname", "port", "path"} {
			if f[key] != nil {
				p.errorf(f[key], "%s: %s: not allowed together with url", where, key)
			}
		}
		u, err := urlTarget(p.str(v, where+": url"), k)
		if err != nil {
			p.errorf(v, "%s: url: %v", where, err)
			return "", "", 0
		}
		t.URL = u.String()
		return u.Scheme, u.Hostname(), portOf(u)
	}
	var scheme, host string
	if v := f["scheme"]; v == nil {
		p.errorf(n, "%s: scheme: missing (http or https), or give a url", where)
	} else if scheme = p.str(v, where+": scheme"); scheme != "http" && scheme != "https" {
		p.errorf(v, "%s: scheme: %q is not http or https", where, scheme)
	}
	if v := f["hostname"]; v != nil {
		host = p.str(v, where+": hostname")
	}
	if host == "" {
		p.errorf(n, "%s: hostname: missing, or give a url", where)
	} else if strings.ContainsAny(host, "/?#@ \t") || strings.Contains(strings.Trim(host, "[]"), "[") || !validHost(strings.Trim(host, "[]")) {
		p.errorf(f["hostname"], "%s: hostname: %q is not a host name or IP address", where, RedactURL(host))
	}
	host = strings.Trim(host, "[]")
	port := defaultPort(scheme)
	if v := f["port"]; v != nil {
		port = p.port(v, where+": port")
	}
	path := k.DefaultPath
	if v := f["path"]; v != nil {
		ps := p.str(v, where+": path")
		switch {
		case k.FixedPath:
			p.errorf(v, "%s: path: not for module %s (kind %s), which always probes %s", where, module, k.Name, k.DefaultPath)
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
		return scheme, host, port
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: pathURL.Path, RawPath: pathURL.RawPath, RawQuery: pathURL.RawQuery}
	t.URL = u.String()
	return scheme, host, port
}

// addressOrigin reads the target of a host:port or host kind: `address`,
// or `hostname` and (host:port only) `port`. It returns the host and port.
func (p *parser) addressOrigin(k *Kind, module string, f map[string]*yaml.Node, where string, n *yaml.Node, t *Target) (string, int) {
	for _, key := range []string{"url", "scheme", "path"} {
		if f[key] != nil {
			p.errorf(f[key], "%s: %s: not for module %s (kind %s); give address or hostname", where, key, module, k.Name)
		}
	}
	if v := f["address"]; v != nil {
		for _, key := range []string{"hostname", "port"} {
			if f[key] != nil {
				p.errorf(f[key], "%s: %s: not allowed together with address", where, key)
			}
		}
		addr, host, port, err := addressTarget(p.str(v, where+": address"), k)
		if err != nil {
			p.errorf(v, "%s: address: %v", where, err)
			return "", 0
		}
		t.Address = addr
		return host, port
	}
	if f["hostname"] == nil {
		p.errorf(n, "%s: hostname: missing, or give an address", where)
		return "", 0
	}
	host := strings.Trim(p.str(f["hostname"], where+": hostname"), "[]")
	port := 0
	if k.Target == TargetHostPort {
		switch {
		case f["port"] == nil && k.DefaultPort != 0:
			port = k.DefaultPort
		case f["port"] == nil:
			p.errorf(n, "%s: port: missing; the %s kind needs one", where, k.Name)
		default:
			port = p.port(f["port"], where+": port")
		}
	} else if f["port"] != nil {
		p.errorf(f["port"], "%s: port: not for the %s kind", where, k.Name)
	}
	if err := checkHost(host); err != nil {
		p.errorf(f["hostname"], "%s: hostname: %v", where, err)
		return "", 0
	}
	t.Address = joinAddress(k, host, port)
	return host, port
}

// urlTarget checks a URL target of kind k and completes its path.
// Errors show raw with its userinfo redacted.
func urlTarget(raw string, k *Kind) (*url.URL, error) {
	u, err := url.Parse(raw)
	shown := RedactURL(raw)
	var uerr *url.Error
	switch {
	case errors.As(err, &uerr):
		return nil, fmt.Errorf("%q: %w", shown, uerr.Err)
	case err != nil:
		return nil, fmt.Errorf("%q: %w", shown, err)
	case strings.Contains(raw, " "):
		return nil, fmt.Errorf("%q contains a space; write it as %%20", shown)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("scheme %q is not http or https", u.Scheme)
	case u.Hostname() == "":
		return nil, fmt.Errorf("%q has no host", shown)
	case u.Fragment != "":
		return nil, fmt.Errorf("%q has a fragment", shown)
	}
	if ps := u.Port(); ps != "" {
		if _, problem := parsePort(ps); problem != "" {
			return nil, fmt.Errorf("port %s %s", ps, problem)
		}
	}
	if u.Path == "" || (k.FixedPath && u.Path == "/") {
		u.Path = k.DefaultPath
	}
	return u, nil
}

// portOf returns a checked URL's port, the scheme's default if it has none.
func portOf(u *url.URL) int {
	if ps := u.Port(); ps != "" {
		port, _ := strconv.Atoi(ps)
		return port
	}
	return defaultPort(u.Scheme)
}

// addressTarget checks an address target of kind k: host:port, or a host.
// It returns the address as probed, its host and its port (0 for a host).
func addressTarget(raw string, k *Kind) (string, string, int, error) {
	host, port := strings.Trim(raw, "[]"), 0
	if k.Target == TargetHostPort && k.DefaultPort != 0 && hostOnly(raw) {
		if err := checkHost(host); err != nil {
			return "", "", 0, err
		}
		return joinAddress(k, host, k.DefaultPort), host, k.DefaultPort, nil
	}
	if k.Target == TargetHostPort {
		h, ps, err := net.SplitHostPort(raw)
		if err != nil {
			return "", "", 0, fmt.Errorf("%q is not host:port", RedactURL(raw))
		}
		host = h
		var problem string
		if port, problem = parsePort(ps); problem != "" {
			return "", "", 0, fmt.Errorf("port %q %s", RedactURL(ps), problem)
		}
	}
	if err := checkHost(host); err != nil {
		return "", "", 0, err
	}
	return joinAddress(k, host, port), host, port, nil
}

// hostOnly reports whether raw is a host without a port: a name, an IPv4
// address, or an IPv6 address, bare or in brackets.
func hostOnly(raw string) bool {
	if strings.HasPrefix(raw, "[") && strings.HasSuffix(raw, "]") {
		return true
	}
	return !strings.Contains(raw, ":") || net.ParseIP(raw) != nil
}

func joinAddress(k *Kind, host string, port int) string {
	if k.Target == TargetHostPort {
		return net.JoinHostPort(host, strconv.Itoa(port))
	}
	return host
}

func checkHost(host string) error {
	if host == "" || strings.ContainsAny(host, "/?#@ \t") || !validHost(host) {
		return fmt.Errorf("%q is not a host name or IP address", RedactURL(host))
	}
	return nil
}

// validHost reports whether h makes a URL that reads back to the same host:
// a name with a colon must be an IPv6 address, and no control characters.
func validHost(h string) bool {
	u, err := url.Parse((&url.URL{Scheme: "http", Host: net.JoinHostPort(h, "80")}).String())
	return err == nil && u.Hostname() == h
}

// parsePort reads a port as Prometheus and people write it: 1-65535 in
// plain decimal digits. It returns what is wrong with s, or "". A sign,
// spaces, another base or leading zeros would let two spellings name one
// address ("127.0.0.1:+29299" is 127.0.0.1:29299 to a dialer).
func parsePort(s string) (int, string) {
	digits := s != "" && (s == "0" || s[0] != '0')
	for i := 0; digits && i < len(s); i++ {
		digits = s[i] >= '0' && s[i] <= '9'
	}
	if !digits {
		return 0, portNotDigits
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, portOutside
	}
	return n, ""
}

// What parsePort finds wrong.
const (
	portNotDigits = "is not 1-65535 in plain digits (no sign, spaces or leading zeros)"
	portOutside   = "is outside 1-65535"
)

// port reads a port field: a number or string of plain digits, 1-65535.
func (p *parser) port(n *yaml.Node, where string) int {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "%s: want a number, got %s", where, kindName(n))
		return 0
	}
	port, problem := parsePort(n.Value)
	switch problem {
	case portNotDigits:
		p.errorf(n, "%s: %q %s", where, RedactURL(n.Value), problem)
	case portOutside:
		p.errorf(n, "%s: %s %s", where, n.Value, problem)
	}
	return port
}

func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

// ProbeTarget resolves a one-off probe's target (a URL, host:port or a
// host, as the module's kind wants) with the config's modules and the same
// rules as an origin of the config. A URL without a scheme gets http://.
func (c *Config) ProbeTarget(raw, module string, timeout time.Duration) (Target, Module, error) {
	m, ok := c.Modules[module]
	if !ok {
		return Target{}, Module{}, fmt.Errorf("unknown module %q (known: %s)", module, moduleNames(c.Modules))
	}
	if raw == "" {
		return Target{}, Module{}, errors.New("target is empty")
	}
	var k *Kind
	if c.kinds != nil {
		k, _ = c.kinds.Lookup(m.Kind)
	}
	if k == nil {
		return Target{}, Module{}, fmt.Errorf("module %s: unknown probe kind %q", module, m.Kind)
	}
	t := Target{ID: "probe", Module: module, Interval: timeout, Timeout: timeout}
	if err := m.checkTimeout(timeout); err != nil {
		return Target{}, Module{}, fmt.Errorf("timeout %s is too short for module %s: %w", timeout, module, err)
	}
	if k.Target == TargetURL {
		in := raw
		if !strings.Contains(in, "://") {
			in = "http://" + in
		}
		u, err := urlTarget(in, k)
		if err != nil {
			return Target{}, Module{}, fmt.Errorf("target %q for module %s: url: %w", RedactURL(raw), module, err)
		}
		t.URL = u.String()
		return t, m, nil
	}
	addr, _, _, err := addressTarget(raw, k)
	if err != nil {
		return Target{}, Module{}, fmt.Errorf("target %q for module %s: address: %w", RedactURL(raw), module, err)
	}
	t.Address = addr
	return t, m, nil
}
