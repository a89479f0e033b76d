package prober

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/oxcross/oxcross/config"
)

// TCPSettings configure the tcp kind: a module's `tcp:`.
type TCPSettings struct {
	// TLS makes the probe do a TLS handshake after connecting.
	TLS       bool        `yaml:"tls,omitempty" json:"tls,omitempty"`
	TLSConfig TLSSettings `yaml:"tls_config,omitempty" json:"tls_config,omitzero"`
}

// Validate reports every problem of the settings.
func (s *TCPSettings) Validate() error {
	if err := s.TLSConfig.validate(); err != nil {
		return fmt.Errorf("tls_config: %w", err)
	}
	return nil
}

var _ config.CredentialCarrier = (*TCPSettings)(nil)

// CarriesCredentials reports whether the settings present a TLS client
// certificate (config.CredentialCarrier).
func (s *TCPSettings) CarriesCredentials() bool { return s.TLSConfig.carriesCredentials() }

// tcpKind connects to host:port and, when the module asks, does a TLS
// handshake: it measures reachability of any TCP service.
type tcpKind struct{}

// Spec: kind tcp, the built-in module tcp, host:port targets, settings
// under `tcp:`.
func (tcpKind) Spec() config.Kind {
	return config.Kind{
		Name: "tcp", Builtin: "tcp", Target: config.TargetHostPort,
		SettingsKey: "tcp", NewSettings: func() config.Settings { return &TCPSettings{} },
	}
}

func (tcpKind) Probe(ctx context.Context, p *Params, r *Result) {
	start := time.Now()
	tt := &traceTimes{}
	conn, err := dialContext(tt.withTrace(ctx), p.Module, p.Target.Address)
	if err != nil {
		r.Duration = time.Since(start)
		tt.phases(&r.Phases, start, time.Time{}, false)
		r.fail(tt.classify(err), err)
		return
	}
	defer conn.Close()
	tt.phases(&r.Phases, start, time.Time{}, false)
	if s, _ := p.Module.Settings.(*TCPSettings); s != nil && s.TLS {
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
