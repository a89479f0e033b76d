package config

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// jsonConfig and jsonOrigin are the normalized form the configserver serves
// and the leaf caches: every default applied, durations as Go durations.
type jsonConfig struct {
	Interval string                     `json:"interval"`
	Timeout  string                     `json:"timeout"`
	Modules  map[string]json.RawMessage `json:"modules,omitempty"`
	Leaves   []StaticLeaf               `json:"leaves,omitempty"`
	Origins  []jsonOrigin               `json:"origins"`
}

type jsonOrigin struct {
	Name     string            `json:"name"`
	URL      string            `json:"url,omitempty"`
	Address  string            `json:"address,omitempty"`
	Module   string            `json:"mode"`
	Interval string            `json:"interval"`
	Timeout  string            `json:"timeout"`
	Labels   map[string]string `json:"labels,omitempty"`
	Selector map[string]string `json:"leaf_selector,omitempty"`
}

// MarshalJSON encodes the config in its normalized form, which a Parser
// with the same kinds reads back to an equal Config.
func (c *Config) MarshalJSON() ([]byte, error) {
	jc := jsonConfig{Interval: c.Interval.String(), Timeout: c.Timeout.String(), Leaves: c.Leaves, Origins: make([]jsonOrigin, 0, len(c.Origins))}
	for name, m := range c.Modules {
		if c.kinds != nil && c.kinds.IsBuiltin(name) {
			continue // implied
		}
		body, err := c.marshalModule(m)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", name, err)
		}
		if jc.Modules == nil {
			jc.Modules = make(map[string]json.RawMessage)
		}
		jc.Modules[name] = body
	}
	for _, t := range c.Origins {
		jc.Origins = append(jc.Origins, jsonOrigin{Name: t.ID, URL: t.URL, Address: t.Address, Module: t.Module, Interval: t.Interval.String(), Timeout: t.Timeout.String(), Labels: t.Labels, Selector: t.LeafSelector})
	}
	return json.Marshal(jc)
}

// jsonModule is a module's keys that every kind has.
type jsonModule struct {
	Kind         string   `json:"kind"`
	IPFamily     IPFamily `json:"ip_family,omitempty"`
	NoIPFallback bool     `json:"no_ip_fallback,omitempty"`
	MaxBodyBytes int64    `json:"max_body_bytes,omitempty"`
	// AllowedTargets is the module's allowed_targets.
	AllowedTargets []string `json:"allowed_targets,omitempty"`
}

// marshalModule encodes a module as a config writes it: the common keys,
// then the kind's settings under its key unless they are all zero.
func (c *Config) marshalModule(m Module) ([]byte, error) {
	common, err := json.Marshal(jsonModule{m.Kind, m.IPFamily, m.NoIPFallback, m.MaxBodyBytes, m.AllowedTargets})
	if err != nil || isZeroSettings(m.Settings) {
		return common, err
	}
	var k *Kind
	if c.kinds != nil {
		k, _ = c.kinds.Lookup(m.Kind)
	}
	if k == nil || k.SettingsKey == "" {
		return nil, fmt.Errorf("kind %q takes no settings", m.Kind)
	}
	settings, err := json.Marshal(m.Settings)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Write(common[:len(common)-1])
	b.WriteString(`,"` + k.SettingsKey + `":`)
	b.Write(settings)
	b.WriteByte('}')
	return b.Bytes(), nil
}
