package prober

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
	"github.com/oxcross/oxcross/origin"
)

// probeEndpoint serves h at /probe.
func probeEndpoint(t *testing.T, h *Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/probe", h)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL + "/probe"
}

// probeAnswer is a /probe response.
type probeAnswer struct {
	status  int
	body    string
	metrics map[string]*dto.MetricFamily
	elapsed time.Duration
}

// getProbe asks endpoint to probe target with module; timeoutHeader, when
// set, is the scraper's timeout header.
func getProbe(t *testing.T, endpoint, target, module, timeoutHeader string) probeAnswer {
	t.Helper()
	q := url.Values{}
	if target != "" {
		q.Set("target", target)
	}
	if module != "" {
		q.Set("module", module)
	}
	req, err := http.NewRequest(http.MethodGet, endpoint+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if timeoutHeader != "" {
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", timeoutHeader)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := probeAnswer{status: resp.StatusCode, body: string(body), elapsed: time.Since(start)}
	if resp.StatusCode == http.StatusOK {
		p := expfmt.NewTextParser(model.UTF8Validation)
		if a.metrics, err = p.TextToMetricFamilies(strings.NewReader(a.body)); err != nil {
			t.Fatalf("parsing /probe answer: %v\n%s", err, a.body)
		}
	}
	return a
}

// value returns the gauge name with labels lv (name, value pairs).
func (a probeAnswer) value(name string, lv ...string) (float64, bool) {
	mf, ok := a.metrics[name]
	if !ok {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if hasLabels(m, lv...) {
			if mf.GetType() != dto.MetricType_GAUGE {
				return math.NaN(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, lv ...string) bool {
	if len(m.GetLabel()) != len(lv)/2 {
		return false
	}
	for i := 0; i+1 < len(lv); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == lv[i] && lp.GetValue() == lv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// mustValue returns the gauge name with labels lv, failing t without it.
func (a probeAnswer) mustValue(t *testing.T, name string, lv ...string) float64 {
	t.Helper()
	v, ok := a.value(name, lv...)
	if !ok {
		t.Fatalf("no %s%v in the answer:\n%s", name, lv, a.body)
	}
	return v
}

// wantProbe checks the answer's status, probe_success and reason.
func (a probeAnswer) wantProbe(t *testing.T, reason Reason) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", a.status, a.body)
	}
	wantSuccess := 0.0
	if reason == ReasonOK {
		wantSuccess = 1
	}
	if v := a.mustValue(t, "probe_success"); v != wantSuccess {
		t.Errorf("probe_success %v, want %v (reason %v)", v, wantSuccess, a.metrics["probe_oxcross_reason"])
	}
	if v := a.mustValue(t, "probe_oxcross_reason", "reason", string(reason)); v != 1 {
		t.Errorf("probe_oxcross_reason{reason=%q} = %v, want 1", reason, v)
	}
	if n := len(a.metrics["probe_oxcross_reason"].GetMetric()); n != 1 {
		t.Errorf("%d probe_oxcross_reason series, want 1", n)
	}
	if v := a.mustValue(t, "probe_duration_seconds"); v <= 0 || v > a.elapsed.Seconds() {
		t.Errorf("probe_duration_seconds %v, want in (0, %v]", v, a.elapsed.Seconds())
	}
}

// wantBadRequest checks a 400 answer whose message contains each of want.
func (a probeAnswer) wantBadRequest(t *testing.T, want ...string) {
	t.Helper()
	if a.status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: %s", a.status, a.body)
	}
	for _, w := range want {
		if !strings.Contains(a.body, w) {
			t.Errorf("message %q does not mention %q", a.body, w)
		}
	}
}

// newProbeHandler returns a /probe handler of a leaf without a config:
// the built-in modules only.
func newProbeHandler() *Handler {
	return NewHandler(newTestProber(), func() *config.Config { return nil }, DefaultMaxConcurrentProbes, discard)
}

func TestProbeHandlerModules(t *testing.T) {
	t.Parallel()
	endpoint := probeEndpoint(t, newProbeHandler())
	web := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") }))
	originTS := newOriginServer(t, origin.Options{})
	l := listenLoopback(t, false)
	testutil.ServeConns(t, l, func(c net.Conn) { _ = c.Close() })

	httpPhases := func(t *testing.T, a probeAnswer) {
		for p := range numPhases {
			if v := a.mustValue(t, "probe_http_duration_seconds", "phase", p.String()); v < 0 {
				t.Errorf("phase %s: %v", p, v)
			}
		}
		if v := a.mustValue(t, "probe_http_duration_seconds", "phase", "connect"); v <= 0 {
			t.Errorf("connect phase %v, want > 0", v)
		}
		if v := a.mustValue(t, "probe_http_status_code"); v != 200 {
			t.Errorf("probe_http_status_code %v, want 200", v)
		}
		if v := a.mustValue(t, "probe_http_version"); v != 1.1 {
			t.Errorf("probe_http_version %v, want 1.1", v)
		}
	}
	for _, tc := range []struct {
		name, module, target string
		check                func(t *testing.T, a probeAnswer)
	}{
		{
			name: "simple", module: "simple", target: web.URL + "/",
			check: func(t *testing.T, a probeAnswer) {
				httpPhases(t, a)
				if _, ok := a.value("probe_oxcross_time_drift_seconds"); ok {
					t.Error("simple probe has a drift")
				}
			},
		},
		{
			name: "simple by default", target: web.URL + "/",
			check: httpPhases,
		},
		{
			name: "simple without scheme", module: "simple", target: strings.TrimPrefix(web.URL, "http://"),
			check: httpPhases,
		},
		{
			name: "advanced", module: "advanced", target: originTS.URL + origin.Path,
			check: func(t *testing.T, a probeAnswer) {
				httpPhases(t, a)
				if v := a.mustValue(t, "probe_oxcross_time_drift_seconds"); math.Abs(v) > 0.05 {
					t.Errorf("drift %vs between clocks that agree", v)
				}
				if v := a.mustValue(t, "probe_oxcross_time_drift_uncertainty_seconds"); v <= 0 || v > a.elapsed.Seconds() {
					t.Errorf("drift uncertainty %vs, want in (0, %v]", v, a.elapsed.Seconds())
				}
			},
		},
		{
			name: "tcp", module: "tcp", target: l.Addr().String(),
			check: func(t *testing.T, a probeAnswer) {
				if v := a.mustValue(t, "probe_tcp_duration_seconds", "phase", "connect"); v <= 0 {
					t.Errorf("connect phase %v, want > 0", v)
				}
				if _, ok := a.value("probe_http_status_code"); ok {
					t.Error("tcp probe has an HTTP status code")
				}
			},
		},
		{
			name: "icmp", module: "icmp", target: "127.0.0.1",
			check: func(t *testing.T, a probeAnswer) {
				if v := a.mustValue(t, "probe_icmp_duration_seconds", "phase", "processing"); v <= 0 {
					t.Errorf("round trip %v, want > 0", v)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := getProbe(t, endpoint, tc.target, tc.module, "")
			if tc.module == "icmp" {
				if v, _ := a.value("probe_oxcross_reason", "reason", string(ReasonICMP)); v == 1 {
					t.Skip("the icmp probe failed with reason icmp, as it does without an ICMP socket: this machine allows neither unprivileged ICMP sockets (sysctl net.ipv4.ping_group_range) nor raw ones (CAP_NET_RAW)")
				}
			}
			a.wantProbe(t, ReasonOK)
			tc.check(t, a)
		})
	}
}

func TestProbeHandlerFailure(t *testing.T) {
	t.Parallel()
	endpoint := probeEndpoint(t, newProbeHandler())
	addr := testutil.ClosedAddr(t)
	for _, module := range []string{"simple", "advanced", "tcp"} {
		t.Run(module, func(t *testing.T) {
			t.Parallel()
			a := getProbe(t, endpoint, addr, module, "")
			a.wantProbe(t, ReasonConnect)
			if module != "tcp" {
				if v := a.mustValue(t, "probe_http_status_code"); v != 0 {
					t.Errorf("probe_http_status_code %v without a response, want 0", v)
				}
			}
		})
	}
}

func TestProbeHandlerBadRequests(t *testing.T) {
	t.Parallel()
	endpoint := probeEndpoint(t, newProbeHandler())
	web := newServer(t, http.NotFoundHandler())
	for _, tc := range []struct {
		name, target, module, header string
		want                         []string
	}{
		{name: "unknown module", target: web.URL, module: "nosuchmodule", want: []string{`"nosuchmodule"`}},
		{name: "empty target", module: "simple", want: []string{"target"}},
		{name: "tcp without port", target: "127.0.0.1", module: "tcp", want: []string{`"127.0.0.1"`, "module tcp: address: "}},
		{name: "malformed URL", target: "http://[::1", module: "simple", want: []string{"module simple: url: "}},
		{name: "timeout header not a number", target: web.URL, module: "simple", header: "abc", want: []string{"abc"}},
		{name: "timeout header zero", target: web.URL, module: "simple", header: "0"},
		{name: "timeout header negative", target: web.URL, module: "simple", header: "-1"},
		// Finding 11 of issue 13: these became negative durations.
		{name: "timeout header NaN", target: web.URL, module: "simple", header: "NaN", want: []string{`"NaN" is not a finite number of seconds of at least 0.001`}},
		{name: "timeout header +Inf", target: web.URL, module: "simple", header: "+Inf", want: []string{`"+Inf" is not a finite number of seconds`}},
		{name: "timeout header Inf", target: web.URL, module: "simple", header: "Inf", want: []string{`"Inf" is not a finite number of seconds`}},
		{name: "timeout header -Inf", target: web.URL, module: "simple", header: "-Inf", want: []string{`"-Inf" is not a finite number of seconds`}},
		{name: "timeout header beyond float64", target: web.URL, module: "simple", header: "1e400", want: []string{`"1e400" is not a finite number of seconds`}},
		{name: "timeout header under a millisecond", target: web.URL, module: "simple", header: "1e-300", want: []string{`"1e-300" is not a finite number of seconds of at least 0.001`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			getProbe(t, endpoint, tc.target, tc.module, tc.header).wantBadRequest(t, tc.want...)
		})
	}
}

func TestProbeHandlerScrapeTimeout(t *testing.T) {
	t.Parallel()
	endpoint := probeEndpoint(t, newProbeHandler())
	release := make(chan struct{})
	slow := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		case <-time.After(5 * time.Second):
		}
		_, _ = io.WriteString(w, "too late")
	}))
	t.Cleanup(func() { close(release) }) // before slow.Close
	for _, module := range []string{"simple", "advanced"} {
		t.Run(module, func(t *testing.T) {
			t.Parallel()
			a := getProbe(t, endpoint, slow.URL+"/", module, "1")
			a.wantProbe(t, ReasonTimeout)
			// A 1s scrape timeout leaves half of it for the answer to
			// reach Prometheus in time.
			if a.elapsed > 900*time.Millisecond {
				t.Errorf("answered after %v, want within the 1s scrape timeout with room to spare", a.elapsed)
			}
			if v := a.mustValue(t, "probe_duration_seconds"); v < 0.45 || v > 0.8 {
				t.Errorf("probe_duration_seconds %v, want about 0.5s", v)
			}
		})
	}
}

// TestProbeHandlerHugeTimeout: a finite timeout header too large for a
// time.Duration (finding 11 of issue 13: 1e308 became a negative one, and
// the probe timed out at once) is capped at the longest probe timeout.
func TestProbeHandlerHugeTimeout(t *testing.T) {
	t.Parallel()
	endpoint := probeEndpoint(t, newProbeHandler())
	web := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") }))
	for _, header := range []string{"1e308", "9.3e9", "121"} {
		getProbe(t, endpoint, web.URL, "simple", header).wantProbe(t, ReasonOK)
	}
	for header, want := range map[string]time.Duration{
		"1e308": maxProbeTimeout, "9.3e9": maxProbeTimeout, "120.5": maxProbeTimeout, "60": 59500 * time.Millisecond,
		"1": 500 * time.Millisecond, "0.001": 500 * time.Microsecond,
	} {
		if got, err := scrapeTimeout(header); err != nil || got != want {
			t.Errorf("scrapeTimeout(%q) = %v, %v; want %v", header, got, err, want)
		}
	}
}

func TestProbeHandlerConfigModule(t *testing.T) {
	t.Parallel()
	cfg, err := DefaultKinds(discard).Parser(config.Limits{}).Parse([]byte(`
modules:
  strict:
    kind: http
    http:
      valid_status_codes: [204]
origins:
  - url: http://origin.example.com:9301
`))
	if err != nil {
		t.Fatal(err)
	}
	// The leaf's config: none at first, then cfg.
	var current atomic.Pointer[config.Config]
	endpoint := probeEndpoint(t, NewHandler(newTestProber(), current.Load, DefaultMaxConcurrentProbes, discard))
	noContent := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	web := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") }))

	getProbe(t, endpoint, noContent.URL, "strict", "").wantBadRequest(t, `"strict"`)
	current.Store(cfg)

	a := getProbe(t, endpoint, noContent.URL, "strict", "")
	a.wantProbe(t, ReasonOK)
	if v := a.mustValue(t, "probe_http_status_code"); v != 204 {
		t.Errorf("probe_http_status_code %v, want 204", v)
	}
	a = getProbe(t, endpoint, web.URL, "strict", "")
	a.wantProbe(t, ReasonHTTPStatus)
	if v := a.mustValue(t, "probe_http_status_code"); v != 200 {
		t.Errorf("probe_http_status_code %v, want 200", v)
	}
	// The built-in modules stay.
	getProbe(t, endpoint, web.URL, "simple", "").wantProbe(t, ReasonOK)
	getProbe(t, endpoint, noContent.URL, "simple", "").wantProbe(t, ReasonHTTPStatus)
}

// capture is a server on loopback that records what reaches it: every
// connection it accepts, and the credentials of every request.
type capture struct {
	*httptest.Server
	conns   atomic.Int64
	mu      sync.Mutex
	secrets []string // each request's Authorization and Cookie
}

// newCapture serves h (a 200 "ok" when nil) and records what reaches it.
func newCapture(t *testing.T, h http.Handler) *capture {
	t.Helper()
	c := &capture{}
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.secrets = append(c.secrets, r.Header.Get("Authorization")+r.Header.Get("Cookie"))
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	c.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.conns.Add(1)
		}
	}
	c.Start()
	t.Cleanup(c.Close)
	return c
}

