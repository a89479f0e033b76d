// Package prober is the leaf's measuring side: it probes origins over HTTP,
// schedules the probes of every origin across its interval, and records the
// results as the leaf's metrics.
package prober

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/origin"
)

// Reason says why a probe failed; it comes from a fixed set so that it can
// be a label value.
type Reason string

// The reasons a probe ends with.
const (
	ReasonOK              Reason = "ok"
	ReasonTimeout         Reason = "timeout"
	ReasonDNS             Reason = "dns"
	ReasonConnect         Reason = "connect"
	ReasonTLS             Reason = "tls"
	ReasonHTTPStatus      Reason = "http_status"
	ReasonInvalidResponse Reason = "invalid_response"
	ReasonCached          Reason = "cached"
	ReasonBodyTooLarge    Reason = "body_too_large"
	ReasonError           Reason = "error"
)

// failureReasons lists every reason a probe can fail with.
var failureReasons = []Reason{ReasonTimeout, ReasonDNS, ReasonConnect, ReasonTLS, ReasonHTTPStatus, ReasonInvalidResponse, ReasonCached, ReasonBodyTooLarge, ReasonError}

// DefaultMaxBodyBytes bounds the response body a probe reads.
const DefaultMaxBodyBytes = 1 << 20

// Result is the outcome of one probe.
type Result struct {
	Success bool
	Reason  Reason
	// Duration runs from the start of the request to the end of the body.
	Duration time.Duration
	// Drift is set by successful advanced-mode probes.
	Drift *Drift
	// Err is the underlying error of a failure, for logs only.
	Err error
}

// Prober runs single probes. It is safe for concurrent use.
type Prober struct {
	client  *http.Client
	maxBody int64
	agent   string
}

// NewProber returns a Prober whose probes each open a fresh connection, so
// that connection and TLS handshake time are part of every measurement.
func NewProber(userAgent string) *Prober {
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{KeepAlive: -1}).DialContext,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:      false,
	}
	return &Prober{
		client: &http.Client{
			Transport: tr,
			// Redirects are not followed: a probe measures the URL it was
			// given, and a 3xx is a failure with reason http_status.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		maxBody: DefaultMaxBodyBytes,
		agent:   userAgent,
	}
}

// originState is what a prober remembers of an origin between probes.
type originState struct {
	// tokens holds the last tokens the origin sent, to recognise a cached
	// response that repeats one.
	tokens [64]string
	next   int
}

func (s *originState) seen(token string) bool {
	for _, t := range s.tokens {
		if t == token {
			return true
		}
	}
	s.tokens[s.next] = token
	s.next = (s.next + 1) % len(s.tokens)
	return false
}

