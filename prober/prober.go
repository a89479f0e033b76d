// Package prober is the leaf's measuring side: probe kinds (one file each:
// http.go, oxcross.go, tcp.go, icmp.go, registered in DefaultKinds), the
// scheduler that runs them for every origin across its interval, the
// leaf's probe metrics, the status page's history, and the
// blackbox-style /probe handler.
package prober

import (
	"context"
	"fmt"
	"time"

	"github.com/oxcross/oxcross/config"
)

// DefaultMaxBodyBytes bounds the response body a probe reads unless its
// module sets max_body_bytes.
const DefaultMaxBodyBytes = 1 << 20

// Prober runs single probes through its kinds. It is safe for concurrent
// use. Every probe opens fresh connections, so that connection and TLS
// handshake time are part of every measurement.
type Prober struct {
	kinds *Kinds
	agent string
}

// NewProber returns a Prober probing with kinds and sending userAgent.
func NewProber(userAgent string, kinds *Kinds) *Prober {
	return &Prober{kinds: kinds, agent: userAgent}
}

// newState returns the state a scheduled origin of module m keeps between
// probes, nil for kinds that keep none.
func (p *Prober) newState(m *config.Module) any {
	if k, ok := p.kinds.byName[m.Kind].(StatefulKind); ok {
		return k.NewState()
	}
	return nil
}

// Probe probes t once with module m within ctx, which should carry the
// timeout. state is the origin's state (see StatefulKind), nil for a
// one-off probe.
func (p *Prober) Probe(ctx context.Context, t *config.Target, m *config.Module, state any) Result {
	k, ok := p.kinds.byName[m.Kind]
	if !ok {
		return Result{Reason: ReasonError, Err: fmt.Errorf("no prober for kind %q", m.Kind)}
	}
	start := time.Now()
	var r Result
	k.Probe(ctx, &Params{Target: t, Module: m, State: state, UserAgent: p.agent}, &r)
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
