package prober

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/origin"
)

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
			p := newTestProber()
			st := &oxcrossState{}
			for i := range 3 {
				r := probe(t, p, advanced(ts.URL+origin.Path), st)
				checkReason(t, r, ReasonOK)
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
	r := probe(t, newTestProber(), advanced(ts.URL+"/oxcross?x=1"), nil)
	checkReason(t, r, ReasonOK)
	s := <-got
	if s.agent != testAgent {
		t.Errorf("User-Agent %q, want %q", s.agent, testAgent)
	}
	if !strings.Contains(s.query, "x=1") || !strings.Contains(s.query, origin.NonceParam+"=") {
		t.Errorf("query %q: want the target's query and a nonce", s.query)
	}
}

// TestOxcrossKindState: the scheduler gives each origin of the oxcross
// kind its own token ring, and nothing to other kinds.
func TestOxcrossKindState(t *testing.T) {
	t.Parallel()
	p := newTestProber()
	for module, want := range map[string]bool{"advanced": true, "simple": false, "tcp": false, "icmp": false} {
		m := builtinModules[module]
		st := p.newState(&m)
		if _, ok := st.(*oxcrossState); ok != want || (!want && st != nil) {
			t.Errorf("module %s: state %T, want an *oxcrossState: %v", module, st, want)
		}
	}
	m := builtinModules["advanced"]
	if p.newState(&m) == p.newState(&m) {
		t.Error("two origins share one token ring")
	}
}

func TestProbeCached(t *testing.T) {
	t.Parallel()
	p := newTestProber()

	t.Run("repeated token", func(t *testing.T) {
		t.Parallel()
		ts := newServer(t, fakeOrigin(func(_ *http.Request, resp *origin.Response) { resp.Token = "cafe" }))
		st := &oxcrossState{}
		checkReason(t, probe(t, p, advanced(ts.URL), st), ReasonOK)
		checkReason(t, probe(t, p, advanced(ts.URL), st), ReasonCached)
		// Another origin's state has not seen the token.
		checkReason(t, probe(t, p, advanced(ts.URL), &oxcrossState{}), ReasonOK)
	})
	t.Run("repeated token, legacy origin", func(t *testing.T) {
		t.Parallel()
		ts := newServer(t, fakeOrigin(func(_ *http.Request, resp *origin.Response) {
			*resp = origin.Response{ServerTime: time.Now().UTC().Format(time.RFC3339), Token: "cafe"}
		}))
		st := &oxcrossState{}
		checkReason(t, probe(t, p, advanced(ts.URL), st), ReasonOK)
		checkReason(t, probe(t, p, advanced(ts.URL), st), ReasonCached)
	})
	t.Run("wrong nonce", func(t *testing.T) {
		t.Parallel()
		ts := newServer(t, fakeOrigin(func(_ *http.Request, resp *origin.Response) { resp.Nonce = "0123456789abcdef" }))
		checkReason(t, probe(t, p, advanced(ts.URL), &oxcrossState{}), ReasonCached)
	})
}

