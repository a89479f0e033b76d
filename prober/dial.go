package prober

import (
	"context"
	"crypto/fips140"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/rawtcp"
)

// dialContext dials address over TCP with d and the module's IP family
// preference: ip4 or ip6 first, the other family only when the preferred
// one has no address and fallback is allowed. Without a preference, the
// dialer tries every address (Happy Eyeballs).
func dialContext(ctx context.Context, d *rawtcp.Dialer, m *config.Module, address string) (net.Conn, error) {
	switch m.IPFamily {
	case config.IP4, config.IP6:
		first, other := "tcp4", "tcp6"
		if m.IPFamily == config.IP6 {
			first, other = "tcp6", "tcp4"
		}
		c, err := d.DialContext(ctx, first, address)
		if err == nil || !noAddress(err) {
			return c, err
		}
		if m.NoIPFallback {
			return nil, noFamilyError(first, address, m.IPFamily, err)
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

// noFamilyError reports, as a DNS error, that the name in address has no
// address of family. For a name whose addresses (in /etc/hosts, say) are
// all of the other family, the net package returns a *net.AddrError, which
// would read as a connect failure, where a name found only in DNS gives a
// *net.DNSError: for the probe both are a resolution failure.
func noFamilyError(network, address string, family config.IPFamily, err error) error {
	var addrErr *net.AddrError
	host, _, splitErr := net.SplitHostPort(address)
	if !errors.As(err, &addrErr) || splitErr != nil || net.ParseIP(host) != nil {
		return err
	}
	return &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{
		Err: fmt.Sprintf("no %s address (%s)", family, addrErr.Err), Name: host, IsNotFound: true,
	}}
}

// TLSSettings are a probe's TLS client settings (the http kind's `tls`,
// the tcp kind's `tls_config`). Files are read by the leaf that probes.
type TLSSettings struct {
	CAFile             string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	ServerName         string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
	CertFile           string `yaml:"cert_file,omitempty" json:"cert_file,omitempty"`
	KeyFile            string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify,omitempty" json:"insecure_skip_verify,omitempty"`
	// KeyExchange is hybrid (the default: Go's own preferences, the
	// post-quantum X25519MLKEM768 first) or classical (X25519 and the NIST
	// curves only, as Go before 1.24 and blackbox_exporter builds of that
	// time offer).
	KeyExchange string `yaml:"key_exchange,omitempty" json:"key_exchange,omitempty"`
}

// Key exchanges of TLSSettings.KeyExchange.
const (
	KeyExchangeHybrid    = "hybrid"
	KeyExchangeClassical = "classical"
)

// carriesCredentials reports whether the settings present a client
// certificate.
func (s TLSSettings) carriesCredentials() bool { return s.CertFile != "" || s.KeyFile != "" }

func (s TLSSettings) validate() error {
	if (s.CertFile == "") != (s.KeyFile == "") {
		return errors.New("cert_file and key_file go together")
	}
	switch s.KeyExchange {
	case "", KeyExchangeHybrid, KeyExchangeClassical:
	default:
		return fmt.Errorf("key_exchange: %q is neither %s nor %s", s.KeyExchange, KeyExchangeHybrid, KeyExchangeClassical)
	}
	return nil
}

// classicalCurves are the key exchanges of key_exchange: classical,
// X25519 first. Go's default (hybrid) adds the post-quantum
// X25519MLKEM768, which costs an ML-KEM key generation and
// decapsulation, a second X25519 key share and 1.2 KB of ClientHello on
// every handshake: about a third of a probe's handshake CPU. A module
// whose probes carry no secret may choose classical to save it; hybrid
// stays the default, since a probe may send credentials.
var classicalCurves = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}

// tlsConfig builds a client TLS config from a module's settings, reading
// its files.
func tlsConfig(s TLSSettings) (*tls.Config, error) {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         s.ServerName,
		InsecureSkipVerify: s.InsecureSkipVerify, //nolint:gosec // the user asked for it
	}
	if s.KeyExchange == KeyExchangeClassical {
		c.CurvePreferences = classicalCurves
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
	var cert *tls.Certificate
	if s.CertFile != "" {
		kp, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading tls cert_file and key_file: %w", err)
		}
		cert = &kp
	}
	// Choose the client certificate as crypto/tls does with Certificates,
	// and note in the probe's trace that the server asked for one.
	c.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		clientCertRequested(cri.Context())
		if cert != nil && cri.SupportsCertificate(cert) == nil {
			return cert, nil
		}
		return &tls.Certificate{}, nil
	}
	return c, nil
}

