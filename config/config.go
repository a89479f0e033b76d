// Package config is Oxcross' target configuration, shared by the
// configserver that serves it and the leaves that probe with it: the schema
// (origins, modules, static leaves, labels), its parser and validation, the
// limits a config must keep to, the normalized JSON it is served and cached
// as, and --config.check's summary.
//
// The package knows no probe kind itself. A Parser is given the kinds (see
// Kind), which say what an origin of theirs targets and which settings their
// modules take; the prober package defines the kinds Oxcross ships.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Defaults and limits of the configuration.
const (
	// DefaultInterval is the probe interval when the config sets none.
	DefaultInterval = 10 * time.Second
	// DefaultTimeout caps the default timeout, which is the smaller of it
	// and the interval.
	DefaultTimeout = 10 * time.Second
	// DefaultModule is an origin's module when it names none: the original
	// Oxcross' default mode.
	DefaultModule = "advanced"
	// MaxNameLength bounds an origin_id, which becomes a label value.
	MaxNameLength = 128
	// MaxLabelValueLength bounds a label value from the config.
	MaxLabelValueLength = 256
	// MaxLabels bounds the number of labels of one origin or leaf.
	MaxLabels = 32
	// MaxLeafLabelBytes bounds the labels of one leaf, names and values
	// together, in bytes. A leaf's labels are kept by the registry and
	// repeated in /sd/leaves and on the status page for every leaf: the
	// budget bounds what each leaf costs there.
	MaxLeafLabelBytes = 1024
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
	// Warnings name, each with its line ("line 3: …"), what a config in
	// the original Oxcross' JSON shape had that the original ignored or
	// skipped, and so does the parser, where it would refuse anything
	// else. They describe the text parsed, not the config: the JSON it is
	// served as carries none.
	Warnings []string

	// kinds are the probe kinds the config was parsed with.
	kinds *Kinds
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
	// URL is exactly what the leaf requests, for kinds whose targets are
	// URLs (the oxcross kind adds its nonce).
	URL string
	// Address is host:port or a host, for kinds whose targets are.
	Address string
	// Module is the name of the origin's module (the config's `mode` or
	// `module` key).
	Module   string
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

// Snapshot is a config together with the normalized body it is served and
// cached as. A program swaps whole snapshots, never edits one.
type Snapshot struct {
	Config *Config
	// Body is Config as GET /config serves it and a leaf caches it: the
	// original Oxcross leaf's view of it (integer seconds; scheme,
	// hostname, port and mode of the origins it can probe) and, under
	// ServedKey, its normalized JSON (MarshalJSON).
	Body []byte
	// ETag identifies Body.
	ETag string
}

// NewSnapshot encodes cfg as it is served.
func NewSnapshot(cfg *Config) (*Snapshot, error) {
	body, err := cfg.served()
	if err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	return &Snapshot{Config: cfg, Body: body, ETag: ETag(body)}, nil
}

// ETag returns a strong entity tag for a served body.
func ETag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}
