package prober

import (
	"bytes"
	"context"
	"crypto/rand"
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
		SettingsKey: "http", NewSettings: func() config.Settings { return &HTTPSettings{} },
	}
}

// NewState keeps the last tokens an origin sent, to recognise a cached
// answer that repeats one.
func (k *oxcrossKind) NewState() any { return &tokenRing{} }

func (k *oxcrossKind) Probe(ctx context.Context, p *Params, r *Result) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	nonce := hex.EncodeToString(b[:])
	a, ok := k.http.request(ctx, p, addNonce(p.Target.URL, nonce), r)
	if !ok {
		return
	}
	seen, _ := p.State.(*tokenRing)
	d, reason, err := checkOxcross(a.body, nonce, seen, a.wrote, a.firstByte)
	if err != nil {
		r.fail(reason, err)
		return
	}
	r.Drift = &d
	r.Success = true
}

// tokenRing holds the last tokens an origin sent.
type tokenRing struct {
	tokens [64]string
	next   int
}

// seen reports whether token is among the last ones, and remembers it.
func (s *tokenRing) seen(token string) bool {
	for _, t := range s.tokens {
		if t == token {
			return true
		}
	}
	s.tokens[s.next] = token
	s.next = (s.next + 1) % len(s.tokens)
	return false
}

// checkOxcross validates an /oxcross answer and estimates the drift.
func checkOxcross(body []byte, nonce string, st *tokenRing, wrote, firstByte time.Time) (Drift, Reason, error) {
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
