package prober

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/origin"
)

// oxcrossKind is the oxcross kind (the original's advanced mode): the http
// kind's request to an oxcross-origin's /oxcross with a nonce, then the
// answer's token and nonce checked against caches and its timestamps
// turned into a clock drift estimate.
type oxcrossKind struct {
	http *httpKind
}

func newOxcrossKind() *oxcrossKind { return &oxcrossKind{http: newHTTPKind()} }

// Spec: kind oxcross, the built-in module advanced, URL targets always at
// /oxcross, the http kind's settings.
func (k *oxcrossKind) Spec() config.Kind {
	return config.Kind{
		Name: "oxcross", Builtin: "advanced", Target: config.TargetURL,
		DefaultPath: origin.Path, FixedPath: true,
		SettingsKey: "http", NewSettings: func() config.Settings { return &OxcrossSettings{} },
	}
}

// OxcrossSettings configure the oxcross kind, under a module's `http:` as
// the http kind's do: the http kind's settings and the oxcross kind's own.
type OxcrossSettings struct {
	HTTPSettings `yaml:",inline"`
	// ClockFilterSamples is how many of an origin's last exchanges the
	// clock filter keeps (K), 1 to 64; nil means DefaultClockFilterSamples.
	// 1 reports every exchange as it is.
	ClockFilterSamples *int `yaml:"clock_filter_samples,omitempty" json:"clock_filter_samples,omitempty"`
}

// Validate reports every problem of the settings.
func (o *OxcrossSettings) Validate() error {
	var errs []error
	if err := o.HTTPSettings.Validate(); err != nil {
		errs = append(errs, err)
	}
	if k := o.ClockFilterSamples; k != nil && (*k < 1 || *k > MaxClockFilterSamples) {
		errs = append(errs, fmt.Errorf("clock_filter_samples: %d is not between 1 and %d", *k, MaxClockFilterSamples))
	}
	return errors.Join(errs...)
}

// clockFilterSamples is m's K.
func clockFilterSamples(m *config.Module) int {
	if s, ok := m.Settings.(*OxcrossSettings); ok && s != nil && s.ClockFilterSamples != nil && *s.ClockFilterSamples > 0 {
		return *s.ClockFilterSamples
	}
	return DefaultClockFilterSamples
}

// oxcrossState is what the oxcross kind keeps of a scheduled origin: the
// last tokens it sent, to recognise a cached answer that repeats one, and
// the clock filter's last exchanges.
type oxcrossState struct {
	tokens tokenRing
	filter clockFilter
}

// NewState returns a scheduled origin's state: fixed-size, the token
// ring's 1 KiB and, from the first exchange on, K filter samples.
func (k *oxcrossKind) NewState() any { return &oxcrossState{} }

func (k *oxcrossKind) Probe(ctx context.Context, p *Params, r *Result) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	nonce := hex.EncodeToString(b[:])
	a, ok := k.http.request(ctx, p, addNonce(p.Target.URL, nonce), r)
	if !ok {
		return
	}
	st, _ := p.State.(*oxcrossState)
	var seen *tokenRing
	if st != nil {
		seen = &st.tokens
	}
	d, reason, err := checkOxcross(a.body, nonce, seen, a.wrote, a.firstByte)
	if err != nil {
		r.fail(reason, err)
		return
	}
	r.Drift = &d
	if st != nil {
		f := st.filter.add(d, a.firstByte, clockFilterSamples(p.Module))
		r.Filtered = &f
	}
	r.Success = true
}

// tokenRing remembers the last tokens an origin sent as digests: the
// first 128 bits of each token's SHA-256, so that its size is fixed
// (1 KiB) whatever the tokens' length, and two different tokens pass for
// one only by a collision of SHA-256 truncated to 128 bits (about 2^64
// tries to find one, and an origin could only fail its own probes with
// it).
type tokenRing struct {
	digests [64][16]byte
	n, next int
}

// seen reports whether token is among the last ones, and remembers it.
func (s *tokenRing) seen(token string) bool {
	sum := sha256.Sum256([]byte(token))
	var d [16]byte
	copy(d[:], sum[:])
	for _, t := range s.digests[:s.n] {
		if t == d {
			return true
		}
	}
	s.digests[s.next] = d
	s.next = (s.next + 1) % len(s.digests)
	s.n = min(s.n+1, len(s.digests))
	return false
}

// maxClockDistance is how far from the leaf's clock an origin's times may
// be: an answer beyond it is invalid, not a drift to export.
const maxClockDistance = 365 * 24 * time.Hour

// farFrom reports whether t is more than maxClockDistance from ref.
// time.Time.Sub saturates, so that no time overflows it.
func farFrom(t, ref time.Time) bool {
	d := t.Sub(ref)
	return d > maxClockDistance || d < -maxClockDistance
}

// checkOxcross validates an /oxcross answer and estimates the drift.
func checkOxcross(body []byte, nonce string, st *tokenRing, wrote, firstByte time.Time) (Drift, Reason, error) {
	var or origin.Response
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&or); err != nil {
		return Drift{}, ReasonInvalidResponse, fmt.Errorf("decoding /oxcross response: %w", err)
	}
	serverTime, err := time.Parse(time.RFC3339Nano, or.ServerTime)
	if err != nil || or.Token == "" {
		return Drift{}, ReasonInvalidResponse, fmt.Errorf("response lacks a server_time or token: %q %q", short(or.ServerTime), short(or.Token))
	}
	if wrote.IsZero() || firstByte.IsZero() {
		return Drift{}, ReasonError, errors.New("no request-written or first-byte timestamp")
	}
	for _, c := range []struct {
		name string
		t    time.Time
		set  bool
	}{
		{"server_time", serverTime, true},
		{"received_unix_nano", time.Unix(0, or.ReceivedUnixNano), or.ReceivedUnixNano != 0},
		{"sent_unix_nano", time.Unix(0, or.SentUnixNano), or.SentUnixNano != 0},
	} {
		if c.set && farFrom(c.t, wrote) {
			return Drift{}, ReasonInvalidResponse, fmt.Errorf("response's %s %s is more than a year from the leaf's clock (%s): not a clock to compare with",
				c.name, c.t.UTC().Format(time.RFC3339Nano), wrote.UTC().Format(time.RFC3339Nano))
		}
	}
	if (or.Nonce != "" && or.Nonce != nonce) || (st != nil && st.seen(or.Token)) {
		return Drift{}, ReasonCached, errors.New("response repeats a token or another request's nonce: served from a cache")
	}
	rtt := firstByte.Sub(wrote)
	if or.ReceivedUnixNano != 0 && or.SentUnixNano != 0 && or.Nonce == nonce {
		return EstimateDrift(wrote, time.Unix(0, or.ReceivedUnixNano), time.Unix(0, or.SentUnixNano), firstByte, rtt), ReasonOK, nil
	}
	return EstimateDriftLegacy(wrote, serverTime, firstByte, rtt), ReasonOK, nil
}

// short cuts a string from an answer to a length fit for an error
// message.
func short(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
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