func (c *capture) lastSecret() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.secrets) == 0 {
		return ""
	}
	return c.secrets[len(c.secrets)-1]
}

// tlsCapture is a TLS listener on loopback that requires a client
// certificate of ca's and records every connection and the client
// certificates' common names.
type tlsCapture struct {
	addr  string
	conns atomic.Int64
	names chan string
}

func newTLSCapture(t *testing.T, fx *tlsFixture) *tlsCapture {
	t.Helper()
	l := listenLoopback(t, false)
	c := &tlsCapture{addr: l.Addr().String(), names: make(chan string, 16)}
	cfg := &tls.Config{Certificates: []tls.Certificate{fx.server.TLS}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: fx.ca.Pool}
	testutil.ServeConns(t, l, func(conn net.Conn) {
		c.conns.Add(1)
		tc := tls.Server(conn, cfg)
		if tc.Handshake() == nil {
			c.names <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
		}
		_ = tc.Close()
	})
	return c
}

// TestProbeHandlerCredentials replays finding 5 of issue 13: /probe with
// a module that carries credentials (an Authorization or Cookie header, a
// client certificate) and a target of the caller's choosing. The module
// probes only the targets of the config's origins that use it and those
// its allowed_targets match; any other target is answered 403 and never
// reached (the capture server sees no connection at all), while a listed
// target gets the secret.
func TestProbeHandlerCredentials(t *testing.T) {
	t.Parallel()
	const token = "Bearer SUPERSECRET-MODULE-TOKEN"
	const cookie = "session=SUPERSECRET-COOKIE"
	fx := newTLSFixture(t)
	listed := newCapture(t, nil)                // an origin of module withauth
	originSrv := newCapture(t, fakeOrigin(nil)) // an origin of module withcookie (kind oxcross)
	allowHost := newCapture(t, nil)             // matched by allowlisted's allowed_targets
	stranger := newCapture(t, nil)              // the attacker's capture server
	open := newCapture(t, nil)                  // probed with a module without credentials
	tlsListed, tlsStranger := newTLSCapture(t, fx), newTLSCapture(t, fx)

	cfg, err := DefaultKinds(discard).Parser(config.Limits{}).Parse(fmt.Appendf(nil, `
modules:
  withauth:
    kind: http
    http: {headers: {Authorization: %[1]q}}
  withcookie:
    kind: oxcross
    http: {headers: {cookie: %[2]q}}
  allowlisted:
    kind: http
    allowed_targets: ['%[3]s/allowed/[a-z]+']
    http: {headers: {AUTHORIZATION: %[1]q}}
  withcert:
    kind: tcp
    tcp: {tls: true, tls_config: {ca_file: %[4]q, cert_file: %[5]q, key_file: %[6]q}}
origins:
  - {name: listed, url: '%[7]s/secret-path', module: withauth}
  - {name: listed-origin, url: '%[8]s', module: withcookie}
  - {name: listed-tls, address: '%[9]s', module: withcert}
`, token, cookie, regexp.QuoteMeta(allowHost.URL), fx.ca.CertFile, fx.client.CertFile, fx.client.KeyFile,
		listed.URL, originSrv.URL, tlsListed.addr))
	if err != nil {
		t.Fatal(err)
	}
	endpoint := probeEndpoint(t, NewHandler(newTestProber(), func() *config.Config { return cfg }, DefaultMaxConcurrentProbes, discard))

	for _, tc := range []struct {
		name, module, target string
		// reached is the server the probe reaches, with the secret it
		// must get; nil for a refused probe, which reaches none.
		reached *capture
		secret  string
		tls     *tlsCapture
	}{
		{name: "header, the attack: another target", module: "withauth", target: stranger.URL + "/steal"},
		{name: "header, the origin's target", module: "withauth", target: listed.URL + "/secret-path", reached: listed, secret: token},
		{name: "header, the origin's target without scheme", module: "withauth", target: strings.TrimPrefix(listed.URL, "http://") + "/secret-path", reached: listed, secret: token},
		{name: "header, another path of the origin's host", module: "withauth", target: listed.URL + "/other"},
		{name: "header, an origin of another module", module: "withauth", target: originSrv.URL + origin.Path},
		{name: "cookie, the attack", module: "withcookie", target: stranger.URL},
		{name: "cookie, the origin's target", module: "withcookie", target: originSrv.URL, reached: originSrv, secret: cookie},
		{name: "allowed_targets, a match", module: "allowlisted", target: allowHost.URL + "/allowed/abc", reached: allowHost, secret: token},
		{name: "allowed_targets, a longer path", module: "allowlisted", target: allowHost.URL + "/allowed/abc/x"},
		{name: "allowed_targets, the path at another host", module: "allowlisted", target: stranger.URL + "/allowed/abc"},
		{name: "client certificate, the attack", module: "withcert", target: tlsStranger.addr},
		{name: "client certificate, the origin's address", module: "withcert", target: tlsListed.addr, tls: tlsListed},
		{name: "no credentials, any target", module: "simple", target: open.URL + "/anything", reached: open},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := map[*capture]int64{}
			for _, c := range []*capture{listed, originSrv, allowHost, stranger, open} {
				before[c] = c.conns.Load()
			}
			tlsBefore := tlsStranger.conns.Load()
			a := getProbe(t, endpoint, tc.target, tc.module, "")
			refused := tc.reached == nil && tc.tls == nil
			if refused {
				if a.status != http.StatusForbidden {
					t.Fatalf("status %d, want 403: %s", a.status, a.body)
				}
				if want := "module " + tc.module + " "; !strings.Contains(a.body, want) {
					t.Errorf("403 message %q does not name the module (%q)", a.body, want)
				}
				if strings.Contains(a.body, "SUPERSECRET") {
					t.Errorf("403 message %q shows the secret", a.body)
				}
			} else {
				a.wantProbe(t, ReasonOK)
			}
			// The answer comes after the probe: whatever it reached, it
			// has reached by now.
			for c, n := range before {
				got := c.conns.Load() - n
				if c == tc.reached {
					if got != 1 {
						t.Errorf("the target server saw %d connections, want 1", got)
					}
					if s := c.lastSecret(); s != tc.secret {
						t.Errorf("the target got credentials %q, want %q", s, tc.secret)
					}
				} else if got != 0 {
					t.Errorf("%d connections reached %s, which is not the target", got, c.URL)
				}
			}
			if got := tlsStranger.conns.Load() - tlsBefore; got != 0 {
				t.Errorf("%d connections reached the stranger's TLS listener", got)
			}
			if tc.tls != nil {
				if name := <-tc.tls.names; name != "oxcross-leaf" {
					t.Errorf("client certificate %q, want the module's (oxcross-leaf)", name)
				}
			}
		})
	}
	if n := stranger.conns.Load(); n != 0 {
		t.Errorf("the stranger's capture server saw %d connections, want none", n)
	}
}

