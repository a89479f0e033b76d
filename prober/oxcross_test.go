package prober

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

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
			st := &tokenRing{}
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
		if _, ok := st.(*tokenRing); ok != want || (!want && st != nil) {
			t.Errorf("module %s: state %T, want a *tokenRing: %v", module, st, want)
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
		st := &tokenRing{}
		checkReason(t, probe(t, p, advanced(ts.URL), st), ReasonOK)
		checkReason(t, probe(t, p, advanced(ts.URL), st), ReasonCached)
		// Another origin's state has not seen the token.
		checkReason(t, probe(t, p, advanced(ts.URL), &tokenRing{}), ReasonOK)
	})
	t.Run("repeated token, legacy origin", func(t *testing.T) {
		t.Parallel()
		ts := newServer(t, fakeOrigin(func(_ *http.Request, resp *origin.Response) {
			*resp = origin.Response{ServerTime: time.Now().UTC().Format(time.RFC3339), Token: "cafe"}
		}))
		st := &tokenRing{}
		checkReason(t, probe(t, p, advanced(ts.URL), st), ReasonOK)
		checkReason(t, probe(t, p, advanced(ts.URL), st), ReasonCached)
	})
	t.Run("wrong nonce", func(t *testing.T) {
		t.Parallel()
		ts := newServer(t, fakeOrigin(func(_ *http.Request, resp *origin.Response) { resp.Nonce = "0123456789abcdef" }))
		checkReason(t, probe(t, p, advanced(ts.URL), &tokenRing{}), ReasonCached)
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
			r := probe(t, p, advanced(ts.URL+origin.Path), &tokenRing{})
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
			st := &tokenRing{}
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
