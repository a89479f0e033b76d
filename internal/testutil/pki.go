package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Validity periods of what a CA makes unless told otherwise. A leaf
// expires before its CA, so that the earliest expiry of a chain is the
// leaf's.
const (
	CAValidity   = 30 * 24 * time.Hour
	LeafValidity = 10 * 24 * time.Hour
)

// LoopbackHosts returns the names of a server certificate issued without
// names: 127.0.0.1, ::1 and localhost.
func LoopbackHosts() []string { return []string{"127.0.0.1", "::1", "localhost"} }

// CA is a certificate authority made up for a test: an ECDSA P-256 key
// and a self-signed certificate, valid from an hour ago for CAValidity,
// written as PEM to CertFile in a temporary directory of the test. Its
// methods may be called from parallel subtests.
type CA struct {
	// Cert is the authority's certificate.
	Cert *x509.Certificate
	// CertFile is the PEM file of Cert.
	CertFile string
	// Pool holds only Cert.
	Pool *x509.CertPool

	key *ecdsa.PrivateKey
	dir string

	mu     sync.Mutex
	issued int // certificates issued, which number their files
}

// Cert is a certificate issued by a CA with its key, in memory and as PEM
// files.
type Cert struct {
	// TLS is the certificate and key for a tls.Config, with Leaf set.
	// Its chain holds the issuing CA too when CertOptions.Chain asked
	// for it.
	TLS tls.Certificate
	// Leaf is the parsed certificate.
	Leaf *x509.Certificate
	// CertFile and KeyFile are the PEM files of the certificate (and the
	// CA after it, with CertOptions.Chain) and of its PKCS #8 key.
	CertFile, KeyFile string
	// CAFile is the PEM file of the issuing CA.
	CAFile string
	// Pool holds only the issuing CA.
	Pool *x509.CertPool
}

// CertOptions says what certificate CA.Issue makes.
type CertOptions struct {
	// CommonName is the subject's common name; the first of Hosts when
	// empty.
	CommonName string
	// Hosts are the certificate's subject alternative names: IP
	// addresses become IP SANs, anything else DNS SANs.
	Hosts []string
	// NotBefore defaults to an hour ago, or an hour before NotAfter when
	// that is earlier. NotAfter defaults to LeafValidity after the later
	// of now and NotBefore. An expired certificate has a NotAfter in the
	// past, one not yet valid a NotBefore in the future.
	NotBefore, NotAfter time.Time
	// Usage is the extended key usage; server and client auth when nil.
	Usage []x509.ExtKeyUsage
	// Chain appends the CA's certificate to the chain in TLS and
	// CertFile, as a server sending its intermediate does.
	Chain bool
}

// NewCA makes a certificate authority with the common name name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("CA %q: generating a key: %v", name, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(t),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Oxcross tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("CA %q: creating its certificate: %v", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("CA %q: parsing its certificate: %v", name, err)
	}
	ca := &CA{Cert: cert, Pool: x509.NewCertPool(), key: key, dir: t.TempDir()}
	ca.Pool.AddCert(cert)
	ca.CertFile = ca.writePEM(t, "ca.crt", pemBlock("CERTIFICATE", der))
	return ca
}

// Server issues a server certificate for hosts (IP addresses or DNS
// names), LoopbackHosts when none is given, valid for LeafValidity. Its
// common name is the first host.
func (ca *CA) Server(t testing.TB, hosts ...string) *Cert {
	t.Helper()
	if len(hosts) == 0 {
		hosts = LoopbackHosts()
	}
	return ca.Issue(t, CertOptions{Hosts: hosts, Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
}

// Client issues a client certificate with the common name name, valid
// for LeafValidity.
func (ca *CA) Client(t testing.TB, name string) *Cert {
	t.Helper()
	return ca.Issue(t, CertOptions{CommonName: name, Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
}

// Issue issues a certificate as o says.
func (ca *CA) Issue(t testing.TB, o CertOptions) *Cert {
	t.Helper()
	cn := o.CommonName
	if cn == "" && len(o.Hosts) > 0 {
		cn = o.Hosts[0]
	}
	now := time.Now()
	notBefore, notAfter := o.NotBefore, o.NotAfter
	if notBefore.IsZero() {
		notBefore = now.Add(-time.Hour)
		if !notAfter.IsZero() && notAfter.Add(-time.Hour).Before(notBefore) {
			notBefore = notAfter.Add(-time.Hour)
		}
	}
	if notAfter.IsZero() {
		notAfter = now.Add(LeafValidity)
		if notBefore.After(now) {
			notAfter = notBefore.Add(LeafValidity)
		}
	}
	usage := o.Usage
	if usage == nil {
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(t),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Oxcross tests"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
	}
	for _, h := range o.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("certificate %q: generating a key: %v", cn, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("certificate %q: signing: %v", cn, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("certificate %q: parsing: %v", cn, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("certificate %q: encoding its key: %v", cn, err)
	}

	c := &Cert{
		TLS:    tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		Leaf:   leaf,
		CAFile: ca.CertFile,
		Pool:   ca.Pool,
	}
	certPEM := pemBlock("CERTIFICATE", der)
	if o.Chain {
		c.TLS.Certificate = append(c.TLS.Certificate, ca.Cert.Raw)
		certPEM = append(certPEM, pemBlock("CERTIFICATE", ca.Cert.Raw)...)
	}
	base := ca.fileName(cn)
	c.CertFile = ca.writePEM(t, base+".crt", certPEM)
	c.KeyFile = ca.writePEM(t, base+".key", pemBlock("PRIVATE KEY", keyDER))
	return c
}

// fileName returns a base name for the files of a certificate for cn,
// numbered so as not to have been used before.
func (ca *CA) fileName(cn string) string {
	base := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '_'
	}, cn)
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.issued++
	return fmt.Sprintf("%d-%s", ca.issued, base)
}

func (ca *CA) writePEM(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(ca.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("writing %s: %v", name, err)
	}
	return path
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func randomSerial(t testing.TB) *big.Int {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("generating a serial number: %v", err)
	}
	return serial
}
