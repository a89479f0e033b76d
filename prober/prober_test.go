package prober

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/origin"
)

// The helpers the prober's tests share, and the tests of prober.go: the
// one probe entry, Prober.Probe, whatever the kind.

const testAgent = "oxcross-test/1"

// discard is the tests' logger.
var discard = slog.New(slog.DiscardHandler)

// builtinModules are the built-in modules of the shipped kinds (simple,
// advanced, tcp, icmp). Tests copy them; none changes their settings.
var builtinModules = DefaultKinds(discard).Base().Modules

// probeTimeout bounds the probes of these tests that are expected to end
// by themselves.
const probeTimeout = 5 * time.Second

// newTestProber returns a prober with its own set of the shipped kinds,
// as the leaf has one.
func newTestProber() *Prober {
	return NewProber(testAgent, DefaultKinds(discard))
}

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

// advanced is an origin of the built-in module advanced (kind oxcross).
func advanced(url string) config.Target {
	return config.Target{ID: "origin", URL: url, Module: "advanced", Interval: 5 * time.Second, Timeout: 2 * time.Second}
}

// simple is an origin of the built-in module simple (kind http).
func simple(url string) config.Target {
	return config.Target{ID: "origin", URL: url, Module: "simple", Interval: 5 * time.Second, Timeout: 2 * time.Second}
}

// urlTarget and addrTarget are targets for a module the test gives
// itself (see probeModule).
func urlTarget(url string) config.Target {
	return config.Target{ID: "target", URL: url, Module: "test", Interval: 10 * time.Second, Timeout: probeTimeout}
}

func addrTarget(addr string) config.Target {
	return config.Target{ID: "target", Address: addr, Module: "test", Interval: 10 * time.Second, Timeout: probeTimeout}
}

// probe probes tg once with its built-in module and its timeout; st is the
// origin's state (an *oxcrossState for the oxcross kind), nil for a one-off
// probe.
func probe(t testing.TB, p *Prober, tg config.Target, st any) Result {
	t.Helper()
	m, ok := builtinModules[tg.Module]
	if !ok {
		t.Fatalf("%q is not a built-in module", tg.Module)
	}
	ctx, cancel := context.WithTimeout(context.Background(), tg.Timeout)
	defer cancel()
	return p.Probe(ctx, &tg, &m, st)
}

// probeModule probes tg once with module m within timeout, as /probe does
// (no state).
func probeModule(t testing.TB, m config.Module, tg config.Target, timeout time.Duration) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return newTestProber().Probe(ctx, &tg, &m, nil)
}

// httpModule is a module of the http kind with settings s.
func httpModule(s HTTPSettings) config.Module {
	return config.Module{Kind: "http", Settings: &s}
}

