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

// TestLeafSmokeChart: an origin probed with packet trains gets a
// SmokePing-style chart: per minute the range and middle half of its
// round trips as smoke, the median coloured by loss, and a red column for
// a minute without answers; the last result says how many packets were
// answered. An origin without trains has neither.
func TestLeafSmokeChart(t *testing.T) {
	now := time.Now()
	points := make([]prober.TrainPoint, prober.HistoryMinutes)
	// Minute 57: no loss; 58: 3 of 20 lost; 59: all lost.
	points[57] = prober.TrainPoint{Trains: 1, Sent: 20, Received: 20, Lo: 0.010, Q1: 0.012, Median: 0.014, Q3: 0.016, Hi: 0.040}
	points[58] = prober.TrainPoint{Trains: 1, Sent: 20, Received: 17, Lo: 0.011, Q1: 0.013, Median: 0.015, Q3: 0.018, Hi: 0.030}
	points[59] = prober.TrainPoint{Trains: 1, Sent: 20}
	smoke := prober.OriginStatus{
		Target: &config.Target{ID: "smoke", Address: "edge.example", Module: "edge_smoke", Interval: time.Minute},
		Probed: true, LastAt: now, Points: make([]prober.Point, prober.HistoryMinutes), Train: points,
		Last: prober.Result{Reason: prober.ReasonTimeout, Train: &prober.Train{Sent: 20}},
	}
	plain := prober.OriginStatus{
		Target: &config.Target{ID: "plain", URL: "http://plain.example/", Module: "simple", Interval: time.Minute},
		Probed: true, LastAt: now, Points: make([]prober.Point, prober.HistoryMinutes), Last: prober.Result{Success: true},
	}
	var b bytes.Buffer
	if err := statuspage.RenderLeaf(&b, statuspage.Leaf{ID: "a", Now: now, Origins: []prober.OriginStatus{smoke, plain}}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	rowOf := func(id string) string {
		_, row, ok := strings.Cut(page, `data-origin="`+id+`"`)
		if !ok {
			t.Fatalf("no row of origin %s:\n%s", id, page)
		}
		row, _, _ = strings.Cut(row, "</tr>")
		return row
	}
	row := rowOf("smoke")
	for _, want := range []string{
		`<svg class="smoke" role="img" aria-label="packet trains, last hour: median 15.0 ms, loss 38.3%"`,
		"0/20 packets answered",
		`fill="#1a7f37"`, // minute 57's median: no loss
		`fill="#bf8700"`, // minute 58's: 15% lost
		`>40.0 ms</text>`,
	} {
		if !strings.Contains(row, want) {
			t.Errorf("smoke row lacks %q:\n%s", want, row)
		}
	}
	// Each answered minute has its range and its middle half; the lost
	// minute a red column.
	for class, want := range map[string]int{"range": 2, "iqr": 2, "lost": 1, "median": 2} {
		_, g, _ := strings.Cut(row, `<g class="`+class+`"`)
		g, _, _ = strings.Cut(g, "</g>")
		if n := strings.Count(g, "<rect"); n != want {
			t.Errorf("smoke chart's %s: %d rectangles, want %d", class, n, want)
		}
	}
	if plainRow := rowOf("plain"); strings.Contains(plainRow, "smoke") || strings.Contains(plainRow, "packets answered") {
		t.Errorf("an origin without trains has a train chart:\n%s", plainRow)
	}
}

// TestLeafPaths: the page shows each path origin's last trace as a hop
// table: address, reverse name, loss and RTTs, "*" for a silent hop, and
// why a router stopped the trace.
func TestLeafPaths(t *testing.T) {
	now := time.Now()
	page := statuspage.Leaf{ID: "a", Now: now, Paths: []prober.PathView{
		{OriginID: "web-path", Target: "www.example:443", Probed: true, At: now, Method: "udp", Source: "10.0.0.2:40000", Reached: true, MTU: 1400, DurationSeconds: 0.012,
			Hops: []prober.HopView{
				{Hop: 1, Address: "10.0.0.1", Name: "gw.example", Sent: 3, Received: 2, Loss: 1.0 / 3, RTTMinSeconds: 0.001, RTTMedianSeconds: 0.0015},
				{Hop: 2, Sent: 3, Loss: 1},
				{Hop: 3, Address: "203.0.113.9", Sent: 3, Received: 3, RTTMinSeconds: 0.01, RTTMedianSeconds: 0.011, Final: "reached"},
			}},
		{OriginID: "blocked", Target: "b.example:443", Probed: true, At: now, Method: "tcp", Hops: []prober.HopView{
			{Hop: 1, Address: "10.0.0.1", Sent: 3, Received: 3, Final: "administratively prohibited"},
		}},
		{OriginID: "new", Target: "n.example:443"},
	}}
	var b bytes.Buffer
	if err := statuspage.RenderLeaf(&b, page); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		`<table class="path" data-origin="web-path">`, "path MTU 1400", "<td>10.0.0.1</td><td>gw.example</td><td>33% <span class=\"muted\">of 3</span></td><td>1.00 ms</td><td>1.50 ms</td>",
		`<td>2</td><td><span class="muted">*</span></td><td></td><td>100% <span class="muted">of 3</span></td><td></td><td></td>`,
		"<td>10.00 ms</td><td>11.00 ms</td>", `<span class="down">administratively prohibited</span>`, `<span class="down">not reached</span>`, "n.example:443 · pending",
	} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("page lacks %q:\n%s", w, b.String())
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

// TestConfigserverRegistryStore: the configserver's page says where the
// leaf registry lives: in memory, or in etcd with its endpoints (a password
// in them redacted), up or down with the reason, and how often it was
// listed.
func TestConfigserverRegistryStore(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name   string
		store  statuspage.RegistryStore
		want   []string
		absent []string
	}{
		{"memory (zero value)", statuspage.RegistryStore{}, []string{`data-kind="memory" data-up="true"`, "Registry: in memory (this configserver only)"}, []string{"etcd", "listed"}},
		{"memory", statuspage.RegistryStore{Kind: "memory"}, []string{`data-kind="memory"`, "in memory"}, []string{"etcd"}},
		{"etcd up", statuspage.RegistryStore{
			Kind: "etcd", Endpoints: []string{"https://etcd-1:2379", "https://oxcross:S3CRET@etcd-2:2379"}, Prefix: "/oxcross/registry/leaves/",
			Relists: 1, LastRelist: now.Add(-90 * time.Second),
		}, []string{
			`data-kind="etcd" data-up="true"`,
			"Registry: etcd https://etcd-1:2379, https://oxcross:xxxxx@etcd-2:2379 (prefix /oxcross/registry/leaves/)",
			`<span class="up">up</span> · listed 1 time, last 1m30s ago`,
		}, []string{"S3CRET", `class="down"`, "in memory"}},
		{"etcd down", statuspage.RegistryStore{
			Kind: "etcd", Endpoints: []string{"http://127.0.0.1:2379"}, Prefix: "/p/",
			Down: "no answer within 1s", DownSince: now.Add(-7 * time.Second), Relists: 3, LastRelist: now.Add(-time.Hour),
		}, []string{
			`data-kind="etcd" data-up="false"`,
			`<span class="down">down</span>, went down 7s ago: no answer within 1s; serving the last registry, registrations refused with 503`,
			"listed 3 times, last 1h0m0s ago",
		}, []string{`class="up"`}},
		{"etcd never listed", statuspage.RegistryStore{
			Kind: "etcd", Endpoints: []string{"http://127.0.0.1:2379"}, Prefix: "/p/",
			Down: "not listed from etcd yet", DownSince: now,
		}, []string{"went down 0s ago: not listed from etcd yet", "listed 0 times</p>"}, []string{", last"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := statuspage.RenderConfigserver(&b, statuspage.Configserver{File: "config.yaml", Store: tc.store, Now: now, Refresh: 15}); err != nil {
				t.Fatal(err)
			}
			page := b.String()
			for _, w := range tc.want {
				if !strings.Contains(page, w) {
					t.Errorf("page lacks %q:\n%s", w, page)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(page, a) {
					t.Errorf("page has %q:\n%s", a, page)
				}
			}
		})
	}
}
