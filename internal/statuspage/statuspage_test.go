package statuspage_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/statuspage"
	"github.com/oxcross/oxcross/prober"
	"github.com/oxcross/oxcross/push"
)

// TestLeafConfigSource: the leaf's page shows a config URL without its
// password, and a config file's path as it is, '@' and all.
func TestLeafConfigSource(t *testing.T) {
	for source, want := range map[string]string{
		"https://leaf:S3CRET@cs.example:9300/config?leaf_id=a": "config from https://leaf:xxxxx@cs.example:9300/config?leaf_id=a",
		"/etc/oxcross/edge@ams.yaml":                           "config from /etc/oxcross/edge@ams.yaml",
	} {
		var b bytes.Buffer
		if err := statuspage.RenderLeaf(&b, statuspage.Leaf{ID: "a", ConfigSource: source, Ready: errors.New("no config yet"), Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), want) || strings.Contains(b.String(), "S3CRET") {
			t.Errorf("page for source %q lacks %q:\n%s", source, want, b.String())
		}
	}
}

// TestLeafClockAndDrift: the page says how good the leaf's own clock is,
// and shows an origin's filtered drift, its bound at the page's time, and
// the last exchange's.
func TestLeafClockAndDrift(t *testing.T) {
	now := time.Now()
	last := prober.Result{
		Success:  true,
		Drift:    &prober.Drift{Offset: -9 * time.Millisecond, Uncertainty: 20 * time.Millisecond},
		Filtered: &prober.FilteredDrift{Offset: time.Millisecond, Bound: 4 * time.Millisecond, At: now.Add(-1000 * time.Second), Samples: 8},
	}
	tg := &config.Target{ID: "o", URL: "http://o.example/oxcross", Module: "advanced", Interval: time.Second}
	for _, tc := range []struct {
		clock *prober.LeafClock
		want  []string
	}{
		{&prober.LeafClock{Synchronized: true, MaxError: 12 * time.Millisecond, EstimatedError: 500 * time.Microsecond},
			[]string{"synchronized", "maximum error 12.00 ms", "estimated error 0.50 ms", "1.00 ms ± 19.00 ms", "last exchange -9.00 ms · filter of 8"}},
		{&prober.LeafClock{MaxError: 16 * time.Second, EstimatedError: 16 * time.Second}, []string{"not synchronized", "maximum error 16000.00 ms"}},
		{nil, []string{"unknown (read from the kernel on Linux only)"}},
	} {
		var b bytes.Buffer
		page := statuspage.Leaf{ID: "a", Clock: tc.clock, Now: now, Origins: []prober.OriginStatus{{Target: tg, Probed: true, Last: last, LastAt: now}}}
		if err := statuspage.RenderLeaf(&b, page); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("clock %+v: page lacks %q:\n%s", tc.clock, w, b.String())
			}
		}
	}
}

// TestLeafPush: the page shows each remote-write URL's state, without the
// password of its URL.
func TestLeafPush(t *testing.T) {
	now := time.Now()
	page := statuspage.Leaf{ID: "a", Now: now, Push: []push.Status{
		{URL: "https://u:S3CRET@mimir.example/api/v1/push", Protocol: "1.0", Queued: 12, QueueMax: 500, Sent: 900, LastSuccess: now.Add(-3 * time.Second)},
		{URL: "http://down.example/api/v1/write", Protocol: "2.0", Failing: true, LastError: "server returned HTTP status 503", LastErrorAt: now,
			Dropped: map[string]uint64{push.ReasonQueueFull: 40}},
	}}
	var b bytes.Buffer
	if err := statuspage.RenderLeaf(&b, page); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"https://u:xxxxx@mimir.example/api/v1/push", "remote write 1.0", "12 <span class=\"muted\">of 500</span>", "<td>900</td>",
		"failing", "server returned HTTP status 503", "queue_full: 40", "remote write 2.0"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("page lacks %q:\n%s", w, b.String())
		}
	}
	if strings.Contains(b.String(), "S3CRET") {
		t.Error("page shows the password")
	}
}
