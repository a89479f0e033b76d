package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/rawtcp"
)

// TCPSettings configure the tcp kind: a module's `tcp:`.
type TCPSettings struct {
	// TLS makes the probe do a TLS handshake after connecting.
	TLS       bool        `yaml:"tls,omitempty" json:"tls,omitempty"`
	TLSConfig TLSSettings `yaml:"tls_config,omitempty" json:"tls_config,omitzero"`
	// TrainSettings make a probe a train of connects.
	TrainSettings `yaml:",inline"`
}

// Validate reports every problem of the settings.
func (s *TCPSettings) Validate() error {
	var errs []error
	if err := s.TLSConfig.validate(); err != nil {
		errs = append(errs, fmt.Errorf("tls_config: %w", err))
	}
	if err := s.validate(); err != nil {
		errs = append(errs, err)
	}
	if s.TLS && s.packets() > 1 {
		errs = append(errs, fmt.Errorf("packets: %d with tls: a train measures TCP handshakes only; probe TLS with a module of one packet", s.packets()))
	}
	return errors.Join(errs...)
}

var _ config.TimeoutChecker = (*TCPSettings)(nil)

// CheckTimeout refuses a timeout the train does not fit in
// (config.TimeoutChecker).
func (s *TCPSettings) CheckTimeout(timeout time.Duration) error { return s.checkTimeout(timeout) }

var _ config.CredentialCarrier = (*TCPSettings)(nil)

// CarriesCredentials reports whether the settings present a TLS client
// certificate (config.CredentialCarrier).
func (s *TCPSettings) CarriesCredentials() bool { return s.TLSConfig.carriesCredentials() }

// tcpKind connects to host:port and, when the module asks, does a TLS
// handshake: it measures reachability of any TCP service. With packets > 1
// a probe is a train of connects, each packet one handshake (SYN out,
// SYN-ACK back).
type tcpKind struct {
	dialer *rawtcp.Dialer
}

// tcpPacketWait is how long a packet of a train (packets > 1) waits for
// its handshake: Linux resends an unanswered SYN after 1 s, and a handshake
// completed by a resent SYN would hide the loss of the first.
const tcpPacketWait = time.Second

// Spec: kind tcp, the built-in module tcp, host:port targets, settings
// under `tcp:`.
func (tcpKind) Spec() config.Kind {
	return config.Kind{
		Name: "tcp", Builtin: "tcp", Target: config.TargetHostPort,
		SettingsKey: "tcp", NewSettings: func() config.Settings { return &TCPSettings{} },
	}
}

func (k tcpKind) Probe(ctx context.Context, p *Params, r *Result) {
	s, _ := p.Module.Settings.(*TCPSettings)
	if s != nil && s.packets() > 1 {
		k.train(ctx, p, s.TrainSettings, r)
		return
	}
	start := time.Now()
	tt := &traceTimes{}
	r.Train = &Train{Sent: 1}
	conn, err := dialContext(tt.withTrace(ctx), k.dialer, p.Module, p.Target.Address)
	if err != nil {
		r.Duration = time.Since(start)
		tt.phases(&r.Phases, start, time.Time{}, false)
		r.fail(tt.classify(err), err)
		return
	}
	defer conn.Close()
	tt.phases(&r.Phases, start, time.Time{}, false)
	if d, ok := r.Phases.Get(PhaseConnect); ok {
		r.Train.Received, r.Train.RTTs = 1, []time.Duration{d}
	}
	if s != nil && s.TLS {
		tc, err := tlsConfig(s.TLSConfig)
		if err != nil {
			r.fail(ReasonError, err)
			return
		}
		if tc.ServerName == "" {
			tc.ServerName, _, _ = net.SplitHostPort(p.Target.Address)
		}
		tlsStart := time.Now()
		tconn := tls.Client(conn, tc)
		err = tconn.HandshakeContext(ctx)
		r.Phases.Set(PhaseTLS, time.Since(tlsStart))
		if err != nil {
			r.Duration = time.Since(start)
			reason := classify(err)
			if reason == ReasonError || (reason == ReasonConnect && closedConn(err)) {
				reason = ReasonTLS
			}
			r.fail(reason, fmt.Errorf("TLS handshake: %w", err))
			return
		}
		r.TLSExpiry = earliestExpiry(tconn.ConnectionState().PeerCertificates)
	}
	r.Duration = time.Since(start)
	r.Success = true
}

// train connects packets times to one address of the target, a packet
// every packet_interval, each connection closed once established: a
// packet's round trip is its handshake.
func (tcpKind) train(ctx context.Context, p *Params, ts TrainSettings, r *Result) {
	start := time.Now()
	host, port, err := net.SplitHostPort(p.Target.Address)
	if err != nil {
		r.fail(ReasonError, fmt.Errorf("address %q: %w", p.Target.Address, err))
		return
	}
	ip, err := resolveIP(ctx, p.Module, host)
	r.Phases.Set(PhaseResolve, time.Since(start))
	if err != nil {
		r.fail(ReasonDNS, err)
		return
	}
	addr := net.JoinHostPort(ip.String(), port)
	network := "tcp4"
	if ip.To4() == nil {
		network = "tcp6"
	}
	n, every := ts.packets(), ts.interval()
	train := &Train{}
	r.Train = train
	rtts := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	first := time.Now()
	tick := time.NewTimer(0)
	defer tick.Stop()
send:
	for i := range n {
		if i > 0 {
			tick.Reset(time.Until(first.Add(time.Duration(i) * every)))
			select {
			case <-tick.C:
			case <-ctx.Done():
				break send
			}
		}
		train.Sent++
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, tcpPacketWait)
			defer cancel()
			d := &net.Dialer{KeepAlive: -1}
			t0 := time.Now()
			c, err := d.DialContext(pctx, network, addr)
			if err != nil {
				errs[i] = err
				return
			}
			rtts[i] = max(time.Since(t0), time.Nanosecond)
			_ = c.Close()
		})
	}
	wg.Wait()
	var lastErr error
	for i, d := range rtts[:train.Sent] {
		if d != 0 {
			train.Received++
			train.RTTs = append(train.RTTs, d)
		} else if errs[i] != nil {
			lastErr = errs[i]
		}
	}
	median, _, _, ok := train.Stats()
	if !ok {
		if lastErr == nil {
			lastErr = ctx.Err()
		}
		r.fail(classify(lastErr), fmt.Errorf("no handshake with %s in %d connects: %w", addr, train.Sent, lastErr))
		return
	}
	r.Phases.Set(PhaseConnect, median)
	r.Duration = first.Sub(start) + median
	r.Success = true
}