// TestProbeFailures: the oxcross kind's failures, those of its answer and
// those of the HTTP request it shares with the http kind.
func TestProbeFailures(t *testing.T) {
	t.Parallel()
	p := newTestProber()
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newServer(t, tc.handler)
			r := probe(t, p, advanced(ts.URL+origin.Path), &oxcrossState{})
			checkReason(t, r, tc.want)
			if !r.HTTP {
				t.Error("an oxcross probe's result does not say it speaks HTTP")
			}
		})
	}
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
			st := &oxcrossState{}
			for i := range 3 {
				r := probe(t, newTestProber(), advanced(ts.URL+origin.Path), st)
				checkReason(t, r, ReasonOK)
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

func TestOxcrossKindPhases(t *testing.T) {
	t.Parallel()
	ts := newOriginServer(t, origin.Options{})
	r := probeModule(t, builtinModules["advanced"], urlTarget(ts.URL+origin.Path), probeTimeout)
	checkReason(t, r, ReasonOK)
	for p := range numPhases {
		phaseOf(t, r, p)
	}
	if d := phaseOf(t, r, PhaseConnect); d <= 0 {
		t.Errorf("connect phase %v, want > 0", d)
	}
	if d := phaseOf(t, r, PhaseProcessing); d <= 0 {
		t.Errorf("processing phase %v, want > 0", d)
	}
	if !r.HTTP || r.StatusCode != http.StatusOK || r.HTTPVersion != 1.1 {
		t.Errorf("HTTP %v, status %d, version %v; want true, 200, 1.1", r.HTTP, r.StatusCode, r.HTTPVersion)
	}
	if r.Drift == nil {
		t.Error("no drift")
	}
}

func TestTokenRingRemembers64Tokens(t *testing.T) {
	t.Parallel()
	st := &tokenRing{}
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

// hugeTokenOrigin answers like an origin whose tokens are size bytes
// long, each a fresh one unless repeat is set.
func hugeTokenOrigin(t testing.TB, size int, repeat *atomic.Bool) *httptest.Server {
	t.Helper()
	var n atomic.Int64
	return newServer(t, fakeOrigin(func(_ *http.Request, resp *origin.Response) {
		i := n.Load()
		if !repeat.Load() {
			i = n.Add(1)
		}
		suffix := strconv.FormatInt(i, 10)
		resp.Token = strings.Repeat("f", size-len(suffix)) + suffix
	}))
}

// TestProbeHugeTokens replays finding 9 of issue 13: an origin sending
// 1 MB tokens made the leaf keep the last 64 of them, 64 MB per origin
// (the heap went from 7 MB to 87 MB in 75 probes). The token ring now
// keeps a fixed-size digest of each: 75 probes leave the heap within
// 4 MiB of where it was, and a repeated 1 MB token is still recognised.
func TestProbeHugeTokens(t *testing.T) {
	// Not parallel: it measures the heap.
	const size, probes = 1_000_000, 75
	var repeat atomic.Bool
	ts := hugeTokenOrigin(t, size, &repeat)
	p := newTestProber()
	checkReason(t, probe(t, p, advanced(ts.URL+origin.Path), &oxcrossState{}), ReasonOK) // the client exists from now on

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	st := &oxcrossState{}
	for i := range probes {
		r := probe(t, p, advanced(ts.URL+origin.Path), st)
		if r.Reason != ReasonOK {
			t.Fatalf("probe %d: %s: %v", i, r.Reason, r.Err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	retained := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d probes of 1 MB tokens: heap %+.1f MiB after GC; the token ring is %d bytes", probes, float64(retained)/(1<<20), unsafe.Sizeof(*st))
	if retained > 4<<20 {
		t.Errorf("heap grew by %.1f MiB over %d probes of 1 MB tokens, want under 4 MiB", float64(retained)/(1<<20), probes)
	}
	// The last token, sent again, is a cached answer.
	repeat.Store(true)
	checkReason(t, probe(t, p, advanced(ts.URL+origin.Path), st), ReasonCached)
	runtime.KeepAlive(st)
}

// BenchmarkProbeHugeTokens probes an origin sending 1 MB tokens with one
// token ring: what it retains stays at the ring's fixed size whatever
// b.N (retained-B: the heap after GC minus before).
func BenchmarkProbeHugeTokens(b *testing.B) {
	var repeat atomic.Bool
	ts := hugeTokenOrigin(b, 1_000_000, &repeat)
	p := newTestProber()
	tg, m := advanced(ts.URL+origin.Path), builtinModules["advanced"]
	run := func(st *oxcrossState) {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		if r := p.Probe(ctx, &tg, &m, st); r.Reason != ReasonOK {
			b.Fatalf("%s: %v", r.Reason, r.Err)
		}
	}
	run(&oxcrossState{})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	st := &oxcrossState{}
	b.ResetTimer()
	for b.Loop() {
		run(st)
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)), "retained-B")
	b.ReportMetric(float64(unsafe.Sizeof(*st)), "ring-B")
	runtime.KeepAlive(st)
}

func BenchmarkTokenRing(b *testing.B) {
	for _, size := range []int{32, 1_000_000} {
		b.Run(strconv.Itoa(size)+"B", func(b *testing.B) {
			tokens := make([]string, 128)
			for i := range tokens {
				tokens[i] = strings.Repeat("f", size-4) + fmt.Sprintf("%04d", i)
			}
			st := &tokenRing{}
			b.SetBytes(int64(size))
			i := 0
			for b.Loop() {
				st.seen(tokens[i%len(tokens)])
				i++
			}
		})
	}
}

// TestProbeAbsurdDrift replays finding 14 of issue 13: an origin claiming
// a time 234 years away made a successful probe with a drift of 7.4e9 s.
// An answer whose server_time, received_unix_nano or sent_unix_nano is
// more than a year from the leaf's clock now fails as invalid_response,
// through the scheduler's probes and /probe alike; a year's drift less a
// day is still a drift.
func TestProbeAbsurdDrift(t *testing.T) {
	t.Parallel()
	year := 365 * 24 * time.Hour
	endpoint := probeEndpoint(t, newProbeHandler())
	for _, tc := range []struct {
		name string
		edit func(*origin.Response)
		// real: the real origin handler with its clock this far off.
		real time.Duration
		want Reason
	}{
		{name: "origin clock 234 years ahead", real: time.Until(time.Now().AddDate(234, 0, 0)), want: ReasonInvalidResponse},
		{name: "origin clock 100 years behind", real: -100 * year, want: ReasonInvalidResponse},
		{name: "origin clock a year and a day ahead", real: year + 24*time.Hour, want: ReasonInvalidResponse},
		{name: "origin clock a year less a day behind", real: -year + 24*time.Hour, want: ReasonOK},
		{name: "legacy origin 234 years ahead", edit: func(r *origin.Response) {
			*r = origin.Response{ServerTime: time.Now().AddDate(234, 0, 0).UTC().Format(time.RFC3339), Token: r.Token}
		}, want: ReasonInvalidResponse},
		{name: "legacy origin at year 9999", edit: func(r *origin.Response) {
			*r = origin.Response{ServerTime: "9999-12-31T23:59:59Z", Token: r.Token}
		}, want: ReasonInvalidResponse},
		{name: "only received_unix_nano absurd", edit: func(r *origin.Response) { r.ReceivedUnixNano = math.MaxInt64 }, want: ReasonInvalidResponse},
		{name: "only sent_unix_nano absurd", edit: func(r *origin.Response) { r.SentUnixNano = 1 }, want: ReasonInvalidResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ts *httptest.Server
			if tc.edit != nil {
				ts = newServer(t, fakeOrigin(func(_ *http.Request, r *origin.Response) { tc.edit(r) }))
			} else {
				ts = newOriginServer(t, origin.Options{Now: func() time.Time { return time.Now().Add(tc.real) }})
			}
			r := probe(t, newTestProber(), advanced(ts.URL+origin.Path), &oxcrossState{})
			checkReason(t, r, tc.want)
			if tc.want == ReasonOK {
				if err := abs(r.Drift.Offset - tc.real); err > 50*time.Millisecond {
					t.Errorf("offset %v, want %v ± 50ms", r.Drift.Offset, tc.real)
				}
			} else if !strings.Contains(r.Err.Error(), "more than a year from the leaf's clock") {
				t.Errorf("error %q does not say the time is more than a year off", r.Err)
			}
			a := getProbe(t, endpoint, ts.URL+origin.Path, "advanced", "")
			a.wantProbe(t, tc.want)
			if _, ok := a.value("probe_oxcross_time_drift_seconds"); ok != (tc.want == ReasonOK) {
				t.Errorf("/probe answers a drift: %v, want %v", ok, tc.want == ReasonOK)
			}
		})
	}
}

// TestOxcrossClockFilterSamples: a module's clock_filter_samples is the
// filter's K; a scheduled origin's probe has the filter's estimate, a
// one-off probe (no state) only its exchange.
func TestOxcrossClockFilterSamples(t *testing.T) {
	t.Parallel()
	ts := newOriginServer(t, origin.Options{})
	p := newTestProber()
	tg := advanced(ts.URL + origin.Path)
	for _, tc := range []struct {
		k    *int
		want []int // samples kept after each probe
	}{
		{nil, []int{1, 2, 3}},
		{new(1), []int{1, 1, 1}},
		{new(2), []int{1, 2, 2}},
	} {
		m := config.Module{Kind: "oxcross", Settings: &OxcrossSettings{ClockFilterSamples: tc.k}}
		st := p.newState(&m)
		for i, want := range tc.want {
			ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
			r := p.Probe(ctx, &tg, &m, st)
			cancel()
			checkReason(t, r, ReasonOK)
			if r.Filtered == nil || r.Filtered.Samples != want {
				t.Fatalf("K %v, probe %d: filtered %+v, want %d samples", tc.k, i, r.Filtered, want)
			}
			if tc.k != nil && *tc.k == 1 && (r.Filtered.Offset != r.Drift.Offset || r.Filtered.Bound != r.Drift.Uncertainty) {
				t.Errorf("K 1, probe %d: filtered %+v, want the exchange %+v", i, r.Filtered, r.Drift)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		r := p.Probe(ctx, &tg, &m, nil)
		cancel()
		if checkReason(t, r, ReasonOK); r.Drift == nil || r.Filtered != nil {
			t.Errorf("one-off probe: drift %v, filtered %v; want only the exchange", r.Drift, r.Filtered)
		}
	}
}
