package prober

import (
	"context"
	"log/slog"
	"time"

	"github.com/oxcross/oxcross/discovery"
)

// A Kind is a probe plugin: one way of probing a target. Adding a kind
// takes one new file implementing Kind and one line in NewRegistry (plus
// its settings, if it has any, in discovery.Module).
type Kind interface {
	// Probe probes p.Target once with the settings of p.Module and fills
	// r. ctx carries the probe's deadline; Probe must return by then.
	Probe(ctx context.Context, p *Params, r *Result)
}

// Params is what a Kind is given for one probe.
type Params struct {
	Target discovery.Target
	Module *discovery.Module
	// State is what the prober remembers of this origin between probes;
	// nil for one-off probes.
	State *originState
	// UserAgent is the leaf's User-Agent header.
	UserAgent string
}

// Registry maps kind names to plugins.
type Registry map[discovery.Kind]Kind

// NewRegistry returns the kinds Oxcross ships.
func NewRegistry(logger *slog.Logger) Registry {
	return Registry{
		discovery.KindHTTP:    newHTTPKind(false),
		discovery.KindOxcross: newHTTPKind(true),
		discovery.KindTCP:     tcpKind{},
		discovery.KindICMP:    newICMPKind(logger),
	}
}

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
