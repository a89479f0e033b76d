package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// pki is a test CA with a server certificate for 127.0.0.1 and localhost
// and a client certificate, written as PEM files to dir.
type pki struct {
	dir                             string
	caFile                          string
	serverCert, serverKey           string
	clientCert, clientKey           string
	pool                            *x509.CertPool
	client                          tls.Certificate
	otherClientCert, otherClientKey string // signed by another CA
	otherClient                     tls.Certificate
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	p := &pki{dir: dir, pool: x509.NewCertPool()}
	caKey, caCert, caDER := newCA(t, "Oxcross test CA")
	p.caFile = writePEM(t, dir, "ca.crt", "CERTIFICATE", caDER)
	p.pool.AddCert(caCert)

	serverTmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "oxcross test server"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	p.serverCert, p.serverKey, _ = issue(t, dir, "server", serverTmpl, caCert, caKey)
	clientTmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "oxcross-leaf"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	p.clientCert, p.clientKey, p.client = issue(t, dir, "client", clientTmpl, caCert, caKey)

	otherKey, otherCA, _ := newCA(t, "Someone else's CA")
	p.otherClientCert, p.otherClientKey, p.otherClient = issue(t, dir, "other-client", clientTmpl, otherCA, otherKey)
	return p
}

func newCA(t *testing.T, name string) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, der
}

// issue signs tmpl with the CA and writes <name>.crt and <name>.key.
func issue(t *testing.T, dir, name string, tmpl *x509.Certificate, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certFile, keyFile string, pair tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writePEM(t, dir, name+".crt", "CERTIFICATE", der)
	keyFile = writePEM(t, dir, name+".key", "PRIVATE KEY", keyDER)
	pair, err = tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pair
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// bcryptHash hashes a password for basic_auth_users. The lowest cost keeps
// the race-enabled servers quick; exporter-toolkit accepts any cost.
func bcryptHash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// httpsClient trusts the test CA and, when cert is given, presents it.
func (p *pki) httpsClient(t *testing.T, cert *tls.Certificate) *http.Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: p.pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// call does one request; user "" sends no credentials. A transport error
// is returned as code 0 and the error text.
func call(t *testing.T, c *http.Client, method, rawURL, user, password, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startPrometheus runs Debian's Prometheus until the test ends.
func startPrometheus(t *testing.T, args ...string) *proc {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		bin = "/usr/bin/prometheus"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("Prometheus is not installed (%v): run `bash scripts/install-deps.sh`, which installs Debian's prometheus package listed in scripts/packages.d/e2e.txt", err)
	}
	p := &proc{name: "prometheus", log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("--- log of prometheus %v:\n%s", args, p.log.String())
		}
	})
	return p
}

// promQuery runs an instant query against Prometheus' HTTP API and returns
// the series' labels and values.
func promQuery(t *testing.T, addr, query string) ([]map[string]string, []string, error) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, nil, err
	}
	if r.Status != "success" {
		return nil, nil, fmt.Errorf("query %s: %s %s", query, r.Status, r.Error)
	}
	var metrics []map[string]string
	var values []string
	for _, s := range r.Data.Result {
		metrics = append(metrics, s.Metric)
		v, _ := s.Value[1].(string)
		values = append(values, v)
	}
	return metrics, values, nil
}

