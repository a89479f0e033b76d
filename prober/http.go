package prober

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/origin"
)

// httpKind implements the http kind (simple mode) and, with oxcross set,
// the oxcross kind (advanced mode): the same request, plus a nonce, the
// token and drift checks on the /oxcross answer.
type httpKind struct {
	oxcross bool
	mu      sync.Mutex
	// clients caches a client per module's settings, so that TLS files
	// are read once per config rather than once per probe.
	clients map[clientKey]*httpClient
}

// clientKey is what a client depends on in a module's settings. It is
// comparable, so looking a client up costs no formatting.
type clientKey struct {
	family          discovery.IPFamily
	noFallback      bool
	tls             discovery.TLSSettings
	followRedirects bool
	bodyRegexp      string
}

type httpClient struct {
	client *http.Client
	re     *regexp.Regexp
	err    error
}

func newHTTPKind(oxcross bool) *httpKind {
	return &httpKind{oxcross: oxcross, clients: make(map[clientKey]*httpClient)}
}

// maxCachedClients bounds the client cache; it is emptied when full, which
// only happens after many config changes.
const maxCachedClients = 256

func (k *httpKind) clientFor(m *discovery.Module) *httpClient {
	key := clientKey{m.IPFamily, m.NoIPFallback, m.HTTP.TLS, m.HTTP.FollowRedirects, m.HTTP.BodyRegexp}
	k.mu.Lock()
	defer k.mu.Unlock()
	if c, ok := k.clients[key]; ok {
		return c
	}
	if len(k.clients) >= maxCachedClients {
		clear(k.clients)
	}
	c := &httpClient{}
	k.clients[key] = c
	tc, err := tlsConfig(m.HTTP.TLS)
	if err != nil {
		c.err = err
		return c
	}
	if m.HTTP.BodyRegexp != "" {
		if c.re, err = regexp.Compile(m.HTTP.BodyRegexp); err != nil {
			c.err = fmt.Errorf("body_regexp: %w", err)
			return c
		}
	}
	mod := *m
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialContext(ctx, &mod, addr)
		},
		// A fresh connection for every probe, as the original Oxcross did.
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
		TLSClientConfig:        tc,
		ForceAttemptHTTP2:      true,
	}
	c.client = &http.Client{Transport: tr}
	if !m.HTTP.FollowRedirects {
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
	m := p.Module
	hc := k.clientFor(m)
	if hc.err != nil {
		r.fail(ReasonError, hc.err)
		return
	}
	target := p.Target.URL
	var nonce string
	if k.oxcross {
		var b [16]byte
		_, _ = rand.Read(b[:])
		nonce = hex.EncodeToString(b[:])
		target = addNonce(target, nonce)
	}
	method := m.HTTP.Method
	if method == "" {
		method = http.MethodGet
	}
	start := time.Now()
	tt := &traceTimes{}
	req, err := http.NewRequestWithContext(tt.withTrace(ctx), method, target, nil)
	if err != nil {
		r.fail(ReasonError, fmt.Errorf("building request: %w", err))
		return
	}
	req.Header.Set("User-Agent", p.UserAgent)
	req.Header.Set("Cache-Control", "no-cache")
	for name, v := range m.HTTP.Headers {
		if http.CanonicalHeaderKey(name) == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(name, v)
	}
	resp, err := hc.client.Do(req)
	if err != nil {
		r.Duration = time.Since(start)
		tt.phases(&r.Phases, start, time.Time{}, true)
		r.fail(tt.classify(err), err)
		return
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
		return
	case int64(len(body)) > maxBody:
		r.fail(ReasonBodyTooLarge, fmt.Errorf("body longer than %d bytes", maxBody))
		return
	case !validStatus(m.HTTP.ValidStatusCodes, resp.StatusCode):
		r.fail(ReasonHTTPStatus, fmt.Errorf("status %d", resp.StatusCode))
		return
	case hc.re != nil && !hc.re.Match(body):
		r.fail(ReasonBodyMismatch, fmt.Errorf("body does not match %q", m.HTTP.BodyRegexp))
		return
	}
	if !k.oxcross {
		r.Success = true
		return
	}
	wrote, firstByte := tt.times()
	d, reason, err := checkOxcross(body, nonce, p.State, wrote, firstByte)
	if err != nil {
		r.fail(reason, err)
		return
	}
	r.Drift = &d
	r.Success = true
}

// checkOxcross validates an /oxcross answer and estimates the drift.
func checkOxcross(body []byte, nonce string, st *originState, wrote, firstByte time.Time) (Drift, Reason, error) {
	var or origin.Response
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&or); err != nil {
		return Drift{}, ReasonInvalidResponse, fmt.Errorf("decoding /oxcross response: %w", err)
	}
	serverTime, err := time.Parse(time.RFC3339Nano, or.ServerTime)
	if err != nil || or.Token == "" {
		return Drift{}, ReasonInvalidResponse, fmt.Errorf("response lacks a server_time or token: %q %q", or.ServerTime, or.Token)
	}
	if (or.Nonce != "" && or.Nonce != nonce) || (st != nil && st.seen(or.Token)) {
		return Drift{}, ReasonCached, errors.New("response repeats a token or another request's nonce: served from a cache")
	}
	if wrote.IsZero() || firstByte.IsZero() {
		return Drift{}, ReasonError, errors.New("no request-written or first-byte timestamp")
	}
	rtt := firstByte.Sub(wrote)
	if or.ReceivedUnixNano != 0 && or.SentUnixNano != 0 && or.Nonce == nonce {
		return EstimateDrift(wrote, time.Unix(0, or.ReceivedUnixNano), time.Unix(0, or.SentUnixNano), firstByte, rtt), ReasonOK, nil
	}
	return EstimateDriftLegacy(wrote, serverTime, firstByte, rtt), ReasonOK, nil
}

func validStatus(valid []int, code int) bool {
	if len(valid) == 0 {
		return code == http.StatusOK
	}
	return slices.Contains(valid, code)
}

func addNonce(raw, nonce string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set(origin.NonceParam, nonce)
	u.RawQuery = q.Encode()
	return u.String()
}
