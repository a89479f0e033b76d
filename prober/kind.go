package prober

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/rawtcp"
)

// A Kind is a probe plugin: one way of probing a target. A kind is
// self-contained in one file: its settings type (validation and defaults),
// its target shape, described by Spec, and Probe. Adding one takes that
// file and one line in DefaultKinds; nothing else names a kind.
type Kind interface {
	// Spec describes the kind to the config: its name, built-in module,
	// target shape and settings.
	Spec() config.Kind
	// Probe probes p.Target once with the settings of p.Module and fills
	// r. ctx carries the probe's deadline; Probe must return by then. A
	// failure ends with a reason from the fixed set.
	Probe(ctx context.Context, p *Params, r *Result)
}

// StatefulKind is a Kind that remembers something of each origin between
// the scheduler's probes of it (the oxcross kind: the tokens it saw).
type StatefulKind interface {
	Kind
	// NewState returns the state of a newly scheduled origin; Params.State
	// carries it to every probe of that origin.
	NewState() any
}

// Params is what a Kind is given for one probe.
type Params struct {
	Target *config.Target
	Module *config.Module
	// State is the kind's state of this origin (see StatefulKind); nil for
	// one-off probes and kinds without state.
	State any
	// UserAgent is the leaf's User-Agent header.
	UserAgent string
}

// DefaultKinds returns the kinds Oxcross ships, one line each.
func DefaultKinds(logger *slog.Logger) *Kinds {
	ks, err := NewKinds(
		newHTTPKind(),
		newOxcrossKind(),
		tcpKind{dialer: &rawtcp.Dialer{}},
		newICMPKind(logger),
		dnsKind{},
		newPathKind(logger),
	)
	if err != nil {
		panic(fmt.Sprintf("the shipped probe kinds conflict: %v", err)) // TestNewKindsConflicts proves they do not
	}
	return ks
}

// Kinds is a set of probe kinds, for probing and, through Parser, for
// reading configs.
type Kinds struct {
	byName map[string]Kind
	config *config.Kinds
}

// NewKinds returns the set of kinds; their names and built-in module names
// must be unique.
func NewKinds(kinds ...Kind) (*Kinds, error) {
	specs := make([]config.Kind, len(kinds))
	byName := make(map[string]Kind, len(kinds))
	for i, k := range kinds {
		specs[i] = k.Spec()
		byName[specs[i].Name] = k
	}
	ck, err := config.NewKinds(specs...)
	if err != nil {
		return nil, err
	}
	return &Kinds{byName: byName, config: ck}, nil
}

// Parser returns a config parser that knows these kinds, within lim.
func (ks *Kinds) Parser(lim config.Limits) config.Parser {
	return config.Parser{Kinds: ks.config, Limits: lim}
}

// Base returns the config a leaf has before it loads one: no origins and
// the built-in modules.
func (ks *Kinds) Base() *config.Config { return ks.config.Base() }

// Phase is a part of a probe's duration.
type Phase int

// The phases of a probe, in order.
const (
	PhaseResolve    Phase = iota // DNS lookup
	PhaseConnect                 // TCP connect
	PhaseTLS                     // TLS handshake
	PhaseProcessing              // request written to first response byte
	PhaseTransfer                // first response byte to end of body
	numPhases
)

var phaseNames = [numPhases]string{"resolve", "connect", "tls", "processing", "transfer"}

// String is the phase's label value.
func (p Phase) String() string { return phaseNames[p] }

// Phases holds the duration of each phase a probe went through.
type Phases struct {
	d   [numPhases]time.Duration
	set [numPhases]bool
}

// Set records phase p's duration.
func (ph *Phases) Set(p Phase, d time.Duration) {
	ph.d[p], ph.set[p] = max(d, 0), true
}

// Get returns phase p's duration and whether the probe has that phase.
func (ph *Phases) Get(p Phase) (time.Duration, bool) { return ph.d[p], ph.set[p] }
