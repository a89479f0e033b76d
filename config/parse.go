package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
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

// The YAML node budget that MaxOrigins implies: the fullest valid origin
// (ten keys, 32 labels and a 32-label leaf selector) is 150 nodes.
const (
	nodesPerOrigin = 160
	nodesBase      = 100_000
)

// MaxNodes is the most YAML nodes (keys, values, lists and mappings) a
// config may have: 160 for each origin MaxOrigins allows, and 100,000 for
// everything else (modules, static leaves); 0, no limit, when MaxOrigins
// sets none. A config with more is refused before the YAML library builds
// its tree, which costs memory and time by the node.
func (l Limits) MaxNodes() int {
	if l.MaxOrigins <= 0 {
		return 0
	}
	return nodesBase + nodesPerOrigin*l.MaxOrigins
}

// Parser parses and validates configs with one set of probe kinds, within
// limits.
type Parser struct {
	// Kinds are the probe kinds modules may use. Required.
	Kinds *Kinds
	// Limits bound the config; the zero value sets none.
	Limits Limits
}

// Parse parses and validates a YAML or JSON config file; the original
// Oxcross JSON loads unchanged. It returns every problem it finds, each
// naming its line, entry and field. A config with any error is refused
// whole, as is one without origins.
//
// A config in the original's JSON shape (see originalShape) is read as the
// original read it where the rules would refuse it: keys in another case
// or unknown to it, and origins it skipped (a scheme other than http and
// https), each with a warning in Config.Warnings. A served config (a body
// of GET /config, see Snapshot) is read from its ServedKey.
func (ps Parser) Parse(data []byte) (*Config, error) {
	return ps.parse(data, false)
}

// ParseView parses a config as the configserver serves it to one leaf (its
// normalized JSON), which lists no origins when none is meant for that
// leaf; otherwise as Parse.
func (ps Parser) ParseView(data []byte) (*Config, error) {
	return ps.parse(data, true)
}

func (ps Parser) parse(data []byte, allowEmpty bool) (*Config, error) {
	if ps.Kinds == nil {
		return nil, errors.New("config parser without probe kinds")
	}
	if limit := ps.Limits.MaxNodes(); limit > 0 {
		n, err := countYAMLNodes(data, limit)
		if err != nil {
			return nil, fmt.Errorf("parsing config: %w", err)
		}
		if n > limit {
			return nil, fmt.Errorf("config has more than %d YAML nodes (keys, values, lists and mappings): the most that %d origins (--config.max-origins) can need, %d per origin and %d besides; refused before parsing",
				limit, ps.Limits.MaxOrigins, nodesPerOrigin, nodesBase)
		}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing config: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errors.New("config is empty: it needs at least one origin")
	}
	p := &parser{allowEmpty: allowEmpty, lim: ps.Limits, kinds: ps.Kinds}
	root := doc.Content[0]
	if inner := p.unwrapServed(root); inner != root {
		root = inner
	} else if originalShape(data, root) {
		p.original = &original{fields: make(map[*yaml.Node]map[string]*yaml.Node)}
	}
	cfg := p.config(root)
	if p.original != nil {
		p.finishOriginal(cfg)
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	cfg.Warnings = p.warnings
	return cfg, nil
}

type parser struct {
	errs       []error
	allowEmpty bool
	lim        Limits
	kinds      *Kinds
	// original is set for a config in the original's JSON shape, read
	// leniently (original.go), and warnings are what it let pass.
	original *original
	warnings []string
}

var topKeys = []string{"interval", "timeout", "modules", "leaves", "origins"}

func (p *parser) config(root *yaml.Node) *Config {
	f := p.fields(root, "", topKeys)
	if f == nil {
		return nil
	}
	cfg := &Config{Interval: DefaultInterval, kinds: p.kinds}
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
		if p.original != nil && p.skipOriginal(origins, i, n) {
			continue
		}
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
	if p.original != nil {
		return p.originalFields(n, where, known)
	}
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

func (p *parser) boolean(n *yaml.Node, where string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		p.errorf(n, "%s: want true or false, got %s", where, kindName(n))
		return false
	}
	return b
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
