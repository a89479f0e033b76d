package prober

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/tracer"
)

// The path kind's defaults.
const (
	DefaultPathMethod       = tracer.UDP
	DefaultPathMaxHops      = 30
	DefaultPathProbesPerHop = 3
	DefaultPathHopTimeout   = time.Second
	DefaultPathUDPPort      = 33434
	// DefaultPathInterval and DefaultPathTimeout are a path origin's
	// interval and timeout unless it sets its own: paths change slowly,
	// and a trace through silent hops takes a while.
	DefaultPathInterval = 5 * time.Minute
	DefaultPathTimeout  = time.Minute
)

// PathSettings configure the path kind: a module's `path:`. Zero values
// mean the defaults.
type PathSettings struct {
	// Method is udp (default), tcp (SYNs to the origin's port) or icmp.
	Method string `yaml:"method,omitempty" json:"method,omitempty"`
	// MaxHops is the largest TTL probed (default 30).
	MaxHops int `yaml:"max_hops,omitempty" json:"max_hops,omitempty"`
	// FirstHop is the first TTL probed (default 1).
	FirstHop int `yaml:"first_hop,omitempty" json:"first_hop,omitempty"`
	// ProbesPerHop is how many probes each hop gets (default 3).
	ProbesPerHop int `yaml:"probes_per_hop,omitempty" json:"probes_per_hop,omitempty"`
	// HopTimeout is how long each probe waits for its answer (default 1s).
	HopTimeout string `yaml:"hop_timeout,omitempty" json:"hop_timeout,omitempty"`
	// UDPPort is the udp method's destination port (default 33434).
	UDPPort int `yaml:"udp_port,omitempty" json:"udp_port,omitempty"`
}

// Validate reports every problem of the settings.
func (s *PathSettings) Validate() error {
	var errs []error
	switch tracer.Method(s.Method) {
	case "", tracer.UDP, tracer.TCP, tracer.ICMP:
	default:
		errs = append(errs, fmt.Errorf("method: %q is not udp, tcp or icmp", s.Method))
	}
	if s.MaxHops < 0 || s.MaxHops > tracer.MaxHops {
		errs = append(errs, fmt.Errorf("max_hops: %d is not between 1 and %d", s.MaxHops, tracer.MaxHops))
	}
	if s.FirstHop < 0 || s.FirstHop > tracer.MaxHops {
		errs = append(errs, fmt.Errorf("first_hop: %d is not between 1 and %d", s.FirstHop, tracer.MaxHops))
	} else if o := s.options(); o.FirstHop > o.MaxHops {
		errs = append(errs, fmt.Errorf("first_hop: %d is beyond max_hops %d", o.FirstHop, o.MaxHops))
	}
	if s.ProbesPerHop < 0 || s.ProbesPerHop > tracer.MaxProbesPerHop {
		errs = append(errs, fmt.Errorf("probes_per_hop: %d is not between 1 and %d", s.ProbesPerHop, tracer.MaxProbesPerHop))
	}
	if s.HopTimeout != "" {
		d, err := config.ParseDuration(s.HopTimeout)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("hop_timeout: %w", err))
		case d <= 0 || d > time.Minute:
			errs = append(errs, fmt.Errorf("hop_timeout: %s is not more than 0 and at most 1m", d))
		}
	}
	if s.UDPPort < 0 || s.UDPPort > 65535 {
		errs = append(errs, fmt.Errorf("udp_port: %d is not between 1 and 65535", s.UDPPort))
	}
	return errors.Join(errs...)
}

// options are the tracer's options of the settings, defaults filled in
// (the destination left out).
func (s *PathSettings) options() tracer.Options {
	o := tracer.Options{
		Method: tracer.Method(s.Method), FirstHop: s.FirstHop, MaxHops: s.MaxHops,
		ProbesPerHop: s.ProbesPerHop, HopTimeout: DefaultPathHopTimeout,
	}
	if o.Method == "" {
		o.Method = DefaultPathMethod
	}
	if o.FirstHop == 0 {
		o.FirstHop = 1
	}
	if o.MaxHops == 0 {
		o.MaxHops = DefaultPathMaxHops
	}
	if o.ProbesPerHop == 0 {
		o.ProbesPerHop = DefaultPathProbesPerHop
	}
	if d, err := config.ParseDuration(s.HopTimeout); err == nil && d > 0 {
		o.HopTimeout = d
	}
	return o
}

// PathResult is what a path probe adds to its Result.
type PathResult struct {
	Trace *tracer.Trace
	// Changed is set on the trace that confirmed a new path: the second
	// in a row to follow it.
	Changed bool
	// Hops are the addresses of the path in use after this trace, one per
	// hop from the first (invalid for a hop that never answered).
	Hops []netip.Addr
}

// pathKind traces the route to an origin (see package tracer) and keeps,
// per origin, the path in use to count its changes.
type pathKind struct {
	logger *slog.Logger
}

func newPathKind(logger *slog.Logger) *pathKind { return &pathKind{logger: logger} }

// Spec: kind path, no built-in module, host:port targets (the tcp
// method's destination), settings under `path:`, probed every 5m.
func (*pathKind) Spec() config.Kind {
	return config.Kind{
		Name: "path", Target: config.TargetHostPort,
		SettingsKey: "path", NewSettings: func() config.Settings { return &PathSettings{} },
		DefaultInterval: DefaultPathInterval, DefaultTimeout: DefaultPathTimeout,
	}
}

// NewState returns an origin's path history: the path in use and a
// candidate that may replace it.
func (*pathKind) NewState() any { return &pathState{} }

