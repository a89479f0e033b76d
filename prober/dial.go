package prober

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/oxcross/oxcross/discovery"
)

// dialContext dials address over TCP with the module's IP family
// preference: ip4 or ip6 first, the other family only when the preferred
// one has no address and fallback is allowed. Without a preference, Go's
// dialer tries every address (Happy Eyeballs).
func dialContext(ctx context.Context, m *discovery.Module, address string) (net.Conn, error) {
	d := &net.Dialer{KeepAlive: -1}
	switch m.IPFamily {
	case discovery.IP4, discovery.IP6:
		first, other := "tcp4", "tcp6"
		if m.IPFamily == discovery.IP6 {
			first, other = "tcp6", "tcp4"
		}
		c, err := d.DialContext(ctx, first, address)
		if err == nil || m.NoIPFallback || !noAddress(err) {
			return c, err
		}
		return d.DialContext(ctx, other, address)
	}
	return d.DialContext(ctx, "tcp", address)
}

// noAddress reports whether err says a name has no address of the asked
// family.
func noAddress(err error) bool {
	var dnsErr *net.DNSError
	var addrErr *net.AddrError
	return errors.As(err, &dnsErr) || errors.As(err, &addrErr)
}

// tlsConfig builds a client TLS config from a module's settings, reading
// its files.
func tlsConfig(s discovery.TLSSettings) (*tls.Config, error) {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         s.ServerName,
		InsecureSkipVerify: s.InsecureSkipVerify, //nolint:gosec // the user asked for it
	}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca_file %s holds no PEM certificate", s.CAFile)
		}
		c.RootCAs = pool
	}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading tls cert_file and key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