// TestSecureFleet runs configserver, origin and leaf with TLS and basic auth
// (the configserver also wants a client certificate) and Debian's real
// Prometheus, which finds the leaf through /sd/leaves and scrapes it over
// TLS with basic auth.
func TestSecureFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Prometheus")
	}
	p := newPKI(t)
	dir := t.TempDir()
	const (
		leafID       = "leaf-secure"
		leafPassword = "leaf-secret"
		promPassword = "prometheus-secret"
	)
	promPasswordFile := filepath.Join(dir, "prometheus.password")
	writeFile(t, promPasswordFile, promPassword+"\n")
	leafPasswordFile := filepath.Join(dir, "leaf.password")
	writeFile(t, leafPasswordFile, leafPassword+"\n")

	// The configserver: TLS with client certificates from the CA, and basic
	// auth for the leaf and for Prometheus.
	csWeb := filepath.Join(dir, "configserver-web.yml")
	writeFile(t, csWeb, fmt.Sprintf(`tls_server_config:
  cert_file: %s
  key_file: %s
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: %s
basic_auth_users:
  leaf: %s
  prometheus: %s
`, p.serverCert, p.serverKey, p.caFile, bcryptHash(t, leafPassword), bcryptHash(t, promPassword)))
	// The leaf: TLS and basic auth for Prometheus.
	leafWeb := filepath.Join(dir, "leaf-web.yml")
	writeFile(t, leafWeb, fmt.Sprintf(`tls_server_config:
  cert_file: %s
  key_file: %s
basic_auth_users:
  prometheus: %s
`, p.serverCert, p.serverKey, bcryptHash(t, promPassword)))
	// The leaf's client to the configserver, in prometheus/common's format.
	leafClient := filepath.Join(dir, "leaf-http-client.yml")
	writeFile(t, leafClient, fmt.Sprintf(`tls_config:
  ca_file: %s
  cert_file: %s
  key_file: %s
basic_auth:
  username: leaf
  password_file: %s
`, p.caFile, p.clientCert, p.clientKey, leafPasswordFile))

	op, cp, lp, pp := freePort(t), freePort(t), freePort(t), freePort(t)
	originAddr := fmt.Sprintf("127.0.0.1:%d", op)
	csAddr := fmt.Sprintf("127.0.0.1:%d", cp)
	leafAddr := fmt.Sprintf("127.0.0.1:%d", lp)
	promAddr := fmt.Sprintf("127.0.0.1:%d", pp)
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, fmt.Sprintf(`interval: 500ms
timeout: 400ms
origins:
  - name: secure-adv
    url: http://%[1]s
    mode: advanced
  - name: test-only
    url: http://%[1]s/healthz
    mode: simple
    leaf_selector: {region: test}
  - name: eu-only
    url: http://%[1]s/healthz
    mode: simple
    leaf_selector: {region: eu}
`, originAddr))

	start(t, "oxcross-origin", nil, "--web.listen-address="+originAddr)
	start(t, "oxcross-configserver", nil, "--web.listen-address="+csAddr, "--web.config.file="+csWeb, "--config.file="+cfg, "--config.min-interval=100ms")
	leaf := start(t, "oxcross-leaf", nil, "--web.listen-address="+leafAddr, "--web.config.file="+leafWeb,
		"--leaf.id="+leafID, "--config.url=https://"+csAddr, "--config.http-client-file="+leafClient,
		"--leaf.label", "region=test", "--config.refresh-interval=1s", "--config.min-interval=100ms", "--config.cache-file="+filepath.Join(dir, "cache.json"))

	withCert := p.httpsClient(t, &p.client)
	noCert := p.httpsClient(t, nil)
	cs := "https://" + csAddr
	waitFor(t, 20*time.Second, "configserver and leaf up over TLS", func() string {
		if code, body := call(t, withCert, http.MethodGet, cs+"/-/healthy", "prometheus", promPassword, ""); code != http.StatusOK {
			return fmt.Sprintf("configserver /-/healthy: %d %s", code, body)
		}
		if code, body := call(t, noCert, http.MethodGet, "https://"+leafAddr+"/-/healthy", "prometheus", promPassword, ""); code != http.StatusOK {
			return fmt.Sprintf("leaf /-/healthy: %d %s", code, body)
		}
		return ""
	})

	// The leaf registers through its client file (CA, client certificate,
	// basic auth) and is listed with its label.
	var sd []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	waitFor(t, 15*time.Second, "leaf in /sd/leaves", func() string {
		code, body := call(t, withCert, http.MethodGet, cs+"/sd/leaves", "prometheus", promPassword, "")
		if code != http.StatusOK {
			return fmt.Sprintf("/sd/leaves: %d %s", code, body)
		}
		if err := json.Unmarshal([]byte(body), &sd); err != nil {
			return err.Error()
		}
		if len(sd) != 1 || len(sd[0].Targets) != 1 || sd[0].Targets[0] != leafAddr || sd[0].Labels["leaf_id"] != leafID || sd[0].Labels["region"] != "test" {
			return "/sd/leaves: " + body
		}
		return ""
	})

	// Prometheus: http_sd against the configserver (CA, client certificate,
	// basic auth), scraping the leaf over TLS with basic auth.
	promYML := filepath.Join(dir, "prometheus.yml")
	writeFile(t, promYML, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: oxcross-leaf
    scheme: https
    tls_config:
      ca_file: %[1]s
    basic_auth:
      username: prometheus
      password_file: %[2]s
    http_sd_configs:
      - url: https://%[3]s/sd/leaves
        refresh_interval: 1s
        tls_config:
          ca_file: %[1]s
          cert_file: %[4]s
          key_file: %[5]s
        basic_auth:
          username: prometheus
          password_file: %[2]s
`, p.caFile, promPasswordFile, csAddr, p.clientCert, p.clientKey))
	startPrometheus(t, "--config.file="+promYML, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn")

	// Meanwhile: what nobody without credentials gets.
	for _, c := range []struct {
		what   string
		client *http.Client
		url    string
		user   string
		pass   string
	}{
		{"leaf /metrics without credentials", noCert, "https://" + leafAddr + "/metrics", "", ""},
		{"leaf /metrics with a wrong password", noCert, "https://" + leafAddr + "/metrics", "prometheus", "wrong"},
		{"leaf /probe without credentials", noCert, "https://" + leafAddr + "/probe?module=simple&target=http://" + originAddr + "/healthz", "", ""},
		{"leaf /metrics as the configserver's user", noCert, "https://" + leafAddr + "/metrics", "leaf", leafPassword},
		{"configserver /config without credentials", withCert, cs + "/config", "", ""},
		{"configserver /config?leaf_id without credentials", withCert, cs + "/config?leaf_id=" + leafID, "", ""},
		{"configserver /sd/leaves without credentials", withCert, cs + "/sd/leaves", "", ""},
		{"configserver /metrics with a wrong password", withCert, cs + "/metrics", "leaf", "wrong"},
	} {
		code, body := call(t, c.client, http.MethodGet, c.url, c.user, c.pass, "")
		if code != http.StatusUnauthorized || strings.Contains(body, "oxcross_") || strings.Contains(body, "origins") {
			t.Errorf("%s: %d %q, want 401 and nothing else", c.what, code, body)
		}
	}
	if code, _ := call(t, noCert, http.MethodPut, cs+"/api/v1/leaves/sneaky", "", "", `{"address": ":9299"}`); code != 0 {
		t.Errorf("registration without a client certificate: status %d, want the TLS handshake refused", code)
	}
	if code, body := call(t, withCert, http.MethodPut, cs+"/api/v1/leaves/sneaky", "", "", `{"address": ":9299"}`); code != http.StatusUnauthorized {
		t.Errorf("registration without basic auth: %d %s, want 401", code, body)
	}
	// A client certificate from another CA is refused too.
	other := p.httpsClient(t, &p.otherClient)
	if code, body := call(t, other, http.MethodGet, cs+"/config", "leaf", leafPassword, ""); code != 0 {
		t.Errorf("/config with a client certificate of another CA: %d %q, want the TLS handshake refused", code, body)
	}
	// The right credentials get the leaf's view.
	if code, body := call(t, withCert, http.MethodGet, cs+"/config?leaf_id="+leafID, "leaf", leafPassword, ""); code != http.StatusOK || !strings.Contains(body, "test-only") || strings.Contains(body, "eu-only") {
		t.Errorf("/config?leaf_id=%s with credentials: %d %s, want test-only and not eu-only", leafID, code, body)
	}
	// Plain HTTP to the TLS ports gets nothing but Go's 400.
	for _, u := range []string{"http://" + leafAddr + "/metrics", "http://" + csAddr + "/config", "http://" + csAddr + "/sd/leaves"} {
		code, _, body := get(t, u)
		if code == http.StatusOK || strings.Contains(body, "oxcross_") || strings.Contains(body, "origins") || strings.Contains(body, "targets") {
			t.Errorf("plain HTTP %s: %d %q, want no content", u, code, body)
		}
	}
	// A registration for an address the request does not come from is
	// refused, credentials or not.
	code, body := call(t, withCert, http.MethodPut, cs+"/api/v1/leaves/impostor", "leaf", leafPassword, `{"address": "192.0.2.1:9299", "labels": {"region": "test"}}`)
	if code != http.StatusForbidden || !strings.Contains(body, "not the request's source") {
		t.Errorf("registration for 192.0.2.1:9299: %d %q, want 403 with the reason", code, body)
	}

	// Prometheus finds the leaf, scrapes it and stores its probe results.
	upQuery := fmt.Sprintf(`up{job="oxcross-leaf",leaf_id=%q,region="test"} == 1`, leafID)
	resultsQuery := fmt.Sprintf(`oxcross_leaf_probe_results{job="oxcross-leaf",leaf_id=%q,source_id=%q,result="true"}`, leafID, leafID)
	waitFor(t, 40*time.Second, "Prometheus scrapes the leaf through http_sd", func() string {
		up, _, err := promQuery(t, promAddr, upQuery)
		if err != nil {
			return err.Error()
		}
		if len(up) != 1 || up[0]["instance"] != leafAddr {
			return fmt.Sprintf("%s: %v", upQuery, up)
		}
		series, _, err := promQuery(t, promAddr, resultsQuery)
		if err != nil {
			return err.Error()
		}
		origins := map[string]bool{}
		for _, s := range series {
			origins[s["origin_id"]] = true
		}
		if !origins["secure-adv"] || !origins["test-only"] {
			return fmt.Sprintf("%s: %v", resultsQuery, series)
		}
		return ""
	})
	series, values, _ := promQuery(t, promAddr, resultsQuery)
	t.Logf("Prometheus stores %d successful-probe series of %s via http_sd: %v = %v", len(series), leafID, series, values)
	// The origin meant for other leaves is not probed by this one.
	if series, _, err := promQuery(t, promAddr, `oxcross_leaf_probe_results{origin_id="eu-only"}`); err != nil || len(series) != 0 {
		t.Errorf("eu-only probed by a region=test leaf: %v %v", series, err)
	}
	// The impostor never reached Prometheus.
	if series, _, err := promQuery(t, promAddr, `up{instance="192.0.2.1:9299"} or up{leaf_id="impostor"}`); err != nil || len(series) != 0 {
		t.Errorf("the refused registration became a target: %v %v", series, err)
	}

	// SIGTERM: the leaf deregisters and is gone from /sd/leaves at once.
	if err := leaf.stop(t); err != nil {
		t.Errorf("leaf exit after SIGTERM: %v", err)
	}
	code, body = call(t, withCert, http.MethodGet, cs+"/sd/leaves", "prometheus", promPassword, "")
	if code != http.StatusOK || body != "[]" {
		t.Errorf("/sd/leaves right after the leaf stopped: %d %s, want []", code, body)
	}
}
