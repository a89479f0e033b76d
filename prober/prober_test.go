package prober

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/origin"
	"github.com/prometheus/client_golang/prometheus"
)

const testAgent = "oxcross-test/1"

// newOriginServer serves the real origin handler at origin.Path.
func newOriginServer(t testing.TB, opts origin.Options) *httptest.Server {
	t.Helper()
	h, err := origin.NewHandler(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(origin.Path, h)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

// newServer serves h, quietly: the failure cases make the server log.
func newServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

func advanced(url string) discovery.Target {
	return discovery.Target{ID: "origin", URL: url, Mode: discovery.ModeAdvanced, Interval: 5 * time.Second, Timeout: 2 * time.Second}
}

func simple(url string) discovery.Target {
	return discovery.Target{ID: "origin", URL: url, Mode: discovery.ModeSimple, Interval: 5 * time.Second, Timeout: 2 * time.Second}
}

// probe probes tg once with its timeout.
func probe(t testing.TB, p *Prober, tg discovery.Target, st *originState) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), tg.Timeout)
	defer cancel()
	return p.Probe(ctx, tg, st)
}

func wantReason(t *testing.T, r Result, want Reason) {
	t.Helper()
	if r.Reason != want || r.Success != (want == ReasonOK) {
		t.Fatalf("probe = {Success: %v, Reason: %q, Err: %v}, want reason %q", r.Success, r.Reason, r.Err, want)
	}
	if want != ReasonOK && r.Err == nil {
		t.Errorf("failed probe has no Err")
	}
	if want != ReasonOK && r.Drift != nil {
		t.Errorf("failed probe has a drift: %+v", *r.Drift)
	}
}

// fakeOrigin answers like an origin whose response edit may change.
func fakeOrigin(edit func(r *http.Request, resp *origin.Response)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		resp := origin.Response{
			ServerTime:       now.UTC().Format(time.RFC3339Nano),
			Token:            randomToken(),
			Nonce:            r.URL.Query().Get(origin.NonceParam),
			ReceivedUnixNano: now.UnixNano(),
			SentUnixNano:     time.Now().UnixNano(),
		}
		if edit != nil {
			edit(r, &resp)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func TestProbeAdvancedRealOrigin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		ahead time.Duration
	}{
		{"same clock", 0},
		{"origin 3s ahead", 3 * time.Second},
		{"origin 3s behind", -3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := origin.Options{}
			if tc.ahead != 0 {
				opts.Now = func() time.Time { return time.Now().Add(tc.ahead) }
			}
			ts := newOriginServer(t, opts)
			p := NewProber(testAgent)
			st := &originState{}
			for i := range 3 {
				r := probe(t, p, advanced(ts.URL+origin.Path), st)
				wantReason(t, r, ReasonOK)
				if r.Drift == nil {
					t.Fatalf("probe %d: no drift from an advanced origin", i)
				}
				if err := abs(r.Drift.Offset - tc.ahead); err > 50*time.Millisecond {
					t.Errorf("probe %d: offset %v, want %v ± 50ms", i, r.Drift.Offset, tc.ahead)
				}
				if r.Drift.Uncertainty <= 0 || r.Drift.Uncertainty > r.Duration {
					t.Errorf("probe %d: uncertainty %v, want in (0, %v]", i, r.Drift.Uncertainty, r.Duration)
				}
				if r.Duration <= 0 {
					t.Errorf("probe %d: duration %v", i, r.Duration)
				}
			}
		})
	}
}

func TestProbeRequest(t *testing.T) {
	t.Parallel()
	type seen struct{ query, agent string }
	got := make(chan seen, 1)
	ts := newServer(t, fakeOrigin(func(r *http.Request, _ *origin.Response) {
		got <- seen{r.URL.RawQuery, r.Header.Get("User-Agent")}
	}))
	r := probe(t, NewProber(testAgent), advanced(ts.URL+"/oxcross?x=1"), nil)
	wantReason(t, r, ReasonOK)
	s := <-got
	if s.agent != testAgent {
		t.Errorf("User-Agent %q, want %q", s.agent, testAgent)
	}
	if !strings.Contains(s.query, "x=1") || !strings.Contains(s.query, origin.NonceParam+"=") {
		t.Errorf("query %q: want the target's query and a nonce", s.query)
	}
}

