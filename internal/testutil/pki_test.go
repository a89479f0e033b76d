package testutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// handshake runs a TLS handshake over loopback TCP between a server with
// srv and a client with cli (whose ServerName says what it verifies), and
// returns the client's and the server's errors.
func handshake(t *testing.T, srv, cli *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, srv)
		err = tc.Handshake()
		if err == nil {
			// TLS 1.3 clients send their certificate after the server's
			// Finished: read until the client's verdict arrives.
			_, err = tc.Read(make([]byte, 1))
		}
		done <- err
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp4", l.Addr().String(), cli)
	if err == nil {
		_, err = c.Write([]byte{'x'})
		_ = c.Close()
	}
	serverErr = <-done
	return err, serverErr
}

func TestCAServer(t *testing.T) {
	ca := NewCA(t, "Oxcross test CA")
	srv := ca.Server(t)
	for _, host := range LoopbackHosts() {
		cli := &tls.Config{RootCAs: ca.Pool, ServerName: host}
		if cerr, serr := handshake(t, &tls.Config{Certificates: []tls.Certificate{srv.TLS}}, cli); cerr != nil || serr != nil {
			t.Errorf("loopback certificate, server name %s: client %v, server %v", host, cerr, serr)
		}
	}

	// The files hold the same: the CA file as a pool, the pair loaded.
	caPEM, err := os.ReadFile(srv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("%s holds no certificate", srv.CAFile)
	}
	pair, err := tls.LoadX509KeyPair(srv.CertFile, srv.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if cerr, serr := handshake(t, &tls.Config{Certificates: []tls.Certificate{pair}}, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}); cerr != nil || serr != nil {
		t.Errorf("from the files: client %v, server %v", cerr, serr)
	}

	named := ca.Server(t, "oxcross.test")
	if named.Leaf.Subject.CommonName != "oxcross.test" || len(named.Leaf.IPAddresses) != 0 {
		t.Errorf("certificate for oxcross.test: CN %q, IP SANs %v", named.Leaf.Subject.CommonName, named.Leaf.IPAddresses)
	}
	var hostErr x509.HostnameError
	cerr, _ := handshake(t, &tls.Config{Certificates: []tls.Certificate{named.TLS}}, &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"})
	if !errors.As(cerr, &hostErr) {
		t.Errorf("certificate for another name: %v, want a hostname error", cerr)
	}
	if cerr, _ := handshake(t, &tls.Config{Certificates: []tls.Certificate{named.TLS}}, &tls.Config{RootCAs: ca.Pool, ServerName: "oxcross.test"}); cerr != nil {
		t.Errorf("certificate for oxcross.test, server name oxcross.test: %v", cerr)
	}

	other := NewCA(t, "Someone else's CA")
	var unknown x509.UnknownAuthorityError
	if cerr, _ := handshake(t, &tls.Config{Certificates: []tls.Certificate{srv.TLS}}, &tls.Config{RootCAs: other.Pool, ServerName: "127.0.0.1"}); !errors.As(cerr, &unknown) {
		t.Errorf("another authority: %v, want an unknown authority error", cerr)
	}
}

func TestCAValidity(t *testing.T) {
	ca := NewCA(t, "Oxcross test CA")
	now := time.Now()
	for _, tc := range []struct {
		name      string
		o         CertOptions
		wantValid bool
	}{
		{"default", CertOptions{Hosts: []string{"127.0.0.1"}}, true},
		{"expired", CertOptions{Hosts: []string{"127.0.0.1"}, NotAfter: now.Add(-time.Minute)}, false},
		{"expired long ago", CertOptions{Hosts: []string{"127.0.0.1"}, NotAfter: now.Add(-48 * time.Hour)}, false},
		{"not yet valid", CertOptions{Hosts: []string{"127.0.0.1"}, NotBefore: now.Add(time.Hour)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ca.Issue(t, tc.o)
			if !c.Leaf.NotBefore.Before(c.Leaf.NotAfter) {
				t.Fatalf("not before %v, not after %v", c.Leaf.NotBefore, c.Leaf.NotAfter)
			}
			cerr, _ := handshake(t, &tls.Config{Certificates: []tls.Certificate{c.TLS}}, &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"})
			var invalid x509.CertificateInvalidError
			switch {
			case tc.wantValid && cerr != nil:
				t.Errorf("handshake: %v", cerr)
			case !tc.wantValid && (!errors.As(cerr, &invalid) || invalid.Reason != x509.Expired):
				t.Errorf("handshake: %v, want an expired (or not yet valid) error", cerr)
			}
		})
	}
}

func TestCAChain(t *testing.T) {
	ca := NewCA(t, "Oxcross test CA")
	c := ca.Issue(t, CertOptions{Hosts: LoopbackHosts(), NotAfter: time.Now().Add(2 * CAValidity), Chain: true})
	if len(c.TLS.Certificate) != 2 || string(c.TLS.Certificate[1]) != string(ca.Cert.Raw) {
		t.Fatalf("chain of %d certificates, want the leaf and the CA", len(c.TLS.Certificate))
	}
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(pair.Certificate) != 2 {
		t.Errorf("%s holds %d certificates, want 2", c.CertFile, len(pair.Certificate))
	}
	var seen []*x509.Certificate
	cli := &tls.Config{RootCAs: ca.Pool, ServerName: "localhost", VerifyConnection: func(cs tls.ConnectionState) error {
		seen = cs.PeerCertificates
		return nil
	}}
	if cerr, serr := handshake(t, &tls.Config{Certificates: []tls.Certificate{c.TLS}}, cli); cerr != nil || serr != nil {
		t.Fatalf("client %v, server %v", cerr, serr)
	}
	if len(seen) != 2 || !seen[1].NotAfter.Before(seen[0].NotAfter) {
		t.Errorf("the client saw %d certificates; want 2, the CA expiring first", len(seen))
	}
}

func TestCAClient(t *testing.T) {
	ca := NewCA(t, "Oxcross test CA")
	srv := ca.Server(t)
	client := ca.Client(t, "oxcross-leaf")
	stranger := NewCA(t, "Someone else's CA").Client(t, "oxcross-leaf")
	var gotCN string
	srvCfg := &tls.Config{
		Certificates: []tls.Certificate{srv.TLS},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 {
				gotCN = cs.PeerCertificates[0].Subject.CommonName
			}
			return nil
		},
	}
	pair, err := tls.LoadX509KeyPair(client.CertFile, client.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if cerr, serr := handshake(t, srvCfg, &tls.Config{RootCAs: srv.Pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{pair}}); cerr != nil || serr != nil {
		t.Errorf("client certificate of the CA: client %v, server %v", cerr, serr)
	}
	if gotCN != "oxcross-leaf" {
		t.Errorf("the server saw client %q, want oxcross-leaf", gotCN)
	}
	if _, serr := handshake(t, srvCfg, &tls.Config{RootCAs: srv.Pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{stranger.TLS}}); serr == nil {
		t.Errorf("client certificate of another CA accepted")
	}
	if _, serr := handshake(t, srvCfg, &tls.Config{RootCAs: srv.Pool, ServerName: "127.0.0.1"}); serr == nil {
		t.Errorf("no client certificate accepted")
	}
	// A client certificate is no server certificate.
	if cerr, _ := handshake(t, &tls.Config{Certificates: []tls.Certificate{client.TLS}}, &tls.Config{RootCAs: ca.Pool, ServerName: "oxcross-leaf"}); cerr == nil || !strings.Contains(cerr.Error(), "certificate") {
		t.Errorf("client certificate used by a server: %v, want a certificate error", cerr)
	}
}
