// Package prober is the leaf's measuring side: probe plugins (kinds) for
// HTTP, the oxcross protocol, TCP and ICMP, the scheduler that runs them for
// every origin across its interval, the leaf's probe metrics, and the
// blackbox-style /probe handler.
package prober

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/oxcross/oxcross/discovery"
)

// DefaultMaxBodyBytes bounds the response body a probe reads unless its
// module sets max_body_bytes.
const DefaultMaxBodyBytes = 1 << 20

// Prober runs single probes through the registry's kinds. It is safe for
// concurrent use.
type Prober struct {
	kinds    Registry
	agent    string
	builtins map[string]discovery.Module
}

// NewProber returns a Prober with the kinds Oxcross ships. Every probe
// opens fresh connections, so that connection and TLS handshake time are
// part of every measurement.
func NewProber(userAgent string) *Prober {
	return NewProberWithRegistry(userAgent, NewRegistry(slog.New(slog.DiscardHandler)))
}

// NewProberWithRegistry returns a Prober using kinds.
func NewProberWithRegistry(userAgent string, kinds Registry) *Prober {
	return &Prober{kinds: kinds, agent: userAgent, builtins: discovery.BuiltinModules()}
}

// Probe probes t once with its built-in module (the mode simple or
// advanced, tcp or icmp) within ctx, which should carry the timeout.
func (p *Prober) Probe(ctx context.Context, t discovery.Target, st *originState) Result {
	m, ok := p.builtins[string(t.Mode)]
	if !ok {
		return Result{Reason: ReasonError, Err: fmt.Errorf("module %q is not a built-in module", t.Mode)}
	}
	return p.ProbeModule(ctx, t, &m, st)
}

// ProbeModule probes t once with module m within ctx.
func (p *Prober) ProbeModule(ctx context.Context, t discovery.Target, m *discovery.Module, st *originState) Result {
	k, ok := p.kinds[m.Kind]
	if !ok {
		return Result{Reason: ReasonError, Err: fmt.Errorf("no prober for kind %q", m.Kind)}
	}
	start := time.Now()
	var r Result
	k.Probe(ctx, &Params{Target: t, Module: m, State: st, UserAgent: p.agent}, &r)
	if r.Duration == 0 {
		r.Duration = time.Since(start)
	}
	if r.Success {
		r.Reason = ReasonOK
	} else if r.Reason == "" || r.Reason == ReasonOK {
		r.Reason = ReasonError
	}
	if !r.Success && ctx.Err() != nil && r.Reason != ReasonHTTPStatus {
		// Whatever broke, it broke because the time ran out.
		r.Reason = ReasonTimeout
	}
	return r
}
