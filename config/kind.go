package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"
)

// TargetShape is what an origin of a kind points at.
type TargetShape int

// The target shapes.
const (
	// TargetURL is an http or https URL: `url`, or `scheme`, `hostname`,
	// `port` and (unless the kind fixes it) `path`.
	TargetURL TargetShape = iota
	// TargetHostPort is host:port: `address`, or `hostname` and `port`.
	TargetHostPort
	// TargetHost is a host name or IP address: `address` or `hostname`.
	TargetHost
)

// Kind describes a probe kind to the config: the shape of its targets and
// the settings its modules take. The prober package defines the kinds
// Oxcross ships; each also probes.
type Kind struct {
	// Name is the module's `kind` value.
	Name string
	// Builtin, when set, names a module of this kind with default settings
	// that every config has (the original's modes simple and advanced, tcp,
	// icmp).
	Builtin string
	// Target is the shape of its targets.
	Target TargetShape
	// DefaultPath is the path of a URL target that gives none (TargetURL
	// only; "/" when empty).
	DefaultPath string
	// FixedPath refuses the `path` key and puts DefaultPath in a `url`
	// whose path is empty or "/".
	FixedPath bool
	// DefaultPort is the port of a host:port target that gives only a
	// host (TargetHostPort only); 0 requires a port.
	DefaultPort int
	// SettingsKey is the module key that holds the kind's own settings
	// ("http"); several kinds may share one. Empty when it has none.
	SettingsKey string
	// NewSettings returns the kind's default settings, a pointer to a
	// struct with yaml and json tags that the parser decodes the
	// SettingsKey mapping into, strictly. Required with SettingsKey.
	NewSettings func() Settings
	// DefaultInterval and DefaultTimeout, when set, are the interval and
	// timeout of this kind's origins that set none, in place of the
	// config's top-level ones (a kind whose data changes slowly, or whose
	// probe takes long). An origin's own interval and timeout win; the
	// timeout is cut to the interval.
	DefaultInterval time.Duration
	DefaultTimeout  time.Duration
}

// Settings are a kind's own module settings.
type Settings interface {
	// Validate reports what is wrong with the settings, every problem at
	// once (errors.Join), each naming its field ("method: …"); nil when
	// nothing is.
	Validate() error
}

// TimeoutChecker is implemented by Settings whose probes need a minimum
// time (a train of packets spaced in time): the parser checks every
// origin's timeout against its module's settings, and ProbeTarget the
// timeout of a one-off probe.
type TimeoutChecker interface {
	// CheckTimeout reports why a probe cannot fit in timeout; nil when it
	// can.
	CheckTimeout(timeout time.Duration) error
}

// CredentialCarrier is implemented by Settings that can hold secrets a
// probe sends to its target (an Authorization header, a client
// certificate). A module whose settings carry credentials probes, through
// the leaf's /probe, only its origins' targets and those its
// allowed_targets match, so that a caller cannot make the leaf hand the
// secrets to a host of the caller's choosing.
type CredentialCarrier interface {
	// CarriesCredentials reports whether the settings hold credentials.
	CarriesCredentials() bool
}

// Kinds is the set of probe kinds a config may use.
type Kinds struct {
	byName  map[string]*Kind
	names   []string
	builtin map[string]string // module name to kind name
	keys    map[string][]string
}

// NewKinds returns the set of kinds; names and built-in module names must
// be unique.
func NewKinds(kinds ...Kind) (*Kinds, error) {
	ks := &Kinds{byName: map[string]*Kind{}, builtin: map[string]string{}, keys: map[string][]string{}}
	for i := range kinds {
		k := kinds[i]
		switch {
		case k.Name == "":
			return nil, errors.New("probe kind without a name")
		case ks.byName[k.Name] != nil:
			return nil, fmt.Errorf("probe kind %q registered twice", k.Name)
		case k.SettingsKey != "" && k.NewSettings == nil:
			return nil, fmt.Errorf("probe kind %q: settings key %q without NewSettings", k.Name, k.SettingsKey)
		case reservedModuleKeys[k.SettingsKey]:
			return nil, fmt.Errorf("probe kind %q: settings key %q is a module key of every kind", k.Name, k.SettingsKey)
		}
		if k.Builtin != "" {
			if other, dup := ks.builtin[k.Builtin]; dup {
				return nil, fmt.Errorf("probe kinds %q and %q both define the built-in module %q", other, k.Name, k.Builtin)
			}
			ks.builtin[k.Builtin] = k.Name
		}
		if k.DefaultPath == "" {
			k.DefaultPath = "/"
		}
		ks.byName[k.Name] = &k
		ks.names = append(ks.names, k.Name)
		if k.SettingsKey != "" {
			ks.keys[k.SettingsKey] = append(ks.keys[k.SettingsKey], k.Name)
		}
	}
	return ks, nil
}

