package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/rawtcp"
)

// HTTPSettings configure the http kind, a module's `http:`, and are part
// of the oxcross kind's (OxcrossSettings).
type HTTPSettings struct {
	// Method defaults to GET.
	Method  string            `yaml:"method,omitempty" json:"method,omitempty"`
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// ValidStatusCodes default to 200.
	ValidStatusCodes []int `yaml:"valid_status_codes,omitempty" json:"valid_status_codes,omitempty"`
	// BodyRegexp, when set, must match the body.
	BodyRegexp      string      `yaml:"body_regexp,omitempty" json:"body_regexp,omitempty"`
	FollowRedirects bool        `yaml:"follow_redirects,omitempty" json:"follow_redirects,omitempty"`
	TLS             TLSSettings `yaml:"tls,omitempty" json:"tls,omitzero"`
}

// Validate reports every problem of the settings.
func (h *HTTPSettings) Validate() error {
	var errs []error
	if h.Method != "" && !validMethod(h.Method) {
		errs = append(errs, fmt.Errorf("method: %q is not an HTTP method", h.Method))
	}
	for k, v := range h.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") {
			errs = append(errs, fmt.Errorf("headers: %q is not a header name", k))
		} else if strings.ContainsAny(v, "\r\n") {
			errs = append(errs, fmt.Errorf("headers: %s: value contains a line break", k))
		}
	}
	for _, c := range h.ValidStatusCodes {
		if c < 100 || c > 599 {
			errs = append(errs, fmt.Errorf("valid_status_codes: %d is not an HTTP status code", c))
		}
	}
	if h.BodyRegexp != "" {
		if _, err := regexp.Compile(h.BodyRegexp); err != nil {
			errs = append(errs, fmt.Errorf("body_regexp: %w", err))
		}
	}
	if err := h.TLS.validate(); err != nil {
		errs = append(errs, fmt.Errorf("tls: %w", err))
	}
	return errors.Join(errs...)
}

var _ config.CredentialCarrier = (*HTTPSettings)(nil)

// credentialHeaders are the headers whose values are secrets, in
// canonical form.
var credentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie"}

// CarriesCredentials reports whether the settings send secrets: an
// Authorization, Proxy-Authorization or Cookie header (in any case), or a
// TLS client certificate (config.CredentialCarrier).
func (h *HTTPSettings) CarriesCredentials() bool {
	for name := range h.Headers {
		if slices.Contains(credentialHeaders, http.CanonicalHeaderKey(name)) {
			return true
		}
	}
	return h.TLS.carriesCredentials()
}

func validMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// httpSettings returns m's HTTP settings (an oxcross module's too), the
// defaults if it has none.
func httpSettings(m *config.Module) *HTTPSettings {
	switch s := m.Settings.(type) {
	case *HTTPSettings:
		if s != nil {
			return s
		}
	case *OxcrossSettings:
		if s != nil {
			return &s.HTTPSettings
		}
	}
	return &HTTPSettings{}
}

// httpKind is the http kind (the original's simple mode): it requests a
// URL and checks the status code and, optionally, the body. The oxcross
// kind makes the same request through it.
type httpKind struct {
	mu sync.Mutex
	// clients caches a client per module's settings, so that TLS files
	// are read once per config rather than once per probe.
	clients map[clientKey]*httpClient
	// dialer dials every client's connections.
	dialer rawtcp.Dialer
}

// clientKey is what a client depends on in a module's settings. It is
// comparable, so looking a client up costs no formatting.
type clientKey struct {
	family          config.IPFamily
	noFallback      bool
	tls             TLSSettings
	followRedirects bool
	bodyRegexp      string
}

type httpClient struct {
	client *http.Client
	// dialer is the kind's.
	dialer *rawtcp.Dialer
	// mod is the module whose dialling settings the client uses.
	mod *config.Module
	// direct is set when http:// and https:// requests may be made by
	// roundTrip1 rather than the client: redirects are not followed.
	direct bool
	// tls is the module's TLS config; verifier, when set, verifies
	// servers' certificates in its stead (see certVerifier).
	tls      *tls.Config
	verifier *certVerifier
	re       *regexp.Regexp
	err      error
}

func newHTTPKind() *httpKind {
	return &httpKind{clients: make(map[clientKey]*httpClient)}
}

// Spec: kind http, the built-in module simple, URL targets, settings
// under `http:`.
func (k *httpKind) Spec() config.Kind {
	return config.Kind{
		Name: "http", Builtin: "simple", Target: config.TargetURL,
		SettingsKey: "http", NewSettings: func() config.Settings { return &HTTPSettings{} },
	}
}

// maxCachedClients bounds the client cache; it is emptied when full, which
// only happens after many config changes.
const maxCachedClients = 256

