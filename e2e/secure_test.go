package e2e

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/oxcross/oxcross/internal/testutil"
)

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

// httpsClient trusts ca and, when cert is given, presents it.
func httpsClient(t *testing.T, ca *testutil.CA, cert *testutil.Cert) *http.Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: ca.Pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{cert.TLS}
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	// A guard against a hang, not a measure: a request from a user the
	// server does not know costs exporter-toolkit a bcrypt of cost 10
	// (its hash for unknown users, against user enumeration), which in
	// a -race binary on a busy machine took over 10 s.
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// basicAuth is the header testutil.Do sends for basic auth as user with
// password; none when user is "".
func basicAuth(user, password string) []string {
	if user == "" {
		return nil
	}
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}
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
	p := &proc{name: "prometheus", log: &testutil.SyncBuffer{}, done: make(chan struct{})}
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
	resp, err := testutil.TryDo(nil, http.MethodGet, "http://"+addr+"/api/v1/query?query="+url.QueryEscape(query), "")
	if err != nil {
		return nil, nil, err
	}
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
	if err := json.Unmarshal([]byte(resp.Body), &r); err != nil {
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
	ca := testutil.NewCA(t, "Oxcross test CA")
	serverCert := ca.Server(t) // 127.0.0.1, ::1 and localhost
	leafCert := ca.Client(t, "oxcross-leaf")
	otherCert := testutil.NewCA(t, "Someone else's CA").Client(t, "oxcross-leaf")
	dir := t.TempDir()
	const (
		leafID       = "leaf-secure"
		leafPassword = "leaf-secret"
		promPassword = "prometheus-secret"
	)
	promPasswordFile := filepath.Join(dir, "prometheus.password")
	testutil.WriteFile(t, promPasswordFile, promPassword+"\n")
	leafPasswordFile := filepath.Join(dir, "leaf.password")
	testutil.WriteFile(t, leafPasswordFile, leafPassword+"\n")

	// The configserver: TLS with client certificates from the CA, and basic
	// auth for the leaf and for Prometheus.
	csWeb := filepath.Join(dir, "configserver-web.yml")
	testutil.WriteFile(t, csWeb, fmt.Sprintf(`tls_server_config:
  cert_file: %s
  key_file: %s
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: %s
basic_auth_users:
  leaf: %s
  prometheus: %s
`, serverCert.CertFile, serverCert.KeyFile, ca.CertFile, bcryptHash(t, leafPassword), bcryptHash(t, promPassword)))
	// The leaf: TLS and basic auth for Prometheus.
	leafWeb := filepath.Join(dir, "leaf-web.yml")
	testutil.WriteFile(t, leafWeb, fmt.Sprintf(`tls_server_config:
  cert_file: %s
  key_file: %s
basic_auth_users:
  prometheus: %s
`, serverCert.CertFile, serverCert.KeyFile, bcryptHash(t, promPassword)))
	// The leaf's client to the configserver, in prometheus/common's format.
	leafClient := filepath.Join(dir, "leaf-http-client.yml")
	testutil.WriteFile(t, leafClient, fmt.Sprintf(`tls_config:
  ca_file: %s
  cert_file: %s
  key_file: %s
basic_auth:
  username: leaf
  password_file: %s
`, ca.CertFile, leafCert.CertFile, leafCert.KeyFile, leafPasswordFile))

	op, cp, lp, pp := testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)
	originAddr := fmt.Sprintf("127.0.0.1:%d", op)
	csAddr := fmt.Sprintf("127.0.0.1:%d", cp)
	leafAddr := fmt.Sprintf("127.0.0.1:%d", lp)
	promAddr := fmt.Sprintf("127.0.0.1:%d", pp)
	cfg := filepath.Join(dir, "config.yaml")
	testutil.WriteFile(t, cfg, fmt.Sprintf(`interval: 500ms
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
	// Identity mode: the fleet's shared user holds leaf-* ids, Prometheus'
	// user none.
	identities := filepath.Join(dir, "registry-identities.yml")
	testutil.WriteFile(t, identities, "leaf: [\"leaf-*\"]\nprometheus: []\n")
	start(t, "oxcross-configserver", nil, "--web.listen-address="+csAddr, "--web.config.file="+csWeb, "--config.file="+cfg, "--config.min-interval=100ms",
		"--registry.identities="+identities)
	leaf := start(t, "oxcross-leaf", nil, "--web.listen-address="+leafAddr, "--web.config.file="+leafWeb,
		"--leaf.id="+leafID, "--config.url=https://"+csAddr, "--config.http-client-file="+leafClient,
		"--leaf.label", "region=test", "--config.refresh-interval=1s", "--config.min-interval=100ms", "--config.cache-file="+filepath.Join(dir, "cache.json"))

	withCert := httpsClient(t, ca, leafCert)
	noCert := httpsClient(t, ca, nil)
	cs := "https://" + csAddr
	promAuth := basicAuth("prometheus", promPassword)
	testutil.EventuallyReason(t, 20*time.Second, "configserver and leaf up over TLS", func() string {
		resp, err := testutil.TryDo(withCert, http.MethodGet, cs+"/-/healthy", "", promAuth...)
		if err != nil || resp.Code != http.StatusOK {
			return fmt.Sprintf("configserver /-/healthy: %d %s %v", resp.Code, resp.Body, err)
		}
		resp, err = testutil.TryDo(noCert, http.MethodGet, "https://"+leafAddr+"/-/healthy", "", promAuth...)
		if err != nil || resp.Code != http.StatusOK {
			return fmt.Sprintf("leaf /-/healthy: %d %s %v", resp.Code, resp.Body, err)
		}
		return ""
	})

	// The leaf registers through its client file (CA, client certificate,
	// basic auth) and is listed with its label.
	var sd []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	testutil.EventuallyReason(t, 15*time.Second, "leaf in /sd/leaves", func() string {
		resp, err := testutil.TryDo(withCert, http.MethodGet, cs+"/sd/leaves", "", promAuth...)
		if err != nil {
			return err.Error()
		}
		if resp.Code != http.StatusOK {
			return fmt.Sprintf("/sd/leaves: %d %s", resp.Code, resp.Body)
		}
		if err := json.Unmarshal([]byte(resp.Body), &sd); err != nil {
			return err.Error()
		}
		if len(sd) != 1 || len(sd[0].Targets) != 1 || sd[0].Targets[0] != leafAddr || sd[0].Labels["leaf_id"] != leafID || sd[0].Labels["region"] != "test" {
			return "/sd/leaves: " + resp.Body
		}
		return ""
	})

	// Prometheus: http_sd against the configserver (CA, client certificate,
	// basic auth), scraping the leaf over TLS with basic auth.
	promYML := filepath.Join(dir, "prometheus.yml")
	testutil.WriteFile(t, promYML, fmt.Sprintf(`global:
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
`, ca.CertFile, promPasswordFile, csAddr, leafCert.CertFile, leafCert.KeyFile))
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
		resp, err := testutil.TryDo(c.client, http.MethodGet, c.url, "", basicAuth(c.user, c.pass)...)
		if err != nil || resp.Code != http.StatusUnauthorized || strings.Contains(resp.Body, "oxcross_") || strings.Contains(resp.Body, "origins") {
			t.Errorf("%s: %d %q (%v), want 401 and nothing else", c.what, resp.Code, resp.Body, err)
		}
	}
	if resp, err := testutil.TryDo(noCert, http.MethodPut, cs+"/api/v1/leaves/sneaky", `{"address": ":9299"}`); err == nil {
		t.Errorf("registration without a client certificate: status %d, want the TLS handshake refused", resp.Code)
	}
	if resp := testutil.Do(t, withCert, http.MethodPut, cs+"/api/v1/leaves/sneaky", `{"address": ":9299"}`); resp.Code != http.StatusUnauthorized {
		t.Errorf("registration without basic auth: %d %s, want 401", resp.Code, resp.Body)
	}
	// A client certificate from another CA is refused too.
	leafAuth := basicAuth("leaf", leafPassword)
	other := httpsClient(t, ca, otherCert)
	if resp, err := testutil.TryDo(other, http.MethodGet, cs+"/config", "", leafAuth...); err == nil {
		t.Errorf("/config with a client certificate of another CA: %d %q, want the TLS handshake refused", resp.Code, resp.Body)
	}
	// The right credentials get the leaf's view.
	if resp := testutil.Do(t, withCert, http.MethodGet, cs+"/config?leaf_id="+leafID, "", leafAuth...); resp.Code != http.StatusOK || !strings.Contains(resp.Body, "test-only") || strings.Contains(resp.Body, "eu-only") {
		t.Errorf("/config?leaf_id=%s with credentials: %d %s, want test-only and not eu-only", leafID, resp.Code, resp.Body)
	}
	// Plain HTTP to the TLS ports gets nothing but Go's 400.
	for _, u := range []string{"http://" + leafAddr + "/metrics", "http://" + csAddr + "/config", "http://" + csAddr + "/sd/leaves"} {
		// No answer at all is no content either.
		resp, err := testutil.TryDo(nil, http.MethodGet, u, "")
		if err == nil && (resp.Code == http.StatusOK || strings.Contains(resp.Body, "oxcross_") || strings.Contains(resp.Body, "origins") || strings.Contains(resp.Body, "targets")) {
			t.Errorf("plain HTTP %s: %d %q, want no content", u, resp.Code, resp.Body)
		}
	}
	// A registration for an address the request does not come from is
	// refused, credentials or not.
	resp := testutil.Do(t, withCert, http.MethodPut, cs+"/api/v1/leaves/leaf-impostor", `{"address": "192.0.2.1:9299", "labels": {"region": "test"}}`, leafAuth...)
	if resp.Code != http.StatusForbidden || !strings.Contains(resp.Body, "not the request's source") {
		t.Errorf("registration for 192.0.2.1:9299: %d %q, want 403 with the reason", resp.Code, resp.Body)
	}
	// Identity mode: the leaf user holds leaf-* only, Prometheus' user
	// nothing.
	for _, c := range []struct{ id, user, pass string }{{"impostor", "leaf", leafPassword}, {"prometheus", "prometheus", promPassword}} {
		resp := testutil.Do(t, withCert, http.MethodPut, cs+"/api/v1/leaves/"+c.id, `{"address": ":9299"}`, basicAuth(c.user, c.pass)...)
		if resp.Code != http.StatusForbidden || !strings.Contains(resp.Body, "may not hold leaf id") {
			t.Errorf("registration of %s as %s: %d %q, want 403 with the reason", c.id, c.user, resp.Code, resp.Body)
		}
	}

	// Prometheus finds the leaf, scrapes it and stores its probe results.
	upQuery := fmt.Sprintf(`up{job="oxcross-leaf",leaf_id=%q,region="test"} == 1`, leafID)
	resultsQuery := fmt.Sprintf(`oxcross_leaf_probe_results{job="oxcross-leaf",leaf_id=%q,source_id=%q,result="true"}`, leafID, leafID)
	testutil.EventuallyReason(t, 40*time.Second, "Prometheus scrapes the leaf through http_sd", func() string {
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
	resp = testutil.Do(t, withCert, http.MethodGet, cs+"/sd/leaves", "", promAuth...)
	if resp.Code != http.StatusOK || resp.Body != "[]" {
		t.Errorf("/sd/leaves right after the leaf stopped: %d %s, want []", resp.Code, resp.Body)
	}
}