// Lookup returns the kind called name.
func (ks *Kinds) Lookup(name string) (*Kind, bool) {
	k, ok := ks.byName[name]
	return k, ok
}

// Names lists the kinds in registration order.
func (ks *Kinds) Names() []string { return ks.names }

// BuiltinModules returns the modules every config has, by name.
func (ks *Kinds) BuiltinModules() map[string]Module {
	out := make(map[string]Module, len(ks.builtin))
	for name, kind := range ks.builtin {
		out[name] = ks.byName[kind].defaultModule()
	}
	return out
}

// IsBuiltin reports whether name is a built-in module's.
func (ks *Kinds) IsBuiltin(name string) bool {
	_, ok := ks.builtin[name]
	return ok
}

// Base returns the config a program has before it loads one: no origins,
// and the built-in modules.
func (ks *Kinds) Base() *Config {
	return &Config{Interval: DefaultInterval, Timeout: DefaultTimeout, Modules: ks.BuiltinModules(), kinds: ks}
}

func (k *Kind) defaultModule() Module {
	m := Module{Kind: k.Name}
	if k.NewSettings != nil {
		m.Settings = k.NewSettings()
	}
	return m
}

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
	// Kind names the probe kind.
	Kind string
	// IPFamily prefers IPv4 or IPv6 when a name resolves to both.
	IPFamily IPFamily
	// NoIPFallback refuses the other family when the preferred one has no
	// address.
	NoIPFallback bool
	// MaxBodyBytes bounds the response body a probe reads; 0 means the
	// kind's default.
	MaxBodyBytes int64
	// AllowedTargets are regular expressions, each matched against the
	// whole of a /probe target as resolved (the URL, or host:port or a
	// host): a restricted module (see Restricted) probes through /probe
	// only its origins' targets and those matching one of them.
	AllowedTargets []string
	// Settings are the kind's own settings (nil for a kind without any).
	Settings Settings
}

// CarriesCredentials reports whether m's settings hold credentials (see
// CredentialCarrier).
func (m *Module) CarriesCredentials() bool {
	c, ok := m.Settings.(CredentialCarrier)
	return ok && c.CarriesCredentials()
}

// checkTimeout reports why m's probes cannot fit in timeout (see
// TimeoutChecker).
func (m Module) checkTimeout(timeout time.Duration) error {
	if c, ok := m.Settings.(TimeoutChecker); ok {
		return c.CheckTimeout(timeout)
	}
	return nil
}

// Restricted reports whether /probe may use m only for its origins'
// targets and those its AllowedTargets match: when it carries credentials
// or lists allowed targets.
func (m *Module) Restricted() bool {
	return len(m.AllowedTargets) > 0 || m.CarriesCredentials()
}

// AllowsTarget reports whether one of m's AllowedTargets matches the whole
// of target. The patterns were checked when the config was parsed; one
// that does not compile matches nothing.
func (m *Module) AllowsTarget(target string) bool {
	for _, p := range m.AllowedTargets {
		if re, err := compileAllowedTarget(p); err == nil && re.MatchString(target) {
			return true
		}
	}
	return false
}

// compileAllowedTarget compiles an allowed_targets pattern, anchored at
// both ends.
func compileAllowedTarget(pattern string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + pattern + `)$`)
}

// reservedModuleKeys are the keys every module has.
var reservedModuleKeys = map[string]bool{"kind": true, "ip_family": true, "no_ip_fallback": true, "max_body_bytes": true, "allowed_targets": true}

// moduleKeys lists the keys a module may have with kinds ks.
func (ks *Kinds) moduleKeys() []string {
	keys := []string{"kind", "ip_family", "no_ip_fallback", "max_body_bytes", "allowed_targets"}
	extra := make([]string, 0, len(ks.keys))
	for k := range ks.keys {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	return append(keys, extra...)
}

// kindsWithKey names the kinds whose settings are under key, for messages.
func (ks *Kinds) kindsWithKey(key string) string {
	names := ks.keys[key]
	if len(names) == 1 {
		return "kind " + names[0]
	}
	return "kinds " + strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// isZeroSettings reports whether s holds only defaults' zero values, so
// that the normalized JSON leaves it out.
func isZeroSettings(s Settings) bool {
	if s == nil {
		return true
	}
	v := reflect.ValueOf(s)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return true
		}
		v = v.Elem()
	}
	return v.IsZero()
}
