package origin_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oxcross/oxcross/origin"
)

// stepClock returns start on its first call and advances by step after
// every call.
type stepClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.step)
	return t
}

// countReader answers every read with a new counter value in its first
// eight bytes. It is not safe for concurrent use, so that the race detector
// notices unserialised reads.
type countReader struct{ n uint64 }

func (r *countReader) Read(p []byte) (int, error) {
	r.n++
	clear(p)
	if len(p) >= 8 {
		binary.BigEndian.PutUint64(p, r.n)
	}
	return len(p), nil
}

func newHandler(t testing.TB, opts origin.Options) *origin.Handler {
	t.Helper()
	h, err := origin.NewHandler(opts)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	return h
}

func do(h http.Handler, method, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) origin.Response {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %q", rec.Code, rec.Body.String())
	}
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	var resp origin.Response
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("decoding %q: %v", rec.Body.String(), err)
	}
	return resp
}

func TestResponse(t *testing.T) {
	start := time.Date(2024, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	const step = 1500 * time.Nanosecond
	h := newHandler(t, origin.Options{
		Now:    (&stepClock{t: start, step: step}).Now,
		Random: bytes.NewReader([]byte{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0xff}),
	})
	rec := do(h, http.MethodGet, "/oxcross?nonce=c0ffee")

	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got, want := rec.Header().Get("Content-Length"), len(rec.Body.Bytes()); got != strconv.Itoa(want) {
		t.Errorf("Content-Length = %q, body has %d bytes", got, want)
	}

	var raw map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", rec.Body.String(), err)
	}
	wantKeys := []string{"server_time", "token", "nonce", "received_unix_nano", "sent_unix_nano"}
	for _, k := range wantKeys {
		if _, ok := raw[k]; !ok {
			t.Errorf("body %s lacks %q", rec.Body.String(), k)
		}
	}
	if len(raw) != len(wantKeys) {
		t.Errorf("body %s has %d fields, want %d", rec.Body.String(), len(raw), len(wantKeys))
	}

	resp := decode(t, rec)
	sent := start.Add(step) // received is the first clock reading, sent the second
	want := origin.Response{
		ServerTime:       "2024-03-01T11:00:00.123458289Z",
		Token:            "000102030405060708090a0b0c0d0eff",
		Nonce:            "c0ffee",
		ReceivedUnixNano: start.UnixNano(),
		SentUnixNano:     sent.UnixNano(),
	}
	if resp != want {
		t.Errorf("response = %+v, want %+v", resp, want)
	}
	st, err := time.Parse(time.RFC3339Nano, resp.ServerTime)
	if err != nil {
		t.Fatalf("server_time %q: %v", resp.ServerTime, err)
	}
	if !st.Equal(sent) {
		t.Errorf("server_time = %v, want the send time %v", st, sent)
	}
}

func TestServerTimeNanoseconds(t *testing.T) {
	for _, tc := range []struct {
		nsec int
		want string
	}{
		{0, "2025-06-30T23:59:59.000000000Z"},
		{1, "2025-06-30T23:59:59.000000001Z"},
		{100000000, "2025-06-30T23:59:59.100000000Z"},
		{999999999, "2025-06-30T23:59:59.999999999Z"},
	} {
		now := time.Date(2025, 6, 30, 23, 59, 59, tc.nsec, time.UTC)
		h := newHandler(t, origin.Options{Now: func() time.Time { return now }})
		resp := decode(t, do(h, http.MethodGet, origin.Path))
		if resp.ServerTime != tc.want {
			t.Errorf("nsec %d: server_time = %q, want %q", tc.nsec, resp.ServerTime, tc.want)
		}
		got, err := time.Parse(time.RFC3339Nano, resp.ServerTime)
		if err != nil || !got.Equal(now) {
			t.Errorf("nsec %d: server_time %q parses to %v, %v; want %v", tc.nsec, resp.ServerTime, got, err, now)
		}
		if resp.SentUnixNano != now.UnixNano() {
			t.Errorf("nsec %d: sent_unix_nano = %d, want %d", tc.nsec, resp.SentUnixNano, now.UnixNano())
		}
	}
}

func TestDefaultClock(t *testing.T) {
	h := newHandler(t, origin.Options{})
	before := time.Now().UnixNano()
	resp := decode(t, do(h, http.MethodGet, origin.Path))
	after := time.Now().UnixNano()
	if resp.ReceivedUnixNano < before || resp.ReceivedUnixNano > resp.SentUnixNano || resp.SentUnixNano > after {
		t.Errorf("want %d <= received %d <= sent %d <= %d", before, resp.ReceivedUnixNano, resp.SentUnixNano, after)
	}
}