// certVerifier verifies a server's certificates as crypto/tls does
// (x509 Verify against the roots, with the server name), and remembers
// the chains it verified, so that a probe that gets the same
// certificates for the same name again, while every certificate of the
// chain is still valid, costs a hash rather than the chain's signature
// checks. The handshake itself stays whole: the server still proves it
// holds the certificate's key on every probe (crypto/tls checks its
// signature whatever the settings), and a certificate that changes, or
// whose validity ends, is verified again.
type certVerifier struct {
	roots *x509.CertPool
	mu    sync.Mutex
	ok    map[certKey]validity
}

// certKey names a server's certificates (the SHA-256 of each, in order)
// and the name they were verified for.
type certKey struct {
	sum  [sha256.Size]byte
	name string
}

// validity is when every certificate of a verified chain is valid.
type validity struct{ notBefore, notAfter time.Time }

// maxVerifiedChains bounds a verifier's memory; it is emptied when full.
const maxVerifiedChains = 1024

func newCertVerifier(roots *x509.CertPool) *certVerifier {
	return &certVerifier{roots: roots, ok: make(map[certKey]validity)}
}

// verify returns what crypto/tls would for certs (the server's, leaf
// first) and name: nil, or a *tls.CertificateVerificationError.
func (v *certVerifier) verify(certs []*x509.Certificate, name string) error {
	if len(certs) == 0 {
		return &tls.CertificateVerificationError{Err: errors.New("tls: server sent no certificate")}
	}
	h := sha256.New()
	for _, c := range certs {
		s := sha256.Sum256(c.Raw)
		h.Write(s[:])
	}
	key := certKey{name: name}
	h.Sum(key.sum[:0])
	now := time.Now()
	v.mu.Lock()
	w, hit := v.ok[key]
	v.mu.Unlock()
	if hit && !now.Before(w.notBefore) && !now.After(w.notAfter) {
		return nil
	}
	opts := x509.VerifyOptions{Roots: v.roots, CurrentTime: now, DNSName: name, Intermediates: x509.NewCertPool()}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	chains, err := certs[0].Verify(opts)
	if err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
	}
	w = validity{notBefore: chains[0][0].NotBefore, notAfter: chains[0][0].NotAfter}
	for _, c := range chains[0][1:] {
		if c.NotBefore.After(w.notBefore) {
			w.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(w.notAfter) {
			w.notAfter = c.NotAfter
		}
	}
	v.mu.Lock()
	if len(v.ok) >= maxVerifiedChains {
		clear(v.ok)
	}
	v.ok[key] = w
	v.mu.Unlock()
	return nil
}

// client returns a TLS client on conn configured as tc, for the server
// name host when tc has none, offering the ALPN protocols protos, whose
// certificates v verifies; with v nil, tc's own settings verify (or do
// not).
func (v *certVerifier) client(conn net.Conn, tc *tls.Config, host string, protos []string) *tls.Conn {
	cfg := tc.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	cfg.NextProtos = protos
	if v != nil {
		name := cfg.ServerName
		cfg.InsecureSkipVerify = true //nolint:gosec // VerifyConnection verifies, as crypto/tls would
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return v.verify(cs.PeerCertificates, name) }
	}
	return tls.Client(conn, cfg)
}

// verifierFor returns a verifier for tc, or nil when tc does not verify
// or in FIPS 140 mode (whose chain rules crypto/tls applies itself).
func verifierFor(tc *tls.Config) *certVerifier {
	if tc.InsecureSkipVerify || fips140.Enabled() {
		return nil
	}
	return newCertVerifier(tc.RootCAs)
}