// Probe probes t once within ctx, which should carry the target's timeout.
func (p *Prober) Probe(ctx context.Context, t discovery.Target, st *originState) Result {
	target := t.URL
	var nonce string
	if t.Mode == discovery.ModeAdvanced {
		var b [16]byte
		_, _ = rand.Read(b[:])
		nonce = hex.EncodeToString(b[:])
		target = addNonce(target, nonce)
	}
	start := time.Now()
	tt := &traceTimes{}
	trace := tt.trace()
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, target, nil)
	if err != nil {
		return Result{Reason: ReasonError, Err: fmt.Errorf("building request: %w", err)}
	}
	req.Header.Set("User-Agent", p.agent)
	req.Header.Set("Cache-Control", "no-cache")

	fail := func(r Reason, err error) Result {
		if ctx.Err() != nil && r != ReasonHTTPStatus {
			r = ReasonTimeout
		}
		return Result{Reason: r, Duration: time.Since(start), Err: err}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fail(tt.classify(err), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, p.maxBody+1))
	end := time.Now()
	if err != nil {
		return fail(classify(err), fmt.Errorf("reading body: %w", err))
	}
	if int64(len(body)) > p.maxBody {
		return fail(ReasonBodyTooLarge, fmt.Errorf("body longer than %d bytes", p.maxBody))
	}
	if resp.StatusCode != http.StatusOK {
		return fail(ReasonHTTPStatus, fmt.Errorf("status %d", resp.StatusCode))
	}
	res := Result{Success: true, Reason: ReasonOK, Duration: end.Sub(start)}
	if t.Mode != discovery.ModeAdvanced {
		return res
	}
	var or origin.Response
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&or); err != nil {
		return fail(ReasonInvalidResponse, fmt.Errorf("decoding /oxcross response: %w", err))
	}
	serverTime, err := time.Parse(time.RFC3339Nano, or.ServerTime)
	if err != nil || or.Token == "" {
		return fail(ReasonInvalidResponse, fmt.Errorf("response lacks a server_time or token: %q %q", or.ServerTime, or.Token))
	}
	if (or.Nonce != "" && or.Nonce != nonce) || (st != nil && st.seen(or.Token)) {
		return fail(ReasonCached, errors.New("response repeats a token or another request's nonce: served from a cache"))
	}
	wrote, firstByte := tt.times()
	if wrote.IsZero() || firstByte.IsZero() {
		return fail(ReasonError, errors.New("no request-written or first-byte timestamp"))
	}
	rtt := firstByte.Sub(wrote)
	var d Drift
	if or.ReceivedUnixNano != 0 && or.SentUnixNano != 0 && or.Nonce == nonce {
		d = EstimateDrift(wrote, time.Unix(0, or.ReceivedUnixNano), time.Unix(0, or.SentUnixNano), firstByte, rtt)
	} else {
		d = EstimateDriftLegacy(wrote, serverTime, firstByte, rtt)
	}
	res.Drift = &d
	return res
}

// traceTimes collects what httptrace reports; the transport calls its hooks
// from its own goroutines.
type traceTimes struct {
	mu                  sync.Mutex
	dnsStarted, dnsDone bool
	tlsStarted, tlsDone bool
	wrote, firstByte    time.Time
}

func (tt *traceTimes) trace() *httptrace.ClientTrace {
	set := func(f func()) {
		tt.mu.Lock()
		f()
		tt.mu.Unlock()
	}
	// The Done hooks run on failure too: a phase is done only when it
	// succeeded, so that classify blames the phase that failed.
	return &httptrace.ClientTrace{
		DNSStart:             func(httptrace.DNSStartInfo) { set(func() { tt.dnsStarted = true }) },
		DNSDone:              func(i httptrace.DNSDoneInfo) { set(func() { tt.dnsDone = i.Err == nil }) },
		TLSHandshakeStart:    func() { set(func() { tt.tlsStarted = true }) },
		TLSHandshakeDone:     func(_ tls.ConnectionState, err error) { set(func() { tt.tlsDone = err == nil }) },
		WroteRequest:         func(httptrace.WroteRequestInfo) { now := time.Now(); set(func() { tt.wrote = now }) },
		GotFirstResponseByte: func() { now := time.Now(); set(func() { tt.firstByte = now }) },
	}
}

func (tt *traceTimes) times() (wrote, firstByte time.Time) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.wrote, tt.firstByte
}

// classify maps a failed request to a reason, using the phase the request
// had reached when the error type alone does not tell.
func (tt *traceTimes) classify(err error) Reason {
	r := classify(err)
	tt.mu.Lock()
	defer tt.mu.Unlock()
	switch {
	case r != ReasonError:
	case tt.dnsStarted && !tt.dnsDone:
		r = ReasonDNS
	case tt.tlsStarted && !tt.tlsDone:
		r = ReasonTLS
	}
	return r
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

// classify maps a transport error to a reason.
func classify(err error) Reason {
	var (
		dnsErr  *net.DNSError
		opErr   *net.OpError
		certErr *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
		alert   tls.AlertError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonTimeout
	case errors.As(err, &dnsErr):
		return ReasonDNS
	case errors.As(err, &certErr), errors.As(err, &recErr), errors.As(err, &alert),
		errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &invalid):
		return ReasonTLS
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return ReasonConnect
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReasonTimeout
	}
	return ReasonError
}