func TestTokensUnique(t *testing.T) {
	h := newHandler(t, origin.Options{})
	const n = 1000
	seen := make(map[string]bool, n)
	for i := range n {
		tok := decode(t, do(h, http.MethodGet, origin.Path)).Token
		if b, err := hex.DecodeString(tok); err != nil || len(b) != origin.TokenBytes {
			t.Fatalf("request %d: token %q is not %d hex-encoded bytes", i, tok, origin.TokenBytes)
		}
		if seen[tok] {
			t.Fatalf("request %d: token %q repeated", i, tok)
		}
		seen[tok] = true
	}
}

func TestNonceEchoed(t *testing.T) {
	h := newHandler(t, origin.Options{})
	for _, nonce := range []string{
		"0123456789abcdef",
		"ABCDEFabcdef",
		"a-b_c",
		"-",
		"_",
		"z",
		strings.Repeat("f", origin.MaxNonceLength),
	} {
		target := origin.Path + "?" + url.Values{origin.NonceParam: {nonce}, "other": {"x y"}}.Encode()
		if got := decode(t, do(h, http.MethodGet, target)).Nonce; got != nonce {
			t.Errorf("GET %s: nonce = %q, want %q", target, got, nonce)
		}
	}

	// Without a nonce the field is left out, as the original Oxcross did.
	rec := do(h, http.MethodGet, origin.Path)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if v, ok := raw["nonce"]; ok {
		t.Errorf("GET %s without nonce: body has nonce %s", origin.Path, v)
	}
}

func TestBadNonce(t *testing.T) {
	h := newHandler(t, origin.Options{})
	for _, tc := range []struct{ query, reason string }{
		{"nonce=", `"nonce"`},
		{"nonce=" + strings.Repeat("f", origin.MaxNonceLength+1), `"nonce"`},
		{"nonce=a%20b", `"nonce"`},
		{"nonce=abc!", `"nonce"`},
		{"nonce=a.b", `"nonce"`},
		{"nonce=a%2Fb", `"nonce"`},
		{"nonce=%C3%A4", `"nonce"`},
		{"nonce=ab%00", `"nonce"`},
		{"nonce=a&nonce=b", `"nonce"`},
		{"nonce=%zz", "query string"},
	} {
		rec := do(h, http.MethodGet, origin.Path+"?"+tc.query)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("?%s: status = %d, want 400", tc.query, rec.Code)
			continue
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("?%s: Content-Type = %q, want text/plain", tc.query, ct)
		}
		if body := rec.Body.String(); !strings.Contains(body, tc.reason) {
			t.Errorf("?%s: body %q does not name %s", tc.query, body, tc.reason)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	h := newHandler(t, origin.Options{})
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, "PROPFIND"} {
		rec := do(h, m, origin.Path+"?nonce=abc")
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: status = %d, want 405", m, rec.Code)
		}
		if got := rec.Header().Get("Allow"); got != "GET, HEAD" {
			t.Errorf("%s: Allow = %q, want %q", m, got, "GET, HEAD")
		}
		if strings.Contains(rec.Body.String(), "token") {
			t.Errorf("%s: body %q is a probe response", m, rec.Body.String())
		}
	}
}

// TestServer makes real round trips, including HEAD, through net/http.
func TestServer(t *testing.T) {
	h := newHandler(t, origin.Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()

	for _, m := range []string{http.MethodGet, http.MethodHead} {
		req, err := http.NewRequest(m, srv.URL+origin.Path+"?nonce=feed", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status = %d, want 200", m, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("%s: Content-Type = %q", m, got)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s: Cache-Control = %q", m, got)
		}
		switch m {
		case http.MethodHead:
			if len(body) != 0 || resp.ContentLength <= 0 {
				t.Errorf("HEAD: body %q, Content-Length %d; want no body and a positive length", body, resp.ContentLength)
			}
		default:
			var r origin.Response
			if err := json.Unmarshal(body, &r); err != nil || r.Nonce != "feed" || r.Token == "" {
				t.Errorf("GET: body %q decodes to %+v, %v", body, r, err)
			}
			if int64(len(body)) != resp.ContentLength {
				t.Errorf("GET: Content-Length %d, body %d bytes", resp.ContentLength, len(body))
			}
		}
	}
}