// openFiles counts the process' open file descriptors, -1 where
// /proc/self/fd is not there to read.
func openFiles() int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(fds)
}

// peak samples the goroutines and open files every few milliseconds until
// stop is called, which returns the highest counts seen.
func peak() (stop func() (goroutines, files int)) {
	done := make(chan struct{})
	var g, f int
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			g, f = max(g, runtime.NumGoroutine()), max(f, openFiles())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() (int, int) {
		close(done)
		wg.Wait()
		return g, f
	}
}

// probeResult is a /probe answer got off the test's goroutine.
type probeResult struct {
	status  int
	body    string
	elapsed time.Duration
	err     error
}

func tryProbe(c *http.Client, endpoint, target, timeoutHeader string) probeResult {
	req, err := http.NewRequest(http.MethodGet, endpoint+"?"+url.Values{"target": {target}, "module": {"simple"}}.Encode(), nil)
	if err != nil {
		return probeResult{err: err}
	}
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", timeoutHeader)
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return probeResult{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return probeResult{status: resp.StatusCode, body: string(body), elapsed: time.Since(start), err: err}
}

// TestProbeHandlerMaxConcurrent replays finding 10 of issue 13: 200
// concurrent /probe calls to a silent listener (it accepts and never
// answers). The first 10 (--probe.max-concurrent's default) probe and hold
// their slots until the test lets them go; the other 190 wait their probe
// timeout for a slot and get 503. Exactly 10 connections reach the
// listener, the process' goroutines and open files grow by what the
// waiting requests themselves hold (not by a probe each), and all of it
// is gone afterwards.
func TestProbeHandlerMaxConcurrent(t *testing.T) {
	// Not parallel: it counts the process' goroutines and open files.
	const limit, callers = DefaultMaxConcurrentProbes, 200
	silent := listenLoopback(t, false)
	var accepted atomic.Int64
	release := make(chan struct{})
	testutil.ServeConns(t, silent, func(c net.Conn) {
		accepted.Add(1)
		<-release // never answering until then
		_ = c.Close()
	})
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before serveConns' cleanup waits for its connections
	target := "http://" + silent.Addr().String() + "/"
	endpoint := probeEndpoint(t, NewHandler(newTestProber(), func() *config.Config { return nil }, limit, discard))
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	runtime.GC()
	baseGoroutines, baseFiles := runtime.NumGoroutine(), openFiles()
	stop := peak()
	results := make([]probeResult, callers)
	var holders, waiters sync.WaitGroup
	// The first ones take every slot (a 30 s scrape timeout) and hold
	// them until the listener lets them go...
	for i := range limit {
		holders.Go(func() { results[i] = tryProbe(client, endpoint, target, "30") })
	}
	testutil.Eventually(t, 10*time.Second, "the first probes to reach the silent listener", func() bool { return accepted.Load() == limit })
	// ... while the others wait their 0.5 s (a 1 s scrape timeout) in vain.
	for i := limit; i < callers; i++ {
		waiters.Go(func() { results[i] = tryProbe(client, endpoint, target, "1") })
	}
	waiters.Wait()
	peakGoroutines, peakFiles := stop()
	letGo()
	holders.Wait()

	refused := 0
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Fatalf("call %d: %v", i, r.err)
		case i < limit:
			// Its probe failed when the listener closed the connection.
			if r.status != http.StatusOK || !strings.Contains(r.body, "probe_success 0") {
				t.Errorf("call %d, holding a slot: status %d, want 200 with a failed probe: %s", i, r.status, r.body)
			}
		case r.status != http.StatusServiceUnavailable:
			t.Errorf("call %d, beyond the limit: status %d, want 503: %s", i, r.status, r.body)
		default:
			refused++
			if !strings.Contains(r.body, "too many concurrent probes (--probe.max-concurrent=10)") {
				t.Errorf("call %d: 503 message %q does not name the limit", i, r.body)
			}
			// It waited its probe timeout for a slot (and, as the slots
			// were held until all of them had answered, no longer).
			if r.elapsed < 450*time.Millisecond {
				t.Errorf("call %d: 503 after %v, before its 0.5 s probe timeout", i, r.elapsed)
			}
		}
	}
	if got := accepted.Load(); got != limit {
		t.Errorf("%d connections reached the silent listener, want %d: one per slot", got, limit)
	}
	// What the waiting requests hold themselves, in this process: about
	// 5 goroutines (the caller, the client transport's reader and writer,
	// the server's connection and its background read) and a socket at
	// either end. A probe adds 3 goroutines (its transport's reader and
	// writer, the listener's) and 2 sockets: without the limit, 200 calls
	// peaked at +1603 goroutines and +800 open files.
	growG, growF := peakGoroutines-baseGoroutines, peakFiles-baseFiles
	t.Logf("%d calls, %d probing: goroutines %d → peak %d (+%d), open files %d → peak %d (+%d); %d answered 503",
		callers, limit, baseGoroutines, peakGoroutines, growG, baseFiles, peakFiles, growF, refused)
	if maxG := 6*callers + 8*limit; growG > maxG {
		t.Errorf("goroutines grew by %d, want at most %d", growG, maxG)
	}
	if maxF := 2*callers + 4*limit + 20; baseFiles >= 0 && growF > maxF {
		t.Errorf("open files grew by %d, want at most %d", growF, maxF)
	}
	client.CloseIdleConnections()
	testutil.EventuallyReason(t, 5*time.Second, "goroutines and open files back to where they were", func() string {
		g, f := runtime.NumGoroutine(), openFiles()
		if g <= baseGoroutines+5 && f <= baseFiles+5 {
			return ""
		}
		return fmt.Sprintf("%d goroutines (were %d), %d open files (were %d)", g, baseGoroutines, f, baseFiles)
	})
}

// TestProbeHandlerLogRedactsURL: a failed /probe of a URL with a password
// logs the target with the password redacted (issue 13, #6).
func TestProbeHandlerLogRedactsURL(t *testing.T) {
	t.Parallel()
	var logs testutil.SyncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := NewHandler(newTestProber(), func() *config.Config { return nil }, DefaultMaxConcurrentProbes, logger)
	endpoint := probeEndpoint(t, h)
	target := "http://probe-user:SECRETPW@" + testutil.ClosedAddr(t) + "/"
	if a := getProbe(t, endpoint, target, "simple", ""); a.status != http.StatusOK || !strings.Contains(a.body, "probe_success 0") {
		t.Fatalf("probe of a closed port: %d %s", a.status, a.body)
	}
	got := logs.String()
	if !strings.Contains(got, "Probe failed") || !strings.Contains(got, "probe-user:xxxxx@") {
		t.Errorf("no debug log of the failed probe with the redacted target:\n%s", got)
	}
	if strings.Contains(got, "SECRETPW") {
		t.Errorf("the log shows the password:\n%s", got)
	}
}
