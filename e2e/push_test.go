package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/internal/testutil"
)

// promAPI is a Prometheus' HTTP API at addr, with the header (name, value
// pairs) its web config wants.
type promAPI struct {
	addr   string
	header []string
}

// promSamples returns the raw samples (milliseconds, value) of the one
// series a range selector query selects at time at, and how many series
// it selected.
func promSamples(t *testing.T, api promAPI, query string, at time.Time) ([][2]float64, int, error) {
	t.Helper()
	u := "http://" + api.addr + "/api/v1/query?query=" + url.QueryEscape(query) + "&time=" + strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)
	resp, err := testutil.TryDo(nil, http.MethodGet, u, "", api.header...)
	if err != nil {
		return nil, 0, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &r); err != nil {
		return nil, 0, fmt.Errorf("%s: %w: %s", query, err, resp.Body)
	}
	if r.Status != "success" {
		return nil, 0, fmt.Errorf("query %s: %s %s", query, r.Status, r.Error)
	}
	if len(r.Data.Result) != 1 {
		return nil, len(r.Data.Result), nil
	}
	var out [][2]float64
	for _, v := range r.Data.Result[0].Values {
		ts, _ := v[0].(float64)
		s, _ := v[1].(string)
		f, _ := strconv.ParseFloat(s, 64)
		out = append(out, [2]float64{ts * 1000, f})
	}
	return out, 1, nil
}

// promCount is how many series an instant query at time at returns (now
// when at is zero).
func promCount(t *testing.T, api promAPI, query string, at time.Time) int {
	t.Helper()
	q := query
	if !at.IsZero() {
		q = fmt.Sprintf("%s&time=%.3f", url.QueryEscape(query), float64(at.UnixMilli())/1000)
	} else {
		q = url.QueryEscape(query)
	}
	resp, err := testutil.TryDo(nil, http.MethodGet, "http://"+api.addr+"/api/v1/query?query="+q, "", api.header...)
	if err != nil {
		return -1
	}
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if json.Unmarshal([]byte(resp.Body), &r) != nil || r.Status != "success" {
		t.Logf("query %s: %s", query, resp.Body)
		return -1
	}
	return len(r.Data.Result)
}

// maxGap is the longest time between two consecutive samples.
func maxGap(samples [][2]float64) time.Duration {
	var gap float64
	for i := 1; i < len(samples); i++ {
		gap = max(gap, samples[i][0]-samples[i-1][0])
	}
	return time.Duration(gap * float64(time.Millisecond))
}

