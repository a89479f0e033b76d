package prober

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The http kind makes an http:// or https:// request that does not
// follow redirects itself, on the probe's goroutine: dial, for https the
// TLS handshake (offering HTTP/2 and HTTP/1.1, as the Transport does),
// write the request, read the answer, close, as net/http's Transport does
// with keep-alives off, with the same request bytes, the same response
// parser (http.ReadResponse), the same header limit, the same trace hooks
// and the same errors. The Transport would start three goroutines for it
// (the dial, a reader and a writer) and hand the request and the answer
// between them through channels; on a leaf that probes hundreds of
// origins a second, waking those goroutines cost more than the HTTP
// itself. A server that chooses HTTP/2 gets it from the Transport, on the
// connection already made (dialTLS hands it over). Redirects and requests
// the fast path does not handle the same way (credentials in the URL, a
// non-ASCII host, header names or values net/http refuses, a WebSocket
// upgrade) go through the http.Client.

// maxResponseHeaderBytes bounds an answer's status line and headers, as
// the Transport's MaxResponseHeaderBytes.
const maxResponseHeaderBytes = 64 << 10

// directOK reports whether req can be made by roundTrip1 with the
// result the http.Client would give.
func directOK(req *http.Request) bool {
	u := req.URL
	if (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Host == "" || u.Opaque != "" || !ascii(u.Host) {
		return false
	}
	if req.Host != "" && !httpguts.ValidHostHeader(req.Host) {
		return false
	}
	for name, vs := range req.Header {
		if !httpguts.ValidHeaderFieldName(name) {
			return false
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// aLongTimeAgo is a deadline in the past: it stops a connection's
// pending reads and writes.
var aLongTimeAgo = time.Unix(1, 0)

// limitedConn reads at most limit bytes from the connection, so that the
// answer's headers cannot grow without bound.
type limitedConn struct {
	net.Conn
	limit int64
}

func (c *limitedConn) Read(p []byte) (int, error) {
	if c.limit <= 0 {
		return 0, fmt.Errorf("read limit of %d bytes exhausted", maxResponseHeaderBytes)
	}
	if int64(len(p)) > c.limit {
		p = p[:c.limit]
	}
	n, err := c.Conn.Read(p)
	c.limit -= int64(n)
	return n, err
}

// roundTrip1 makes req (directOK) over a new connection dialled with the
// client's module, and returns the answer, whose body closes the
// connection. Errors are *url.Error as the http.Client's; once the
// request's context is done, its cause is the error, as the Transport
// reports it.
func (c *httpClient) roundTrip1(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	uerr := func(err error) error {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return &url.Error{Op: req.Method[:1] + strings.ToLower(req.Method[1:]), URL: req.URL.String(), Err: err}
	}
	port := req.URL.Port()
	if port == "" {
		port = "80"
		if req.URL.Scheme == "https" {
			port = "443"
		}
	}
	conn, err := dialContext(ctx, c.dialer, c.mod, net.JoinHostPort(req.URL.Hostname(), port))
	if err != nil {
		return nil, uerr(err)
	}
	var tlsState *tls.ConnectionState
	if req.URL.Scheme == "https" {
		tc, err := c.handshake(ctx, conn, req.URL.Hostname())
		if err != nil {
			return nil, uerr(err)
		}
		cs := tc.ConnectionState()
		if cs.NegotiatedProtocol == "h2" {
			// HTTP/2 is the Transport's: it gets the connection from
			// dialTLS, as if it had dialled it.
			if tt, ok := ctx.Value(traceKey{}).(*traceTimes); ok {
				tt.mu.Lock()
				tt.handedOver, tt.repeat = tc, true
				tt.mu.Unlock()
				return c.client.Do(req)
			}
			_ = tc.Close()
			return c.client.Do(req)
		}
		conn, tlsState = tc, &cs
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	lc := &limitedConn{Conn: conn, limit: maxResponseHeaderBytes}
	br := readers.Get().(*bufio.Reader)
	br.Reset(lc)
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = conn.Close()
		putReader(br)
		return nil, uerr(err)
	}
	// As the Transport with keep-alives off: "Connection: close", and
	// the trace's WroteRequest once the request is in the buffer, which
	// is then flushed.
	req.Close = true
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	writers.Put(bw)
	if err != nil {
		return fail(err)
	}
	if _, err := br.Peek(1); err != nil {
		return fail(err)
	}
	if tr := httptrace.ContextClientTrace(ctx); tr != nil && tr.GotFirstResponseByte != nil {
		tr.GotFirstResponseByte()
	}
	var resp *http.Response
	for {
		resp, err = http.ReadResponse(br, req)
		if err != nil {
			if lc.limit <= 0 {
				err = fmt.Errorf("net/http: server response headers exceeded %d bytes; aborted", maxResponseHeaderBytes)
			}
			// The Transport's words for an answer it cannot parse.
			return fail(fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", err))
		}
		// 1xx answers other than 101 precede the answer; the header
		// limit counts them too.
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	lc.limit = math.MaxInt64
	resp.TLS = tlsState
	resp.Body = &directBody{ReadCloser: resp.Body, ctx: ctx, conn: conn, br: br, stop: stop}
	return resp, nil
}

// h2Protos are the ALPN protocols an https probe offers, as net/http's
// Transport with ForceAttemptHTTP2 offers them.
var h2Protos = []string{"h2", "http/1.1"}

// handshake makes a TLS client handshake on conn for host (the URL's),
// with the trace's hooks, as the Transport does on its dialling
// goroutine; on failure it closes conn.
func (c *httpClient) handshake(ctx context.Context, conn net.Conn, host string) (*tls.Conn, error) {
	tr := httptrace.ContextClientTrace(ctx)
	if tr != nil && tr.TLSHandshakeStart != nil {
		tr.TLSHandshakeStart()
	}
	tc := c.verifier.client(conn, c.tls, host, h2Protos)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		if tr != nil && tr.TLSHandshakeDone != nil {
			tr.TLSHandshakeDone(tls.ConnectionState{}, err)
		}
		return nil, err
	}
	if tr != nil && tr.TLSHandshakeDone != nil {
		tr.TLSHandshakeDone(tc.ConnectionState(), nil)
	}
	return tc, nil
}

// dialTLS is the Transport's DialTLSContext: the connection roundTrip1
// handed over if there is one, else a dial of address with the module's
// settings and a TLS client not yet past its handshake (the Transport
// makes it, with the trace's hooks, on its dialling goroutine),
// configured as the Transport's own TLS dial would (the module's config,
// the server name from address when it has none, HTTP/2 offered unless
// the request needs HTTP/1) but verified by c's verifier.
func (c *httpClient) dialTLS(ctx context.Context, _, address string) (net.Conn, error) {
	protos := h2Protos
	if tt, ok := ctx.Value(traceKey{}).(*traceTimes); ok {
		tt.mu.Lock()
		tc := tt.handedOver
		tt.handedOver = nil
		onlyH1 := tt.onlyH1
		tt.mu.Unlock()
		if tc != nil {
			return tc, nil
		}
		if onlyH1 {
			protos = nil
		}
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	conn, err := dialContext(ctx, c.dialer, c.mod, address)
	if err != nil {
		return nil, err
	}
	return c.verifier.client(conn, c.tls, host, protos), nil
}

// readers and writers keep roundTrip1's buffers, 4 KiB each as the
// Transport's, from one probe to the next.
var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

func putReader(br *bufio.Reader) {
	br.Reset(nil)
	readers.Put(br)
}

// directBody is a roundTrip1 answer's body: closing it closes the
// connection; a read that fails once the request's context is done
// reports the context's cause, as the Transport's body does.
type directBody struct {
	io.ReadCloser
	ctx  context.Context
	conn net.Conn
	// br is the connection's reader, back to the pool once closed.
	br     *bufio.Reader
	stop   func() bool
	closed bool
}

func (b *directBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.ctx.Err() != nil {
		err = context.Cause(b.ctx)
	}
	return n, err
}

func (b *directBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.stop()
	err := b.conn.Close()
	putReader(b.br)
	return err
}