func TestReceivedBeforeSent(t *testing.T) {
	clock := &stepClock{t: time.Unix(1700000000, 0), step: 250 * time.Microsecond}
	h := newHandler(t, origin.Options{Now: clock.Now})
	var lastSent int64
	for i := range 10 {
		r := decode(t, do(h, http.MethodGet, origin.Path))
		if r.ReceivedUnixNano >= r.SentUnixNano {
			t.Errorf("request %d: received %d not before sent %d", i, r.ReceivedUnixNano, r.SentUnixNano)
		}
		if r.SentUnixNano-r.ReceivedUnixNano != int64(clock.step) {
			t.Errorf("request %d: sent - received = %d, want one clock step %d", i, r.SentUnixNano-r.ReceivedUnixNano, clock.step)
		}
		if r.ReceivedUnixNano <= lastSent {
			t.Errorf("request %d: received %d not after previous sent %d", i, r.ReceivedUnixNano, lastSent)
		}
		lastSent = r.SentUnixNano
	}
}

func TestRandomFailure(t *testing.T) {
	h := newHandler(t, origin.Options{Random: iotest.ErrReader(errors.New("no entropy"))})
	rec := do(h, http.MethodGet, origin.Path)
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", rec.Code)
	}
	if strings.Contains(rec.Body.String(), "token\"") || strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Errorf("failed request answered like a probe: %q", rec.Body.String())
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	h := newHandler(t, origin.Options{
		Now:        (&stepClock{t: time.Unix(1700000000, 0), step: time.Millisecond}).Now,
		Registerer: reg,
		// Enough for three tokens; the fourth read fails.
		Random: bytes.NewReader(make([]byte, 3*origin.TokenBytes)),
	})

	// Every code's series exists before the first request.
	if n, err := testutil.GatherAndCount(reg, origin.MetricRequests); err != nil || n != 4 {
		t.Errorf("%s has %d series (%v), want 4", origin.MetricRequests, n, err)
	}

	for range 3 {
		do(h, http.MethodGet, origin.Path+"?nonce=1") // 200, three clock readings
	}
	do(h, http.MethodGet, origin.Path+"?nonce=!") // 400, two readings
	do(h, http.MethodPost, origin.Path)           // 405
	do(h, http.MethodDelete, origin.Path)         // 405
	do(h, http.MethodGet, origin.Path)            // 500: random exhausted

	want := `# HELP oxcross_origin_requests_total Requests to the /oxcross endpoint, by HTTP status code.
# TYPE oxcross_origin_requests_total counter
oxcross_origin_requests_total{code="200"} 3
oxcross_origin_requests_total{code="400"} 1
oxcross_origin_requests_total{code="405"} 2
oxcross_origin_requests_total{code="500"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), origin.MetricRequests); err != nil {
		t.Error(err)
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, mf := range mfs {
		if mf.GetName() != origin.MetricRequestDuration {
			continue
		}
		found = true
		hist := mf.GetMetric()[0].GetHistogram()
		if got := hist.GetSampleCount(); got != 7 {
			t.Errorf("%s count = %d, want 7", origin.MetricRequestDuration, got)
		}
		// 200s take two clock steps, the others one: 3*2ms + 4*1ms.
		if got := hist.GetSampleSum(); math.Abs(got-0.010) > 1e-9 {
			t.Errorf("%s sum = %g, want 0.010", origin.MetricRequestDuration, got)
		}
	}
	if !found {
		t.Errorf("%s not registered", origin.MetricRequestDuration)
	}
}

func TestRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	newHandler(t, origin.Options{Registerer: reg})
	if _, err := origin.NewHandler(origin.Options{Registerer: reg}); err == nil {
		t.Error("second NewHandler on the same registry succeeded, want a registration error")
	}
}

// TestConcurrent runs requests in parallel with a Random that is not safe for
// concurrent use; run it with -race.
func TestConcurrent(t *testing.T) {
	h := newHandler(t, origin.Options{Random: &countReader{}, Registerer: prometheus.NewRegistry()})
	const workers, each = 8, 25
	var (
		mu   sync.Mutex
		seen = make(map[string]bool)
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for range each {
				rec := do(h, http.MethodGet, origin.Path)
				var r origin.Response
				if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[r.Token] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != workers*each {
		t.Errorf("%d distinct tokens from %d requests", len(seen), workers*each)
	}
}

// discardWriter is a ResponseWriter that keeps nothing but headers.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

func BenchmarkHandler(b *testing.B) {
	h := newHandler(b, origin.Options{Registerer: prometheus.NewRegistry()})
	req := httptest.NewRequest(http.MethodGet, origin.Path+"?nonce=0123456789abcdef0123456789abcdef", nil)
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}