// TestPushToPrometheus runs two standalone leaves that push by remote
// write to Debian's Prometheus (its remote-write receiver, native
// histograms on), started by the test:
//   - the probe histogram (native and classic), counters and drift are
//     queryable with the leaf_id and external labels;
//   - Prometheus is stopped for 30 s and restarted: the leaf with the
//     default queue delivers what it held, with no gap in its samples; the
//     leaf with a small queue drops, counted with reason queue_full;
//   - an origin removed from the config leaves instant queries one push
//     interval after its last sample, by its stale marker, not 5 minutes
//     later by the lookback;
//   - a stopped leaf's series leave instant queries at once.
func TestPushToPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Prometheus and waits 30 s through its outage")
	}
	const interval = time.Second
	dir := t.TempDir()
	op := testutil.FreePort(t)
	originAddr := fmt.Sprintf("127.0.0.1:%d", op)
	start(t, "oxcross-origin", nil, "--web.listen-address="+originAddr)
	waitHealthy(t, originAddr)

	promAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	promConfig := filepath.Join(dir, "prometheus.yml")
	testutil.WriteFile(t, promConfig, "global:\n  evaluation_interval: 1h\n")
	// Basic auth on the receiver: the leaves' --push.http-client-file
	// must send it.
	const pushPassword, testPassword = "push-secret", "test-secret"
	promWeb := filepath.Join(dir, "prometheus-web.yml")
	testutil.WriteFile(t, promWeb, fmt.Sprintf("basic_auth_users:\n  pusher: %s\n  test: %s\n", bcryptHash(t, pushPassword), bcryptHash(t, testPassword)))
	api := promAPI{addr: promAddr, header: basicAuth("test", testPassword)}
	pushPasswordFile := filepath.Join(dir, "push.password")
	testutil.WriteFile(t, pushPasswordFile, pushPassword+"\n")
	pushClient := filepath.Join(dir, "push-client.yml")
	testutil.WriteFile(t, pushClient, "basic_auth:\n  username: pusher\n  password_file: "+pushPasswordFile+"\n")
	promArgs := []string{"--config.file=" + promConfig, "--storage.tsdb.path=" + filepath.Join(dir, "tsdb"), "--web.config.file=" + promWeb,
		"--web.listen-address=" + promAddr, "--web.enable-remote-write-receiver", "--enable-feature=native-histograms"}
	prom := startPrometheus(t, promArgs...)
	promReady := func() {
		testutil.EventuallyReason(t, 60*time.Second, "Prometheus ready", func() string {
			resp, err := testutil.TryDo(nil, http.MethodGet, "http://"+promAddr+"/-/ready", "", api.header...)
			if err != nil {
				return err.Error()
			}
			if resp.Code != http.StatusOK {
				return resp.Body
			}
			return ""
		})
	}
	promReady()
	if r := testutil.Do(t, nil, http.MethodPost, "http://"+promAddr+"/api/v1/write", ""); r.Code != http.StatusUnauthorized {
		t.Fatalf("remote write without credentials: %d, want 401: the test would not show that --push.http-client-file is used", r.Code)
	}

	cfg := filepath.Join(dir, "config.yaml")
	config := func(withGone bool) string {
		s := fmt.Sprintf("interval: 500ms\ntimeout: 400ms\norigins:\n  - name: keep\n    url: http://%s\n    mode: advanced\n", originAddr)
		if withGone {
			s += fmt.Sprintf("  - name: gone\n    url: http://%s/healthz\n    mode: simple\n", originAddr)
		}
		return s
	}
	testutil.WriteFile(t, cfg, config(true))
	write := "http://" + promAddr + "/api/v1/write"
	leaf := func(id string, args ...string) (*proc, string) {
		addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
		p := start(t, "oxcross-leaf", nil, append([]string{"--web.listen-address=" + addr, "--leaf.id=" + id, "--config.file=" + cfg,
			"--config.watch-interval=100ms", "--config.min-interval=100ms", "--push.url=" + write, "--push.interval=" + interval.String(), "--push.http-client-file=" + pushClient, "--leaf.label=region=test"}, args...)...)
		waitHealthy(t, addr)
		return p, addr
	}
	big, bigAddr := leaf("leaf-push", "--push.label=cluster=e2e")
	const smallQueue = 600
	_, smallAddr := leaf("leaf-small", fmt.Sprintf("--push.queue-max-samples=%d", smallQueue))

	// (a) What a scrape would give, pushed: the native histogram, its
	// classic buckets, counters and drift, with the external labels.
	sel := `leaf_id="leaf-push",origin_id="keep",job="oxcross-leaf",region="test",cluster="e2e"`
	for _, q := range []string{
		`histogram_count(oxcross_leaf_probe_timings{` + sel + `}) > 0`,
		`oxcross_leaf_probe_timings_bucket{` + sel + `,le="+Inf"} > 0`,
		`oxcross_leaf_probe_results{` + sel + `,result="true"} > 0`,
		`oxcross_leaf_origin_time_drift{` + sel + `}`,
		`oxcross_leaf_push_samples_sent_total{leaf_id="leaf-push"} > 0`,
	} {
		testutil.EventuallyReason(t, 30*time.Second, q, func() string {
			if n := promCount(t, api, q, time.Time{}); n < 1 {
				return fmt.Sprintf("%d series", n)
			}
			return ""
		})
	}
	leafMetric := func(addr, name string, labels ...string) float64 {
		v, _ := testutil.LookupMetric(t, scrape(t, addr), name, labels...)
		return v
	}
	t.Logf("leaf-push: %d series in Prometheus (a native histogram counts as one), %d of them of origin keep (advanced), %d of origin gone (simple)",
		promCount(t, api, `{leaf_id="leaf-push"}`, time.Time{}), promCount(t, api, `{leaf_id="leaf-push",origin_id="keep"}`, time.Time{}),
		promCount(t, api, `{leaf_id="leaf-push",origin_id="gone"}`, time.Time{}))

	// (c) An origin removed from the config: its last sample, then its
	// stale marker one push later.
	goneSel := `{leaf_id="leaf-push",origin_id="gone"}`
	testutil.EventuallyReason(t, 30*time.Second, "gone pushed", func() string {
		if n := promCount(t, api, "oxcross_leaf_origin_status"+goneSel, time.Time{}); n != 1 {
			return fmt.Sprintf("%d series", n)
		}
		return ""
	})
	edited := time.Now()
	testutil.WriteFile(t, cfg, config(false))
	testutil.EventuallyReason(t, 30*time.Second, "gone leaves instant queries", func() string {
		if n := promCount(t, api, "oxcross_leaf_origin_status"+goneSel, time.Time{}); n != 0 {
			return fmt.Sprintf("%d series", n)
		}
		return ""
	})
	goneAfter := time.Since(edited)
	samples, _, err := promSamples(t, api, "oxcross_leaf_origin_status"+goneSel+"[1m]", time.Now())
	if err != nil || len(samples) == 0 {
		t.Fatalf("gone's samples: %v, %v", samples, err)
	}
	last := time.UnixMilli(int64(samples[len(samples)-1][0]))
	for _, family := range []string{"oxcross_leaf_origin_status", "oxcross_leaf_probe_timings", "oxcross_leaf_probe_timings_count"} {
		if n := promCount(t, api, family+goneSel, last.Add(interval/2)); n != 1 {
			t.Errorf("%s of gone: %d series half a push interval after its last sample, want 1 (the lookback)", family, n)
		}
		if n := promCount(t, api, family+goneSel, last.Add(interval+interval/2)); n != 0 {
			t.Errorf("%s of gone: %d series one push interval after its last sample, want 0 (stale marker)", family, n)
		}
	}
	t.Logf("origin removed: gone from instant queries %v after the config edit; last sample at %s, absent from %s on",
		goneAfter.Round(time.Millisecond), last.Format("15:04:05.000"), last.Add(interval+interval/2).Format("15:04:05.000"))

	steadyBytes, steadySent := leafMetric(bigAddr, "oxcross_leaf_push_sent_bytes_total"), leafMetric(bigAddr, "oxcross_leaf_push_samples_sent_total")
	t.Logf("on the wire before the outage (remote write 1.0, snappy, one push of every series a request): %v bytes for %v samples, %.2f bytes per sample",
		steadyBytes, steadySent, steadyBytes/steadySent)

	// (b) The receiver down for 30 s.
	keep := `oxcross_leaf_origin_status{leaf_id="%s",origin_id="keep"}`
	down := time.Now()
	if err := prom.stop(t); err != nil {
		t.Fatalf("stopping Prometheus: %v", err)
	}
	const outage = 30 * time.Second
	testutil.Eventually(t, 2*outage, "small queue full", func() bool {
		return leafMetric(smallAddr, "oxcross_leaf_push_samples_dropped_total", "reason", "queue_full") > 0
	})
	// Wait out the outage, reading the queues as they grow.
	var bigQueued, smallQueued float64
	testutil.Eventually(t, 2*outage, "30 s outage", func() bool {
		bigQueued = max(bigQueued, leafMetric(bigAddr, "oxcross_leaf_push_queue_samples"))
		smallQueued = max(smallQueued, leafMetric(smallAddr, "oxcross_leaf_push_queue_samples"))
		return time.Since(down) >= outage
	})
	if smallQueued > smallQueue {
		t.Errorf("small queue held %v samples, over its bound %d", smallQueued, smallQueue)
	}
	startPrometheus(t, promArgs...)
	up := time.Now()
	promReady()
	testutil.EventuallyReason(t, 60*time.Second, "queues delivered", func() string {
		for _, a := range []string{bigAddr, smallAddr} {
			if q := leafMetric(a, "oxcross_leaf_push_queue_samples"); q > 0 {
				return fmt.Sprintf("%s still queues %v", a, q)
			}
			if ts := leafMetric(a, "oxcross_leaf_push_last_success_timestamp_seconds"); ts < float64(up.Unix()) {
				return a + ": no success since the restart"
			}
		}
		return ""
	})
	delivered := time.Since(up)
	window := time.Since(down) + 10*time.Second
	for _, id := range []string{"leaf-push", "leaf-small"} {
		samples, n, err := promSamples(t, api, fmt.Sprintf(keep, id)+fmt.Sprintf("[%ds]", int(window.Seconds())), time.Now())
		if err != nil || n != 1 {
			t.Fatalf("%s: %d series, %v", id, n, err)
		}
		var inOutage int
		for _, s := range samples {
			if at := time.UnixMilli(int64(s[0])); at.After(down) && at.Before(up) {
				inOutage++
			}
		}
		gap := maxGap(samples)
		t.Logf("%s: %d samples of %s over the last %v, %d of them timed in the %v outage; longest gap between samples %v",
			id, len(samples), fmt.Sprintf(keep, id), window.Round(time.Second), inOutage, up.Sub(down).Round(time.Millisecond), gap)
		if id == "leaf-push" {
			if gap > 2*interval+interval/2 {
				t.Errorf("leaf-push: a gap of %v in its samples across the outage, want none over %v", gap, 2*interval)
			}
			if want := int(up.Sub(down)/interval) - 2; inOutage < want {
				t.Errorf("leaf-push: %d samples timed in the outage, want at least %d", inOutage, want)
			}
		}
	}
	bigSent, bigRetried := leafMetric(bigAddr, "oxcross_leaf_push_samples_sent_total"), leafMetric(bigAddr, "oxcross_leaf_push_samples_retried_total")
	bigDropped := leafMetric(bigAddr, "oxcross_leaf_push_samples_dropped_total", "reason", "queue_full")
	smallDropped := leafMetric(smallAddr, "oxcross_leaf_push_samples_dropped_total", "reason", "queue_full")
	t.Logf("outage %v; delivered %v after the restart; leaf-push: queue peaked at %v samples, dropped %v, retried %v, sent %v in all; leaf-small (bound %d): queue peaked at %v, dropped %v (reason queue_full)",
		up.Sub(down).Round(time.Millisecond), delivered.Round(time.Millisecond), bigQueued, bigDropped, bigRetried, bigSent, smallQueue, smallQueued, smallDropped)
	if bigDropped != 0 {
		t.Errorf("leaf-push dropped %v samples with the default queue", bigDropped)
	}
	if smallDropped == 0 {
		t.Error("leaf-small dropped nothing with a queue of 600 samples through a 30 s outage")
	}
	bytes := leafMetric(bigAddr, "oxcross_leaf_push_sent_bytes_total")
	t.Logf("on the wire in all, the outage's backlog included: %v bytes for %v samples, %.2f bytes per sample", bytes, bigSent, bytes/bigSent)

	// The status page shows the push state.
	page := testutil.Do(t, nil, http.MethodGet, "http://"+bigAddr+"/", "").Body
	for _, want := range []string{"Push (remote write)", write, "remote write 1.0", `<span class="up">ok</span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("leaf-push's status page lacks %q", want)
		}
	}
	page = testutil.Do(t, nil, http.MethodGet, "http://"+smallAddr+"/", "").Body
	if !strings.Contains(page, "queue_full: ") {
		t.Error("leaf-small's status page does not show its drops")
	}

	// A stopped leaf marks all its series stale on its way out.
	if err := big.stop(t); err != nil {
		t.Errorf("leaf exit: %v", err)
	}
	stopped := time.Now()
	if n := promCount(t, api, `{leaf_id="leaf-push"}`, stopped.Add(time.Second)); n != 0 {
		t.Errorf("%d series of the stopped leaf still in instant queries a second after it stopped", n)
	}
	if n := promCount(t, api, `{leaf_id="leaf-push"}`, stopped.Add(-2*time.Second)); n == 0 {
		t.Error("no series of leaf-push before it stopped: the check above proves nothing")
	}
}

// TestPushFlagsRefused: a leaf with a bad --push.* flag does not start,
// and says which flag and why.
func TestPushFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	testutil.WriteFile(t, cfg, "origins:\n  - url: http://127.0.0.1:9/\n    mode: simple\n")
	clientFile := filepath.Join(dir, "client.yml")
	testutil.WriteFile(t, clientFile, "basic_auth: [not, a, mapping]\n")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--push.url=ftp://u:hidden@example/w"}, []string{"ftp://u:xxxxx@example/w", "want http:// or https://"}},
		{[]string{"--push.url=http://example/w", "--push.label=leaf_id=x"}, []string{"--push.label", "leaf_id is always the leaf's id"}},
		{[]string{"--push.url=http://example/w", "--push.label=nolabel"}, []string{"--push.label", "nolabel", "want NAME=VALUE"}},
		{[]string{"--push.url=http://example/w", "--push.interval=1ms"}, []string{"push interval 1ms: want at least 100ms"}},
		{[]string{"--push.url=http://example/w", "--push.queue-max-samples=-5"}, []string{"queue bound -5"}},
		{[]string{"--push.url=http://example/w", "--push.http-client-file=" + clientFile}, []string{"--push.http-client-file", "client.yml"}},
		{[]string{"--push.url=http://example/w", "--push.protocol=3.0"}, []string{"enum value must be one of 1.0,2.0, got '3.0'"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		args := append([]string{"--config.file=" + cfg, "--web.listen-address=127.0.0.1:0", "--leaf.id=flags"}, tc.args...)
		out, err := exec.CommandContext(ctx, filepath.Join(binDir, "oxcross-leaf"), args...).CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("oxcross-leaf %v: %v, want a failure:\n%.500s", tc.args, err, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("oxcross-leaf %v: the output lacks %q:\n%.500s", tc.args, w, out)
			}
		}
		if strings.Contains(string(out), "hidden") {
			t.Errorf("oxcross-leaf %v shows the password: %.500s", tc.args, out)
		}
	}
}