func TestProbeCached(t *testing.T) {
	t.Parallel()
	p := NewProber(testAgent)

	t.Run("repeated token", func(t *testing.T) {
		t.Parallel()
		ts := newServer(t, fakeOrigin(func(_ *http.Request, resp *origin.Response) { resp.Token = "cafe" }))
		st := &originState{}
		wantReason(t, probe(t, p, advanced(ts.URL), st), ReasonOK)
		wantReason(t, probe(t, p, advanced(ts.URL), st), ReasonCached)
		// Another origin's state has not seen the token.
		wantReason(t, probe(t, p, advanced(ts.URL), &originState{}), ReasonOK)
	})
	t.Run("repeated token, legacy origin", func(t *testing.T) {
		t.Parallel()
		ts := newServer(t, fakeOrigin(func(_ *http.Request, resp *origin.Response) {
			*resp = origin.Response{ServerTime: time.Now().UTC().Format(time.RFC3339), Token: "cafe"}
		}))
		st := &originState{}
		wantReason(t, probe(t, p, advanced(ts.URL), st), ReasonOK)
		wantReason(t, probe(t, p, advanced(ts.URL), st), ReasonCached)
	})
	t.Run("wrong nonce", func(t *testing.T) {
		t.Parallel()
		ts := newServer(t, fakeOrigin(func(_ *http.Request, resp *origin.Response) { resp.Nonce = "0123456789abcdef" }))
		wantReason(t, probe(t, p, advanced(ts.URL), &originState{}), ReasonCached)
	})
}

func TestProbeFailures(t *testing.T) {
	t.Parallel()
	p := NewProber(testAgent)
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		mode    discovery.Mode
		want    Reason
	}{
		{
			name: "not JSON",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "<html>hello</html>")
			},
			want: ReasonInvalidResponse,
		},
		{
			name: "JSON without server_time",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, `{"token":"abc"}`)
			},
			want: ReasonInvalidResponse,
		},
		{
			name: "JSON without token",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, `{"server_time":"2025-03-01T12:00:00Z"}`)
			},
			want: ReasonInvalidResponse,
		},
		{
			name: "500",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "boom", http.StatusInternalServerError)
			},
			want: ReasonHTTPStatus,
		},
		{
			name: "500 simple",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "boom", http.StatusInternalServerError)
			},
			mode: discovery.ModeSimple,
			want: ReasonHTTPStatus,
		},
		{
			name: "404 simple",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.NotFound(w, r)
			},
			mode: discovery.ModeSimple,
			want: ReasonHTTPStatus,
		},
		{
			// The redirect target is a working origin: following it
			// would succeed.
			name: "301 not followed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/moved" {
					fakeOrigin(nil).ServeHTTP(w, r)
					return
				}
				http.Redirect(w, r, "/moved", http.StatusMovedPermanently)
			},
			want: ReasonHTTPStatus,
		},
		{
			name: "body too large",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write(make([]byte, DefaultMaxBodyBytes+1))
			},
			want: ReasonBodyTooLarge,
		},
		{
			name: "body too large simple",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write(make([]byte, DefaultMaxBodyBytes+1))
			},
			mode: discovery.ModeSimple,
			want: ReasonBodyTooLarge,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newServer(t, tc.handler)
			tg := advanced(ts.URL + origin.Path)
			if tc.mode == discovery.ModeSimple {
				tg = simple(ts.URL + "/")
			}
			wantReason(t, probe(t, p, tg, &originState{}), tc.want)
		})
	}
}

func TestProbeBodyAtLimit(t *testing.T) {
	t.Parallel()
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(make([]byte, DefaultMaxBodyBytes))
	}))
	wantReason(t, probe(t, NewProber(testAgent), simple(ts.URL+"/"), nil), ReasonOK)
}

func TestProbeTimeout(t *testing.T) {
	t.Parallel()
	// Each handler holds the request until the client goes away or the
	// test ends.
	for _, tc := range []struct {
		name    string
		handler func(release <-chan struct{}) http.HandlerFunc
	}{
		{
			name: "before headers",
			handler: func(release <-chan struct{}) http.HandlerFunc {
				return func(_ http.ResponseWriter, r *http.Request) {
					select {
					case <-r.Context().Done():
					case <-release:
					}
				}
			},
		},
		{
			name: "during body",
			handler: func(release <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Length", "1000")
					w.WriteHeader(http.StatusOK)
					_, _ = io.WriteString(w, `{"server_time":`)
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
					case <-release:
					}
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			ts := newServer(t, tc.handler(release))
			t.Cleanup(func() { close(release) }) // before ts.Close
			tg := advanced(ts.URL + origin.Path)
			tg.Timeout = 300 * time.Millisecond
			start := time.Now()
			r := probe(t, NewProber(testAgent), tg, &originState{})
			elapsed := time.Since(start)
			wantReason(t, r, ReasonTimeout)
			if elapsed > tg.Timeout+200*time.Millisecond {
				t.Errorf("probe returned after %v, want within %v", elapsed, tg.Timeout+200*time.Millisecond)
			}
			if r.Duration < tg.Timeout-10*time.Millisecond || r.Duration > elapsed {
				t.Errorf("duration %v, want about the timeout %v", r.Duration, tg.Timeout)
			}
		})
	}
}

func TestProbeConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wantReason(t, probe(t, NewProber(testAgent), advanced("http://"+addr+origin.Path), nil), ReasonConnect)
	wantReason(t, probe(t, NewProber(testAgent), simple("http://"+addr+"/"), nil), ReasonConnect)
}

// TestProbeDNS uses a fake DNS server that answers NXDOMAIN to everything,
// so that the result does not depend on the machine's resolver. It replaces
// net.DefaultResolver, so it must not run in parallel.
func TestProbeDNS(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	var queries atomic.Int32
	go serveNXDOMAIN(pc, &queries)

	old := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", pc.LocalAddr().String())
		},
	}
	t.Cleanup(func() { net.DefaultResolver = old })

	wantReason(t, probe(t, NewProber(testAgent), advanced("http://nonexistent.invalid:9301"+origin.Path), nil), ReasonDNS)
	if queries.Load() == 0 {
		t.Error("the fake DNS server got no query")
	}
}

// serveNXDOMAIN answers every DNS query on pc with NXDOMAIN.
func serveNXDOMAIN(pc net.PacketConn, queries *atomic.Int32) {
	buf := make([]byte, 1500)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		q := buf[:n]
		if len(q) < 12 {
			continue
		}
		// Header plus the question: the name's labels, then type and class.
		end := 12
		for end < len(q) && q[end] != 0 {
			end += int(q[end]) + 1
		}
		end += 5
		if end > len(q) {
			continue
		}
		queries.Add(1)
		resp := append([]byte(nil), q[:end]...)
		resp[2] = 0x80 | resp[2]&0x01 // QR, keep RD
		resp[3] = 0x80 | 3            // RA, NXDOMAIN
		binary.BigEndian.PutUint16(resp[6:], 0)
		binary.BigEndian.PutUint16(resp[8:], 0)
		binary.BigEndian.PutUint16(resp[10:], 0)
		_, _ = pc.WriteTo(resp, addr)
	}
}

// TestProbeDNSSystem uses the machine's resolver, which may not answer.
func TestProbeDNSSystem(t *testing.T) {
	t.Parallel()
	r := probe(t, NewProber(testAgent), advanced("http://nonexistent.invalid"+origin.Path), nil)
	if r.Reason != ReasonDNS {
		t.Skipf("the system resolver gives reason %q (%v), not dns", r.Reason, r.Err)
	}
	wantReason(t, r, ReasonDNS)
}

func TestProbeTLS(t *testing.T) {
	t.Parallel()
	h, err := origin.NewHandler(origin.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)

	// The default client does not know httptest's authority.
	wantReason(t, probe(t, NewProber(testAgent), advanced(ts.URL+origin.Path), nil), ReasonTLS)
	wantReason(t, probe(t, NewProber(testAgent), simple(ts.URL+"/"), nil), ReasonTLS)

	// Plain HTTP to the TLS port is not a TLS failure of the origin: the
	// server answers 400.
	wantReason(t, probe(t, NewProber(testAgent), advanced(strings.Replace(ts.URL, "https:", "http:", 1)+origin.Path), nil), ReasonHTTPStatus)

	// With the authority trusted, the probe succeeds over TLS, with drift.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	m := discovery.Module{Kind: discovery.KindOxcross, HTTP: discovery.HTTPSettings{TLS: discovery.TLSSettings{CAFile: caFile}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r := NewProber(testAgent).ProbeModule(ctx, advanced(ts.URL+origin.Path), &m, &originState{})
	wantReason(t, r, ReasonOK)
	if r.Drift == nil || abs(r.Drift.Offset) > 50*time.Millisecond {
		t.Errorf("drift %+v, want |offset| < 50ms", r.Drift)
	}
}

func TestProbeTLSToPlainServer(t *testing.T) {
	t.Parallel()
	ts := newServer(t, fakeOrigin(nil))
	url := strings.Replace(ts.URL, "http:", "https:", 1) + origin.Path
	wantReason(t, probe(t, NewProber(testAgent), advanced(url), nil), ReasonTLS)
}

