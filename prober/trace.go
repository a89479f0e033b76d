package prober

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http/httptrace"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// traceTimes collects what httptrace (and the net package through it)
// reports. The transport calls the hooks from its own goroutines.
type traceTimes struct {
	mu                       sync.Mutex
	dnsStart, dnsDone        time.Time
	dnsOK                    bool
	connectStart, connectEnd time.Time
	connectOK                bool
	tlsStart, tlsDone        time.Time
	tlsOK                    bool
	wrote, firstByte         time.Time
	// certRequested is set when the server asked for a client
	// certificate during the handshake (see tlsConfig).
	certRequested bool
	// repeat is set while the Transport repeats the hooks of a handshake
	// already timed (see handedOver).
	repeat bool
	// onlyH1 is set, before the request, for a request that net/http
	// makes over HTTP/1 only (a WebSocket upgrade): dialTLS then
	// offers no ALPN, as the Transport's own TLS dial would.
	onlyH1 bool
	// handedOver is a TLS connection roundTrip1 made, past its
	// handshake, that negotiated HTTP/2: dialTLS gives it to the
	// Transport, whose handshake hooks for it are then ignored (the
	// handshake was timed when it happened).
	handedOver *tls.Conn
}

// traceKey is the context key of the probe's *traceTimes.
type traceKey struct{}

// clientCertRequested records, in the traceTimes of ctx if it has one,
// that the server asked for a client certificate.
func clientCertRequested(ctx context.Context) {
	if tt, ok := ctx.Value(traceKey{}).(*traceTimes); ok {
		tt.mu.Lock()
		tt.certRequested = true
		tt.mu.Unlock()
	}
}

func (tt *traceTimes) trace() *httptrace.ClientTrace {
	// Each hook takes the time first, then the lock; the hooks lock and
	// unlock directly, so that a call allocates nothing.
	return &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) {
			now := time.Now()
			tt.mu.Lock()
			tt.dnsStart = now
			tt.mu.Unlock()
		},
		DNSDone: func(i httptrace.DNSDoneInfo) {
			now := time.Now()
			tt.mu.Lock()
			tt.dnsDone, tt.dnsOK = now, i.Err == nil
			tt.mu.Unlock()
		},
		ConnectStart: func(string, string) {
			now := time.Now()
			tt.mu.Lock()
			if tt.connectStart.IsZero() {
				tt.connectStart = now
			}
			tt.mu.Unlock()
		},
		ConnectDone: func(_, _ string, err error) {
			now := time.Now()
			tt.mu.Lock()
			if err == nil {
				tt.connectEnd, tt.connectOK = now, true
			}
			tt.mu.Unlock()
		},
		TLSHandshakeStart: func() {
			now := time.Now()
			tt.mu.Lock()
			if !tt.repeat {
				tt.tlsStart = now
			}
			tt.mu.Unlock()
		},
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			now := time.Now()
			tt.mu.Lock()
			if !tt.repeat {
				tt.tlsDone, tt.tlsOK = now, err == nil
			}
			tt.repeat = false
			tt.mu.Unlock()
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			now := time.Now()
			tt.mu.Lock()
			tt.wrote = now
			tt.mu.Unlock()
		},
		GotFirstResponseByte: func() {
			now := time.Now()
			tt.mu.Lock()
			tt.firstByte = now
			tt.mu.Unlock()
		},
	}
}

// withTrace returns ctx with tt's hooks installed; the net package calls
// the DNS and connect hooks for dials made with it.
func (tt *traceTimes) withTrace(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(context.WithValue(ctx, traceKey{}, tt), tt.trace())
}

func (tt *traceTimes) times() (wrote, firstByte time.Time) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.wrote, tt.firstByte
}

// phases fills ph from the trace; end is the end of the body.
func (tt *traceTimes) phases(ph *Phases, start, end time.Time, http bool) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	ph.Set(PhaseResolve, 0)
	if !tt.dnsStart.IsZero() && !tt.dnsDone.IsZero() {
		ph.Set(PhaseResolve, tt.dnsDone.Sub(tt.dnsStart))
	}
	if tt.connectOK {
		ph.Set(PhaseConnect, tt.connectEnd.Sub(tt.connectStart))
	}
	ph.Set(PhaseTLS, 0)
	if tt.tlsOK {
		ph.Set(PhaseTLS, tt.tlsDone.Sub(tt.tlsStart))
	}
	if http && !tt.wrote.IsZero() && !tt.firstByte.IsZero() {
		ph.Set(PhaseProcessing, tt.firstByte.Sub(tt.wrote))
		if !end.IsZero() {
			ph.Set(PhaseTransfer, end.Sub(tt.firstByte))
		}
	}
}

// classify maps a failed dial or request to a reason, using the phase it
// had reached when the error type alone does not tell.
func (tt *traceTimes) classify(err error) Reason {
	r := classify(err)
	// A closed or reset connection is a connect failure unless the phase
	// it happened in says more (a TLS handshake, say).
	byPhase := r == ReasonError || (r == ReasonConnect && closedConn(err))
	tt.mu.Lock()
	defer tt.mu.Unlock()
	switch {
	case !byPhase:
	case !tt.dnsStart.IsZero() && !tt.dnsOK:
		r = ReasonDNS
	case !tt.tlsStart.IsZero() && !tt.tlsOK:
		r = ReasonTLS
	case tt.certRequested && tt.firstByte.IsZero():
		// With TLS 1.3 the server checks the client certificate after
		// the client's side of the handshake is done, and refuses with an
		// alert that HTTP/2 may report only as a closed connection.
		r = ReasonTLS
	case !tt.connectStart.IsZero() && !tt.connectOK:
		r = ReasonConnect
	}
	return r
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
	case errors.As(err, &opErr) && (opErr.Op == "remote error" || opErr.Op == "local error"):
		// crypto/tls reports alerts so, for example a server's
		// "certificate required", which TLS 1.3 sends after the client's
		// side of the handshake has completed.
		return ReasonTLS
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return ReasonConnect
	case closedConn(err):
		// The origin reset or closed the connection before its answer
		// was complete.
		return ReasonConnect
	case isMalformedHTTP(err):
		return ReasonInvalidResponse
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReasonTimeout
	}
	return ReasonError
}

// closedConn reports whether err says the peer reset or closed the
// connection.
func closedConn(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// isMalformedHTTP reports whether err is net/http's complaint about an
// answer that is not HTTP, or whose headers exceed the transport's
// MaxResponseHeaderBytes. net/http has no error types for these, so its
// messages are matched; TestHostileOrigins notices when they change.
func isMalformedHTTP(err error) bool {
	msg := err.Error()
	for _, s := range []string{"server response headers exceeded", "malformed HTTP", "bogus greeting", "malformed MIME header"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// earliestExpiry returns the earliest NotAfter of certs.
func earliestExpiry(certs []*x509.Certificate) time.Time {
	var t time.Time
	for _, c := range certs {
		if t.IsZero() || c.NotAfter.Before(t) {
			t = c.NotAfter
		}
	}
	return t
}