func (k *httpKind) clientFor(m *config.Module, hs *HTTPSettings) *httpClient {
	key := clientKey{m.IPFamily, m.NoIPFallback, hs.TLS, hs.FollowRedirects, hs.BodyRegexp}
	k.mu.Lock()
	defer k.mu.Unlock()
	if c, ok := k.clients[key]; ok {
		return c
	}
	if len(k.clients) >= maxCachedClients {
		clear(k.clients)
	}
	c := &httpClient{dialer: &k.dialer}
	k.clients[key] = c
	tc, err := tlsConfig(hs.TLS)
	if err != nil {
		c.err = err
		return c
	}
	if hs.BodyRegexp != "" {
		if c.re, err = regexp.Compile(hs.BodyRegexp); err != nil {
			c.err = fmt.Errorf("body_regexp: %w", err)
			return c
		}
	}
	mod := *m
	c.mod, c.direct = &mod, !hs.FollowRedirects
	c.tls, c.verifier = tc, verifierFor(tc)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialContext(ctx, c.dialer, &mod, addr)
		},
		// A fresh connection for every probe, as the original Oxcross did.
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
		TLSClientConfig:        tc,
		DialTLSContext:         c.dialTLS,
		ForceAttemptHTTP2:      true,
	}
	c.client = &http.Client{Transport: tr}
	if !hs.FollowRedirects {
		// A probe measures the URL it was given: a 3xx is its answer.
		c.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	} else {
		// A redirect loop ends after maxRedirects, as with Go's default
		// policy, but with the last 3xx as the answer (http_status)
		// rather than an error.
		c.client.CheckRedirect = func(_ *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return http.ErrUseLastResponse
			}
			return nil
		}
	}
	return c
}

// maxRedirects is how many redirects a probe that follows them follows;
// the answer after the last one is the probe's answer.
const maxRedirects = 10

func (k *httpKind) Probe(ctx context.Context, p *Params, r *Result) {
	if _, ok := k.request(ctx, p, p.Target.URL, r); ok {
		r.Success = true
	}
}

// request requests target with p's module and checks the answer's status
// and body. It fills r's measurements and, on failure, its reason, and
// returns the body with the request-written and first-byte times.
func (k *httpKind) request(ctx context.Context, p *Params, target string, r *Result) (answer, bool) {
	m := p.Module
	hs := httpSettings(m)
	r.HTTP = true
	hc := k.clientFor(m, hs)
	if hc.err != nil {
		r.fail(ReasonError, hc.err)
		return answer{}, false
	}
	method := hs.Method
	if method == "" {
		method = http.MethodGet
	}
	start := time.Now()
	tt := &traceTimes{}
	req, err := http.NewRequestWithContext(tt.withTrace(ctx), method, target, nil)
	if err != nil {
		r.fail(ReasonError, fmt.Errorf("building request: %w", err))
		return answer{}, false
	}
	req.Header.Set("User-Agent", p.UserAgent)
	req.Header.Set("Cache-Control", "no-cache")
	for name, v := range hs.Headers {
		if http.CanonicalHeaderKey(name) == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(name, v)
	}
	// As net/http decides that a request needs HTTP/1.
	tt.onlyH1 = httpguts.HeaderValuesContainsToken([]string{req.Header.Get("Connection")}, "upgrade") &&
		strings.EqualFold(req.Header.Get("Upgrade"), "websocket")
	var resp *http.Response
	if hc.direct && directOK(req) && !tt.onlyH1 {
		resp, err = hc.roundTrip1(req)
	} else {
		resp, err = hc.client.Do(req)
	}
	if err != nil {
		r.Duration = time.Since(start)
		tt.phases(&r.Phases, start, time.Time{}, true)
		r.fail(tt.classify(err), err)
		return answer{}, false
	}
	defer resp.Body.Close()
	r.StatusCode = resp.StatusCode
	r.HTTPVersion = float64(resp.ProtoMajor) + float64(resp.ProtoMinor)/10
	if resp.TLS != nil {
		r.TLSExpiry = earliestExpiry(resp.TLS.PeerCertificates)
	}
	maxBody := m.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}
	// The body is read through the limit: a longer one costs at most
	// maxBody+1 bytes of memory.
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	end := time.Now()
	r.Duration = end.Sub(start)
	tt.phases(&r.Phases, start, end, true)
	switch {
	case err != nil:
		r.fail(classify(err), fmt.Errorf("reading body: %w", err))
		return answer{}, false
	case int64(len(body)) > maxBody:
		r.fail(ReasonBodyTooLarge, fmt.Errorf("body longer than %d bytes", maxBody))
		return answer{}, false
	case !validStatus(hs.ValidStatusCodes, resp.StatusCode):
		r.fail(ReasonHTTPStatus, fmt.Errorf("status %d", resp.StatusCode))
		return answer{}, false
	case hc.re != nil && !hc.re.Match(body):
		r.fail(ReasonBodyMismatch, fmt.Errorf("body does not match %q", hs.BodyRegexp))
		return answer{}, false
	}
	a := answer{body: body}
	a.wrote, a.firstByte = tt.times()
	return a, true
}

// answer is what request returns of a good answer.
type answer struct {
	body             []byte
	wrote, firstByte time.Time
}

func validStatus(valid []int, code int) bool {
	if len(valid) == 0 {
		return code == http.StatusOK
	}
	return slices.Contains(valid, code)
}
