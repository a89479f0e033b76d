package config

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

var moduleNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_\-]{0,63}$`)

// maxBodyBytesLimit bounds a module's max_body_bytes.
const maxBodyBytesLimit = 64 << 20

// modules parses the config's modules: a mapping of names to settings.
func (p *parser) modules(n *yaml.Node) map[string]Module {
	out := p.kinds.BuiltinModules()
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
		if p.kinds.IsBuiltin(name) {
			p.errorf(k, "%s: %q is a built-in module and cannot be redefined", where, name)
			continue
		}
		if _, dup := out[name]; dup {
			p.errorf(k, "%s: defined twice", where)
			continue
		}
		if m, ok := p.module(v, where); ok {
			out[name] = m
		}
	}
	return out
}

func (p *parser) module(n *yaml.Node, where string) (Module, bool) {
	before := len(p.errs)
	f := p.fields(n, where, p.kinds.moduleKeys())
	if f == nil {
		return Module{}, false
	}
	var m Module
	kn := f["kind"]
	if kn == nil {
		p.errorf(n, "%s: kind: missing (one of %s)", where, strings.Join(p.kinds.Names(), ", "))
		return Module{}, false
	}
	m.Kind = p.str(kn, where+": kind")
	kind, ok := p.kinds.Lookup(m.Kind)
	if !ok {
		if m.Kind != "" {
			p.errorf(kn, "%s: kind: %q is not one of %s", where, m.Kind, strings.Join(p.kinds.Names(), ", "))
		}
		return Module{}, false
	}
	if v := f["ip_family"]; v != nil {
		m.IPFamily = IPFamily(p.str(v, where+": ip_family"))
		switch m.IPFamily {
		case IPAny, IP4, IP6:
		default:
			p.errorf(v, "%s: ip_family: %q is not ip4 or ip6", where, m.IPFamily)
		}
	}
	if v := f["no_ip_fallback"]; v != nil {
		m.NoIPFallback = p.boolean(v, where+": no_ip_fallback")
	}
	if v := f["max_body_bytes"]; v != nil {
		m.MaxBodyBytes = int64(p.integer(v, where+": max_body_bytes"))
		if m.MaxBodyBytes < 0 || m.MaxBodyBytes > maxBodyBytesLimit {
			p.errorf(v, "%s: max_body_bytes: %d is not between 0 and 64 MiB", where, m.MaxBodyBytes)
		}
	}
	if v := f["allowed_targets"]; v != nil {
		m.AllowedTargets = p.allowedTargets(v, where+": allowed_targets")
	}
	if kind.NewSettings != nil {
		m.Settings = kind.NewSettings()
		if f[kind.SettingsKey] == nil {
			// The defaults must do on their own: a kind may require a
			// setting (the dns kind's query_name).
			p.validate(n, where+": "+kind.SettingsKey, m.Settings)
		}
	}
	for key, v := range f {
		if reservedModuleKeys[key] {
			continue
		}
		if key != kind.SettingsKey {
			p.errorf(v, "%s: %s: only for %s", where, key, p.kinds.kindsWithKey(key))
			continue
		}
		p.settings(v, where+": "+key, m.Settings)
	}
	return m, len(p.errs) == before
}

// maxAllowedTargets bounds a module's allowed_targets.
const maxAllowedTargets = 100

// allowedTargets reads a module's allowed_targets, a list of regular
// expressions, and checks that each compiles; an empty list is none.
func (p *parser) allowedTargets(n *yaml.Node, where string) []string {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: want a list of regular expressions, got %s", where, kindName(n))
		return nil
	}
	if len(n.Content) > maxAllowedTargets {
		p.errorf(n, "%s: %d patterns, at most %d", where, len(n.Content), maxAllowedTargets)
		return nil
	}
	var out []string
	for i, e := range n.Content {
		at := fmt.Sprintf("%s[%d]", where, i)
		s := p.str(e, at)
		if e.Kind != yaml.ScalarNode || e.Tag == "!!null" {
			continue
		}
		if s == "" {
			p.errorf(e, "%s: empty pattern", at)
			continue
		}
		if _, err := compileAllowedTarget(s); err != nil {
			p.errorf(e, "%s: %v", at, err)
			continue
		}
		out = append(out, s)
	}
	return out
}

// settings decodes a kind's settings strictly into s and validates them.
func (p *parser) settings(n *yaml.Node, where string, s Settings) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: want a mapping, got %s", where, kindName(n))
		return
	}
	// Decode strictly: re-encode the node and decode it with unknown
	// fields refused, reporting lines of the original file.
	var buf bytes.Buffer
	if err := yaml.NewEncoder(&buf).Encode(n); err != nil {
		p.errorf(n, "%s: %v", where, err)
		return
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(s); err != nil {
		line, msg := relineYAMLError(err, n.Line)
		p.errs = append(p.errs, fmt.Errorf("line %d: %s: %s", line, where, msg))
		return
	}
	dropEmpty(reflect.ValueOf(s))
	p.validate(n, where, s)
}

// validate reports each of s's problems at n.
func (p *parser) validate(n *yaml.Node, where string, s Settings) {
	err := s.Validate()
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		p.errorf(n, "%s: %v", where, e)
	}
}

// dropEmpty sets the empty maps and slices of decoded settings to nil: an
// empty list or mapping (`headers: {}`) is none, as the normalized JSON
// (omitempty) writes it, so that a config reads back from its JSON equal.
func dropEmpty(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			dropEmpty(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				dropEmpty(f)
			}
		}
	case reflect.Map:
		if v.Len() == 0 && !v.IsNil() && v.CanSet() {
			v.SetZero()
		}
	case reflect.Slice:
		if v.Len() == 0 && !v.IsNil() && v.CanSet() {
			v.SetZero()
		}
		for i := range v.Len() {
			dropEmpty(v.Index(i))
		}
	}
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
