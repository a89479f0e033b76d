package statuspage_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/statuspage"
	"github.com/oxcross/oxcross/internal/testutil"
	"github.com/oxcross/oxcross/prober"
)

// The passwords of the test: the leaf's for the configserver, an
// origin's in its URL, and a wrong one.
const (
	leafPW   = "LEAF-PW-4c1d7"
	originPW = "ORIGIN-PW-9e2a3"
	wrongPW  = "WRONG-PW-0b5f1"
)

var secrets = []string{leafPW, originPW, wrongPW}

// newLogger logs everything, debug included, to a buffer.
func newLogger() (*slog.Logger, *testutil.SyncBuffer) {
	b := &testutil.SyncBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// requireAuth serves h to user with password only, as a web config's
// basic_auth_users does.
func requireAuth(user, password string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="oxcross"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// noSecret fails the test if text shows any of the test's passwords.
func noSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s shows the password %s:\n%s", what, s, text)
		}
	}
}

func gathered(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, f := range fams {
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// TestPasswordsInURLsStayInside replays issue 13, #6 over real sockets: a
// leaf follows a configserver at http://leaf:PW@127.0.0.1:port that wants
// basic auth, and probes an origin whose URL in the config carries its own
// password. Both passwords work (the leaf registers and gets its config,
// the origin is probed), and neither shows in the logs of either side, in
// errors (wrong password, configserver down, origin down), in the
// follower's Ready reason, on either status page, in /sd/origins or in
// the metrics: they appear as user:xxxxx@.
func TestPasswordsInURLsStayInside(t *testing.T) {
	kinds := prober.DefaultKinds(slog.New(slog.DiscardHandler))
	parser := kinds.Parser(config.Limits{MaxOrigins: 100})

	var probed atomic.Int64
	origin := httptest.NewServer(requireAuth("user", originPW, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		probed.Add(1)
	})))
	t.Cleanup(origin.Close)
	originURL, err := url.Parse(origin.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	originURL.User = url.UserPassword("user", originPW)

	// The configserver, behind basic auth.
	path := filepath.Join(t.TempDir(), "config.yaml")
	testutil.WriteFile(t, path, fmt.Sprintf("interval: 100ms\ntimeout: 90ms\norigins:\n  - {name: guarded, url: '%s', mode: simple}\n", originURL))
	csLog, csLogs := newLogger()
	csReg := prometheus.NewRegistry()
	cs, err := configserver.New(path, configserver.Options{Parser: parser}, csReg, csLog)
	if err != nil {
		t.Fatal(err)
	}
	csSrv := httptest.NewServer(requireAuth("leaf", leafPW, configserver.NewMux(cs)))
	t.Cleanup(csSrv.Close)
	base := "http://leaf:" + leafPW + "@" + csSrv.Listener.Addr().String()

	// The leaf, wired as oxcross-leaf wires it.
	leafLog, leafLogs := newLogger()
	leafReg := prometheus.NewRegistry()
	client := &http.Client{Timeout: 2 * time.Second}
	remote, err := discovery.NewRemote(base, "leaf-1", client, "test", parser)
	if err != nil {
		t.Fatal(err)
	}
	registrar, err := discovery.NewRegistrar(base, client, "test", "leaf-1", discovery.Registration{Address: ":9299", RefreshInterval: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	history := prober.NewHistory()
	sched := prober.NewScheduler(prober.SchedulerOptions{
		Prober: prober.NewProber("test", kinds), Metrics: prober.NewMetrics(leafReg),
		LeafID: "leaf-1", History: history, Logger: leafLog,
	})
	t.Cleanup(sched.Stop)
	follower, err := discovery.NewFollower(discovery.FollowerOptions{
		Remote: remote, CacheFile: filepath.Join(t.TempDir(), "cache.json"), RefreshInterval: 100 * time.Millisecond,
		Heartbeat: registrar.Heartbeat, Apply: sched.Apply, Logger: leafLog, Registerer: leafReg,
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, follower)

	// Both passwords work.
	testutil.Eventually(t, 10*time.Second, "the origin probed with its password", func() bool {
		st := history.Statuses(follower.Config())
		return len(st) == 1 && st[0].Probed && st[0].Last.Success
	})
	testutil.Eventually(t, 5*time.Second, "the leaf registered", func() bool {
		return len(cs.Leaves()) == 1
	})
	if got := remote.URL(); got != "http://leaf:xxxxx@"+csSrv.Listener.Addr().String()+"/config?leaf_id=leaf-1" {
		t.Errorf("Remote.URL() = %q", got)
	}

	// The pages, /sd/origins and the metrics.
	leafPage := func(ready error) string {
		var b bytes.Buffer
		// The page redacts whatever source it is given.
		if err := statuspage.RenderLeaf(&b, statuspage.Leaf{ID: "leaf-1", ConfigSource: base, Ready: ready, Origins: history.Statuses(follower.Config()), Now: time.Now(), Refresh: 15}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	page := leafPage(follower.Ready())
	noSecret(t, "the leaf's status page", page)
	if !strings.Contains(page, "leaf:xxxxx@") || !strings.Contains(page, "user:xxxxx@") {
		t.Errorf("the leaf's status page shows neither URL redacted:\n%s", page)
	}
	var b bytes.Buffer
	if err := statuspage.RenderConfigserver(&b, statuspage.Configserver{File: path, ETag: cs.Current().ETag, Leaves: cs.Leaves(), Origins: cs.Current().Config.Origins, Now: time.Now(), Refresh: 15}); err != nil {
		t.Fatal(err)
	}
	noSecret(t, "the configserver's status page", b.String())
	if !strings.Contains(b.String(), "user:xxxxx@") {
		t.Errorf("the configserver's status page does not show the origin's URL redacted:\n%s", b.String())
	}
	sd := testutil.Do(t, nil, http.MethodGet, base+"/sd/origins", "")
	noSecret(t, "/sd/origins", sd.Body)
	if sd.Code != http.StatusOK || !strings.Contains(sd.Body, `"__meta_oxcross_origin_url":"http://user:xxxxx@`) {
		t.Errorf("/sd/origins: %d %s", sd.Code, sd.Body)
	}
	// /config is what the leaves probe with: the password stays in it,
	// for the clients the configserver lets in.
	if c := testutil.Do(t, nil, http.MethodGet, base+"/config", ""); !strings.Contains(c.Body, originPW) {
		t.Errorf("/config lacks the origin's password the leaves need: %s", c.Body)
	}

	// A wrong password: 401, and the error does not show it either.
	wrong, err := discovery.NewRemote("http://leaf:"+wrongPW+"@"+csSrv.Listener.Addr().String(), "leaf-1", client, "test", parser)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Fetch with a wrong password: %v", err)
	} else {
		noSecret(t, "the error of a wrong password", err.Error())
	}

	// The origin goes down: the probe errors name its URL.
	origin.Close()
	testutil.Eventually(t, 5*time.Second, "a failed probe", func() bool {
		st := history.Statuses(follower.Config())
		return len(st) == 1 && !st[0].Last.Success
	})
	noSecret(t, "the leaf's status page, origin down", leafPage(follower.Ready()))

	// The configserver goes down: fetch and heartbeat fail, the leaf
	// keeps its config and logs why; a leaf that starts now is not ready
	// and says why.
	failures := testutil.MetricValue(t, leafReg, "oxcross_leaf_config_refresh_failures_total")
	csSrv.Close()
	testutil.Eventually(t, 5*time.Second, "refreshes failing", func() bool {
		return testutil.MetricValue(t, leafReg, "oxcross_leaf_config_refresh_failures_total") >= failures+2
	})
	if _, err := remote.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "leaf:xxxxx@") {
		t.Errorf("Fetch from the configserver down: %v, want the URL redacted", err)
	} else {
		noSecret(t, "Fetch's error", err.Error())
	}
	if err := registrar.Heartbeat(context.Background()); err == nil || !strings.Contains(err.Error(), "leaf:xxxxx@") {
		t.Errorf("Heartbeat to the configserver down: %v, want the URL redacted", err)
	} else {
		noSecret(t, "Heartbeat's error", err.Error())
	}
	late, err := discovery.NewRemote(base, "leaf-2", client, "test", parser)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := discovery.NewFollower(discovery.FollowerOptions{Remote: late, RefreshInterval: 100 * time.Millisecond, Apply: func(*config.Config) {}, Logger: leafLog, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	run(t, f2)
	testutil.EventuallyReason(t, 5*time.Second, "a leaf without config to say why", func() string {
		if err := f2.Ready(); err == nil || !strings.Contains(err.Error(), "refused") {
			return fmt.Sprint(err)
		}
		return ""
	})
	noSecret(t, "Ready with the configserver down", f2.Ready().Error())
	if !strings.Contains(f2.Ready().Error(), "leaf:xxxxx@") {
		t.Errorf("Ready = %v, want the configserver's URL redacted", f2.Ready())
	}
	noSecret(t, "the leaf's status page, configserver down", leafPage(f2.Ready()))

	// Nothing in the logs or metrics of either side.
	for what, text := range map[string]string{
		"the leaf's log": leafLogs.String(), "the configserver's log": csLogs.String(),
		"the leaf's metrics": gathered(t, leafReg), "the configserver's metrics": gathered(t, csReg),
	} {
		noSecret(t, what, text)
	}
	for _, want := range []string{`Probe failed`, `Config refresh failed`, `Heartbeat to the configserver failed`, "leaf:xxxxx@", "user:***@"} {
		if !strings.Contains(leafLogs.String(), want) {
			t.Errorf("the leaf's log lacks %q: the test did not see what it meant to:\n%s", want, leafLogs.String())
		}
	}
	if probed.Load() == 0 {
		t.Error("the origin was never probed")
	}
}

// run runs f until the test ends.
func run(t *testing.T, f *discovery.Follower) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}