// checkReason fails t unless r ended with reason want; a failure must
// carry its error and no drift.
func checkReason(t *testing.T, r Result, want Reason) {
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

// phaseOf returns phase p of r, failing t when the probe lacks it.
func phaseOf(t *testing.T, r Result, p Phase) time.Duration {
	t.Helper()
	d, ok := r.Phases.Get(p)
	if !ok {
		t.Errorf("phase %s not set", p)
	}
	return d
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

// listenLoopback listens on 127.0.0.1 (or ::1 with v6), skipping the test
// when the address is unavailable.
func listenLoopback(t *testing.T, v6 bool) net.Listener {
	t.Helper()
	network, addr := "tcp4", "127.0.0.1:0"
	if v6 {
		network, addr = "tcp6", "[::1]:0"
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		if v6 {
			t.Skipf("no IPv6 loopback here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// stubKind is a kind whose probes end as its probe function says, for
// the tests of what Prober.Probe makes of a kind's result.
type stubKind struct {
	probe func(ctx context.Context, p *Params, r *Result)
}

func (stubKind) Spec() config.Kind {
	return config.Kind{Name: "stub", Builtin: "stub", Target: config.TargetHost}
}

func (k stubKind) Probe(ctx context.Context, p *Params, r *Result) { k.probe(ctx, p, r) }

// TestProbeResultReasons: whatever reason a kind leaves, a success ends
// with ok and a failure with a failure reason (error when the kind gives
// none), or timeout when the probe's time ran out (but for http_status,
// an answer that came in time); a kind that measures no duration gets the
// probe's. The kind is given the target, the module, the state and the
// User-Agent.
func TestProbeResultReasons(t *testing.T) {
	t.Parallel()
	expired := func(ctx context.Context) { <-ctx.Done() }
	for _, tc := range []struct {
		name  string
		probe func(ctx context.Context, p *Params, r *Result)
		short bool // the probe's time runs out
		want  Reason
	}{
		{"success without a reason", func(_ context.Context, _ *Params, r *Result) { r.Success = true }, false, ReasonOK},
		{"success with a failure reason", func(_ context.Context, _ *Params, r *Result) { r.Success, r.Reason = true, ReasonDNS }, false, ReasonOK},
		{"failure without a reason", func(_ context.Context, _ *Params, r *Result) { r.Err = errors.New("x") }, false, ReasonError},
		{"failure with reason ok", func(_ context.Context, _ *Params, r *Result) { r.Reason, r.Err = ReasonOK, errors.New("x") }, false, ReasonError},
		{"failure with its reason", func(_ context.Context, _ *Params, r *Result) { r.Reason, r.Err = ReasonConnect, errors.New("x") }, false, ReasonConnect},
		{"failure after the deadline", func(ctx context.Context, _ *Params, r *Result) {
			expired(ctx)
			r.Reason, r.Err = ReasonConnect, ctx.Err()
		}, true, ReasonTimeout},
		{"http_status after the deadline", func(ctx context.Context, _ *Params, r *Result) {
			expired(ctx)
			r.Reason, r.Err = ReasonHTTPStatus, errors.New("status 500")
		}, true, ReasonHTTPStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			type seen struct {
				target, module, agent string
				state                 any
			}
			got := make(chan seen, 1)
			k := stubKind{probe: func(ctx context.Context, p *Params, r *Result) {
				got <- seen{p.Target.Address, p.Module.Kind, p.UserAgent, p.State}
				tc.probe(ctx, p, r)
			}}
			kinds, err := NewKinds(k)
			if err != nil {
				t.Fatal(err)
			}
			timeout := probeTimeout
			if tc.short {
				timeout = 20 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			tg, m, state := addrTarget("example.test"), kinds.Base().Modules["stub"], &oxcrossState{}
			start := time.Now()
			r := NewProber(testAgent, kinds).Probe(ctx, &tg, &m, state)
			elapsed := time.Since(start)
			checkReason(t, r, tc.want)
			if r.Duration <= 0 || r.Duration > elapsed {
				t.Errorf("duration %v, want in (0, %v]", r.Duration, elapsed)
			}
			if s := <-got; s.target != "example.test" || s.module != "stub" || s.agent != testAgent || s.state != state {
				t.Errorf("the kind was given %+v", s)
			}
		})
	}
}

// TestProbeUnknownKind: a module of a kind the prober does not have fails
// with reason error, naming the kind.
func TestProbeUnknownKind(t *testing.T) {
	t.Parallel()
	tg, m := addrTarget("example.test"), config.Module{Kind: "nosuchkind"}
	r := newTestProber().Probe(context.Background(), &tg, &m, nil)
	checkReason(t, r, ReasonError)
	if !strings.Contains(r.Err.Error(), `"nosuchkind"`) {
		t.Errorf("error %q does not name the kind", r.Err)
	}
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
			r := probe(t, newTestProber(), tg, &oxcrossState{})
			elapsed := time.Since(start)
			checkReason(t, r, ReasonTimeout)
			if elapsed > tg.Timeout+200*time.Millisecond {
				t.Errorf("probe returned after %v, want within %v", elapsed, tg.Timeout+200*time.Millisecond)
			}
			if r.Duration < tg.Timeout-10*time.Millisecond || r.Duration > elapsed {
				t.Errorf("duration %v, want about the timeout %v", r.Duration, tg.Timeout)
			}
		})
	}
}

// TestProbeFreshConnection: every probe opens its own connection, so that
// connect time is part of every measurement.
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

	p := newTestProber()
	st := &oxcrossState{}
	for range 3 {
		checkReason(t, probe(t, p, advanced(ts.URL+origin.Path), st), ReasonOK)
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
	tg, m := advanced(ts.URL+origin.Path), builtinModules["advanced"]
	r := newTestProber().Probe(ctx, &tg, &m, nil)
	if r.Success || r.Drift != nil || !errors.Is(r.Err, context.Canceled) {
		t.Errorf("probe with a canceled context = {Success: %v, Reason: %q, Err: %v}", r.Success, r.Reason, r.Err)
	}
}
