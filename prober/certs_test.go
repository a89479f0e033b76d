package prober

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testPKI is a certificate authority made up for one test, with PEM files
// in the test's temporary directory.
type testPKI struct {
	t      testing.TB
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	CAFile string
	// Server is a server certificate for 127.0.0.1, ::1 and localhost.
	Server tls.Certificate
	// ServerLeaf is Server's parsed leaf.
	ServerLeaf *x509.Certificate
	// ClientCertFile and ClientKeyFile are a client certificate's PEM
	// files.
	ClientCertFile, ClientKeyFile string
}

// loopbackNames are the names of the default server certificate.
var loopbackNames = []string{"127.0.0.1", "::1", "localhost"}

// newTestPKI makes a CA that expires in 30 days, a server certificate for
// the loopback names and a client certificate, both expiring in 10 days.
func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{t: t, dir: t.TempDir()}
	p.ca, p.caKey = p.issue("Oxcross test CA", nil, 30*24*time.Hour, true, nil, nil)
	p.CAFile = p.writePEM("ca.pem", "CERTIFICATE", p.ca.Raw)
	p.Server, p.ServerLeaf = p.ServerCert(10*24*time.Hour, loopbackNames...)
	client, clientKey := p.issue("oxcross-leaf", nil, 10*24*time.Hour, false, p.ca, p.caKey)
	p.ClientCertFile = p.writePEM("client.pem", "CERTIFICATE", client.Raw)
	der, err := x509.MarshalPKCS8PrivateKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ClientKeyFile = p.writePEM("client-key.pem", "PRIVATE KEY", der)
	return p
}

// ServerCert issues a server certificate for names (IP addresses or DNS
// names) valid for validFor.
func (p *testPKI) ServerCert(validFor time.Duration, names ...string) (tls.Certificate, *x509.Certificate) {
	leaf, key := p.issue(names[0], names, validFor, false, p.ca, p.caKey)
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, leaf
}

// CA returns the authority's certificate.
func (p *testPKI) CA() *x509.Certificate { return p.ca }

// Pool returns a pool holding the authority.
func (p *testPKI) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return pool
}

// issue makes a certificate signed by parent (self-signed without one).
func (p *testPKI) issue(cn string, names []string, validFor time.Duration, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	p.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		p.t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Oxcross tests"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		p.t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		p.t.Fatal(err)
	}
	return cert, key
}

func (p *testPKI) writePEM(name, typ string, der []byte) string {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}