// TestProbeTLSHandshakeClosed probes https on a port that accepts and hangs
// up: the handshake fails, so the reason is tls.
func TestProbeTLSHandshakeClosed(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	wantReason(t, probe(t, NewProber(testAgent), advanced("https://"+l.Addr().String()+origin.Path), nil), ReasonTLS)
}

// TestProbeLegacyOrigin probes an origin shaped like the original Oxcross:
// server_time with whole seconds and a token, nothing else.
func TestProbeLegacyOrigin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		layout string
		coarse bool
	}{
		{"whole seconds", time.RFC3339, true},
		{"nanoseconds", "2006-01-02T15:04:05.000000000Z07:00", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				now := time.Now()
				if !tc.coarse && now.Nanosecond() == 0 {
					now = now.Add(time.Nanosecond)
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]string{
					"server_time": now.UTC().Format(tc.layout),
					"token":       randomToken(),
				})
			}))
			st := &originState{}
			for i := range 3 {
				r := probe(t, NewProber(testAgent), advanced(ts.URL+origin.Path), st)
				wantReason(t, r, ReasonOK)
				if r.Drift == nil {
					t.Fatalf("probe %d: no drift from a legacy origin", i)
				}
				d := *r.Drift
				if tc.coarse && d.Uncertainty < 500*time.Millisecond {
					t.Errorf("probe %d: uncertainty %v, want at least 0.5s for whole seconds", i, d.Uncertainty)
				}
				if !tc.coarse && d.Uncertainty >= 500*time.Millisecond {
					t.Errorf("probe %d: uncertainty %v, want below 0.5s for nanoseconds", i, d.Uncertainty)
				}
				// The clocks agree: the estimate is within its uncertainty
				// (and a millisecond for the trace hooks' own timing).
				if abs(d.Offset) > d.Uncertainty+time.Millisecond {
					t.Errorf("probe %d: offset %v outside ±%v", i, d.Offset, d.Uncertainty)
				}
			}
		})
	}
}

func TestProbeSimple(t *testing.T) {
	t.Parallel()
	queries := make(chan string, 1)
	ts := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries <- r.URL.RawQuery
		_, _ = io.WriteString(w, "not an origin, just a web page")
	}))
	r := probe(t, NewProber(testAgent), simple(ts.URL+"/"), nil)
	wantReason(t, r, ReasonOK)
	if r.Drift != nil {
		t.Errorf("simple probe has drift %+v", *r.Drift)
	}
	if r.Duration <= 0 {
		t.Errorf("duration %v", r.Duration)
	}
	if q := <-queries; q != "" {
		t.Errorf("simple probe sent query %q, want none", q)
	}
}

func TestProbeFreshConnection(t *testing.T) {
	t.Parallel()
	h, err := origin.NewHandler(origin.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)

	p := NewProber(testAgent)
	st := &originState{}
	for range 3 {
		wantReason(t, probe(t, p, advanced(ts.URL+origin.Path), st), ReasonOK)
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("3 probes opened %d connections, want 3", n)
	}
}

func TestProbeCanceled(t *testing.T) {
	t.Parallel()
	ts := newOriginServer(t, origin.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := NewProber(testAgent).Probe(ctx, advanced(ts.URL+origin.Path), nil)
	if r.Success || r.Drift != nil || !errors.Is(r.Err, context.Canceled) {
		t.Errorf("probe with a canceled context = {Success: %v, Reason: %q, Err: %v}", r.Success, r.Reason, r.Err)
	}
}

func TestOriginStateRemembers64Tokens(t *testing.T) {
	t.Parallel()
	st := &originState{}
	for i := range 64 {
		if st.seen(string(rune('A' + i))) {
			t.Fatalf("token %d seen before it was sent", i)
		}
	}
	for i := range 64 {
		if !st.seen(string(rune('A' + i))) {
			t.Fatalf("token %d not remembered", i)
		}
	}
	// The 65th token pushes out the oldest.
	if st.seen("new") {
		t.Fatal("new token seen")
	}
	if st.seen("A") {
		t.Error("oldest token still remembered after 65 tokens")
	}
}

func BenchmarkRecord(b *testing.B) {
	m := NewMetrics(prometheus.NewRegistry())
	om := m.forOrigin("origin-9301-http", "leaf")
	r := Result{Success: true, Reason: ReasonOK, Duration: 23 * time.Millisecond, Drift: &Drift{Offset: 2 * time.Second, Uncertainty: 10 * time.Millisecond}}
	b.ReportAllocs()
	for b.Loop() {
		om.record(r)
	}
}
