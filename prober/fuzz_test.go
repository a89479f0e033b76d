package prober

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/oxcross/oxcross/origin"
)

// FuzzCheckOxcross: whatever an origin answers, the /oxcross parser ends
// with a reason from the fixed set, an error exactly when it fails, and a
// drift estimate whose uncertainty is not negative and whose offset has
// the sign of the true NTP formula (no overflow) and stays within a year
// and the round trip of the leaf's clock (a time further off is
// invalid_response), and a token it accepted once is refused as cached
// the second time.
func FuzzCheckOxcross(f *testing.F) {
	good, _ := json.Marshal(origin.Response{ServerTime: "2026-11-25T19:14:14.123456789Z", Token: "abc", Nonce: "n1", ReceivedUnixNano: 1795633454123400000, SentUnixNano: 1795633454123456789})
	f.Add(good, "n1", int64(1795633454123000000), uint32(1000000))
	f.Add([]byte(`{"server_time": "2026-11-25T19:14:14Z", "token": "t"}`), "n", int64(1795633454000000000), uint32(5000000))
	f.Add([]byte(`{"server_time": "x", "token": ""}`), "", int64(0), uint32(0))
	f.Add([]byte(`{"server_time": "2262-04-11T23:47:16.854775807Z", "token": "t", "nonce": "n", "received_unix_nano": 9223372036854775807, "sent_unix_nano": -9223372036854775808}`), "n", int64(0), uint32(1))
	f.Add([]byte(`{"server_time": "2026-11-25T19:14:14Z", "token": "t", "nonce": "other"}`), "n", int64(1), uint32(1))
	f.Add([]byte(`{"server_time": "2026-11-25T19:14:14Z", "token": "t", "nonce": "n", "received_unix_nano": 9000000000000000000, "sent_unix_nano": 9000000000000000000}`), "n", int64(-1000000000000000000), uint32(1))
	f.Add([]byte(`{"server_time": "9999-12-31T23:59:59Z", "token": "t"}`), "n", int64(0), uint32(1))
	f.Add([]byte(`{"server_time": "0001-01-01T00:00:00.5Z", "token": "t"}`), "n", int64(0), uint32(1))
	f.Add([]byte(`[1,2,3]`), "n", int64(1), uint32(1))
	f.Add([]byte(`{"server_time": "2026-11-25T19:14:14Z", "token": "t"} trailing`), "n", int64(1), uint32(1))
	f.Fuzz(func(t *testing.T, body []byte, nonce string, wroteNano int64, rttNano uint32) {
		wrote := time.Unix(0, wroteNano)
		firstByte := wrote.Add(time.Duration(rttNano))
		st := &tokenRing{}
		d, reason, err := checkOxcross(body, nonce, st, wrote, firstByte)
		if !slices.Contains(failureReasons, reason) && reason != ReasonOK {
			t.Fatalf("reason %q is not in the fixed set", reason)
		}
		if (err == nil) != (reason == ReasonOK) {
			t.Fatalf("reason %q with error %v", reason, err)
		}
		if reason != ReasonOK {
			return
		}
		if d.Uncertainty < 0 {
			t.Errorf("uncertainty %s is negative", d.Uncertainty)
		}
		if bound := maxClockDistance + time.Second + time.Duration(rttNano); d.Offset > bound || d.Offset < -bound {
			t.Errorf("offset %s is more than a year from the leaf's clock", d.Offset)
		}
		var or origin.Response
		_ = json.Unmarshal(body, &or)
		if or.ReceivedUnixNano != 0 && or.SentUnixNano != 0 && or.Nonce == nonce {
			// offset = ((t2 - t1) + (t3 - t4)) / 2, in floating point.
			want := (float64(or.ReceivedUnixNano) - float64(wroteNano) + float64(or.SentUnixNano) - float64(firstByte.UnixNano())) / 2
			if math.Abs(want) > float64(time.Second) && (want > 0) != (d.Offset > 0) {
				t.Errorf("offset %s has the wrong sign: the formula gives %.0fns", d.Offset, want)
			}
		} else if st, err := time.Parse(time.RFC3339Nano, or.ServerTime); err == nil {
			// The legacy estimate: server time minus the round trip's
			// middle.
			want := float64(st.Unix()-wrote.Unix())*1e9 + float64(st.Nanosecond()-wrote.Nanosecond()) - float64(rttNano)/2
			if math.Abs(want) > float64(time.Second) && (want > 0) != (d.Offset > 0) {
				t.Errorf("legacy offset %s has the wrong sign: the formula gives %.0fns", d.Offset, want)
			}
		}
		// The same answer again is a cached one.
		if _, reason, _ := checkOxcross(body, nonce, st, wrote, firstByte); reason != ReasonCached {
			t.Errorf("the same token twice: reason %q, want cached", reason)
		}
	})
}