func (k *pathKind) Probe(ctx context.Context, p *Params, r *Result) {
	start := time.Now()
	s, _ := p.Module.Settings.(*PathSettings)
	if s == nil {
		s = &PathSettings{}
	}
	o := s.options()
	host, portStr, err := net.SplitHostPort(p.Target.Address)
	if err != nil {
		r.fail(ReasonError, fmt.Errorf("address %q: %w", p.Target.Address, err))
		return
	}
	port, _ := strconv.Atoi(portStr)
	switch o.Method {
	case tracer.UDP:
		port = DefaultPathUDPPort
		if s.UDPPort != 0 {
			port = s.UDPPort
		}
	case tracer.ICMP:
		port = 0
	}
	ip, err := resolveIP(ctx, p.Module, host)
	r.Phases.Set(PhaseResolve, time.Since(start))
	if err != nil {
		r.fail(ReasonDNS, err)
		return
	}
	addr, _ := netip.AddrFromSlice(ip)
	o.Dst = netip.AddrPortFrom(addr.Unmap(), uint16(port))
	tr, err := tracer.Run(ctx, o)
	if tr == nil {
		r.fail(ReasonError, fmt.Errorf("tracing the path to %s: %w", o.Dst, err))
		return
	}
	pr := &PathResult{Trace: tr, Hops: make([]netip.Addr, len(tr.Hops))}
	for i, h := range tr.Hops {
		pr.Hops[i] = h.Addr
	}
	r.Path = pr
	if st, ok := p.State.(*pathState); ok {
		var old []netip.Addr
		pr.Hops, old, pr.Changed = st.observe(tr)
		if pr.Changed {
			k.logger.Info("path changed", "origin_id", p.Target.ID, "method", string(o.Method),
				"old", formatHops(old), "new", formatHops(pr.Hops))
		}
	}
	if tr.Reached {
		rtt := tr.Hops[len(tr.Hops)-1].MinRTT()
		r.Phases.Set(PhaseProcessing, rtt)
		r.Duration = time.Since(start) - tr.Duration + rtt
		r.Success = true
		return
	}
	r.Duration = time.Since(start)
	switch last := lastHop(tr); {
	case errors.Is(err, tracer.ErrNoICMPSocket):
		r.fail(ReasonICMP, err)
	case err != nil && ctx.Err() != nil:
		r.fail(ReasonTimeout, fmt.Errorf("tracing the path to %s: %w", o.Dst, err))
	case err != nil:
		r.fail(ReasonError, fmt.Errorf("tracing the path to %s: %w", o.Dst, err))
	case last != nil && last.Final != "":
		r.fail(ReasonConnect, fmt.Errorf("tracing the path to %s: hop %d (%s): %s", o.Dst, last.TTL, last.Addr, last.Final))
	default:
		r.fail(ReasonTimeout, fmt.Errorf("tracing the path to %s: no answer from it within %d hops", o.Dst, o.MaxHops))
	}
}

func lastHop(tr *tracer.Trace) *tracer.Hop {
	if len(tr.Hops) == 0 {
		return nil
	}
	return &tr.Hops[len(tr.Hops)-1]
}

// formatHops writes a path for a log line: the hops' addresses, "*" for a
// hop that never answered.
func formatHops(hops []netip.Addr) string {
	parts := make([]string, len(hops))
	for i, a := range hops {
		parts[i] = "*"
		if a.IsValid() {
			parts[i] = a.String()
		}
	}
	return strings.Join(parts, " ")
}

// pathState is one origin's path history. A new path counts as a change
// once two traces in a row followed it; hops that never answered match any
// address.
type pathState struct {
	mu        sync.Mutex
	current   []netip.Addr
	reached   bool
	candidate []netip.Addr
	candReach bool
}

// observe takes one trace and returns the path in use after it, the one
// before, and whether this trace confirmed a change. A trace without any
// answer tells nothing and leaves the state alone.
func (s *pathState) observe(tr *tracer.Trace) (cur, old []netip.Addr, changed bool) {
	hops := make([]netip.Addr, len(tr.Hops))
	for i, h := range tr.Hops {
		hops[i] = h.Addr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if tr.LastAnswered() == 0 {
		return s.current, s.current, false
	}
	switch {
	case s.current == nil:
		s.current, s.reached = hops, tr.Reached
	case samePath(s.current, s.reached, hops, tr.Reached):
		s.current, s.reached = fillHops(hops, s.current), tr.Reached || s.reached
		s.candidate = nil
	case s.candidate != nil && samePath(s.candidate, s.candReach, hops, tr.Reached):
		old = s.current
		s.current, s.reached = fillHops(hops, s.candidate), tr.Reached || s.candReach
		s.candidate = nil
		return s.current, old, true
	default:
		s.candidate, s.candReach = hops, tr.Reached
	}
	return s.current, s.current, false
}

// samePath reports whether two traces followed the same path: no hop
// answered from different addresses in the two, and, when both reached the
// destination, they did at the same hop.
func samePath(a []netip.Addr, aReached bool, b []netip.Addr, bReached bool) bool {
	if aReached && bReached && len(a) != len(b) {
		return false
	}
	for i := range min(len(a), len(b)) {
		if a[i].IsValid() && b[i].IsValid() && a[i] != b[i] {
			return false
		}
	}
	return true
}

// fillHops returns hops with its silent hops filled from prev.
func fillHops(hops, prev []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, len(hops))
	for i, a := range hops {
		if !a.IsValid() && i < len(prev) {
			a = prev[i]
		}
		out[i] = a
	}
	return out
}
