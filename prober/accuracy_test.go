package prober

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/oxcross/oxcross/internal/testutil"
	"github.com/oxcross/oxcross/origin"
)

// The drift estimate's accuracy end to end (drift.go, through the oxcross
// kind): a real origin behind testutil's delaying proxy, compared with the
// delays the proxy recorded.

// driftErrors probes an origin whose clock runs offset ahead, through a
// proxy with the given one-way delays, n times, and returns each
// estimate's error and uncertainty, and the exchange the proxy recorded
// for each probe: the delays it really added.
func driftErrors(t *testing.T, h http.Handler, offset, up, down time.Duration, n int) (errs, uncs []time.Duration, exchanges []testutil.Exchange) {
	t.Helper()
	ts := newServer(t, h)
	px := testutil.StartDelayProxy(t, ts.Listener.Addr().String(), up, down)
	p := newTestProber()
	tg, m := advanced("http://"+px.Addr()+origin.Path), builtinModules["advanced"]
	st := &tokenRing{}
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r := p.Probe(ctx, &tg, &m, st)
		cancel()
		if !r.Success || r.Drift == nil {
			t.Fatalf("probe through the proxy: %s %v", r.Reason, r.Err)
		}
		// Each probe opens one connection (no keep-alive) and has read
		// the response, so the proxy has recorded its request and the
		// response's first chunk.
		ex := px.Exchanges()
		if len(ex) != i+1 || len(ex[i].Request) == 0 || len(ex[i].Response) == 0 {
			t.Fatalf("after probe %d the proxy recorded %d exchanges (%+v), want %d, each with a request and a response", i, len(ex), ex, i+1)
		}
		errs = append(errs, r.Drift.Offset-offset)
		uncs = append(uncs, r.Drift.Uncertainty)
		exchanges = append(exchanges, ex[i])
	}
	return errs, uncs, exchanges
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestDriftAccuracy runs a real origin with its clock set ahead behind a
// proxy that adds delays: the estimate's error is the one NTP's symmetric
// assumption must make, (up - down) / 2 for the one-way delays up and
// down, within a couple of milliseconds, and stays within the uncertainty
// it reports. The delays are those the proxy recorded, not the ones it was
// asked for: on a busy machine it forwards late, by different amounts
// each way.
func TestDriftAccuracy(t *testing.T) {
	const offset = 1234 * time.Millisecond
	h, err := origin.NewHandler(origin.Options{Now: func() time.Time { return time.Now().Add(offset) }})
	if err != nil {
		t.Fatal(err)
	}
	// check compares each probe's error with the one its real delays
	// imply and returns those implied errors.
	check := func(t *testing.T, errs, uncs []time.Duration, exchanges []testutil.Exchange, tolerance time.Duration) (implied []time.Duration) {
		t.Helper()
		var residuals []time.Duration
		for i, e := range errs {
			ex := exchanges[i]
			implied = append(implied, ex.OffsetError())
			residuals = append(residuals, e-implied[i])
			t.Logf("probe %d: delays %v up, %v down: error %v, implied %v, uncertainty %v", i, ex.UpDelay(), ex.DownDelay(), e, implied[i], uncs[i])
			if abs(e) > uncs[i] {
				t.Errorf("probe %d: error %v exceeds the uncertainty %v", i, e, uncs[i])
			}
			// The uncertainty is half the round trip outside the origin:
			// at least the mean of the proxy's delays, and not much more
			// (the rest is loopback and the two hosts' scheduling).
			oneWay := (ex.UpDelay() + ex.DownDelay()) / 2
			if uncs[i] < oneWay-time.Millisecond || uncs[i] > oneWay+15*time.Millisecond {
				t.Errorf("probe %d: uncertainty %v, want about the mean one-way delay %v", i, uncs[i], oneWay)
			}
		}
		if m := median(residuals); abs(m) > tolerance {
			t.Errorf("median error minus the error the real delays imply: %v, want within %v (errors %v, implied %v)", m, tolerance, errs, implied)
		}
		return implied
	}
	t.Run("symmetric", func(t *testing.T) {
		errs, uncs, exchanges := driftErrors(t, h, offset, 25*time.Millisecond, 25*time.Millisecond, 7)
		check(t, errs, uncs, exchanges, 2*time.Millisecond)
	})
	t.Run("asymmetric", func(t *testing.T) {
		up, down := 5*time.Millisecond, 45*time.Millisecond
		errs, uncs, exchanges := driftErrors(t, h, offset, up, down, 7)
		implied := check(t, errs, uncs, exchanges, 3*time.Millisecond)
		// What NTP's symmetric assumption must get wrong, about (5ms -
		// 45ms) / 2: far enough from zero that an estimator with the
		// asymmetry's sign flipped, or none, fails the check above.
		if m := median(implied); m > -10*time.Millisecond {
			t.Errorf("median implied error %v: the proxy's delays were not asymmetric as asked (%v up, %v down)", m, up, down)
		}
	})
}

// TestDriftAccuracyLegacyOrigin: the original origin sends server_time
// with whole seconds only; the estimate falls back to the round trip's
// midpoint, widened by the truncation, and still contains the truth.
func TestDriftAccuracyLegacyOrigin(t *testing.T) {
	const offset = -2345 * time.Millisecond
	legacy := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"server_time": time.Now().Add(offset).UTC().Truncate(time.Second).Format(time.RFC3339),
			"token":       randomToken(),
		})
	})
	errs, uncs, _ := driftErrors(t, legacy, offset, 10*time.Millisecond, 10*time.Millisecond, 5)
	for i, e := range errs {
		if abs(e) > uncs[i] {
			t.Errorf("probe %d: error %v exceeds the uncertainty %v", i, e, uncs[i])
		}
		if uncs[i] < 500*time.Millisecond {
			t.Errorf("probe %d: uncertainty %v does not include the half second of truncation", i, uncs[i])
		}
	}
}
