package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/internal/testutil"
)

// TestPasswordsInURLs replays issue 13, #6 with the real binaries: a leaf
// given --config.url=http://leaf:PW@… of a configserver that wants basic
// auth, and a config whose origin URL carries its own password. The
// passwords work, and neither appears in any process's log (the leaf's
// start-up line included), on either status page, in /-/ready while the
// configserver is down, in /sd/origins or in /metrics.
func TestPasswordsInURLs(t *testing.T) {
	const (
		leafPW   = "leaf-pw-e2e-7a1c"
		originPW = "origin-pw-e2e-3f9b"
	)
	secretFree := func(what, text string) {
		t.Helper()
		for _, pw := range []string{leafPW, originPW} {
			if strings.Contains(text, pw) {
				t.Errorf("%s shows the password %s:\n%s", what, pw, text)
			}
		}
	}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "user" || p != originPW {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
		}
	}))
	t.Cleanup(origin.Close)
	originURL := strings.Replace(origin.URL, "http://", "http://user:"+originPW+"@", 1) + "/healthz"

	dir := t.TempDir()
	web := filepath.Join(dir, "web.yml")
	testutil.WriteFile(t, web, fmt.Sprintf("basic_auth_users:\n  leaf: %s\n", bcryptHash(t, leafPW)))
	cfg := filepath.Join(dir, "config.yaml")
	testutil.WriteFile(t, cfg, fmt.Sprintf("interval: 300ms\ntimeout: 250ms\norigins:\n  - {name: guarded, url: '%s', mode: simple}\n", originURL))
	csAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	cs := start(t, "oxcross-configserver", nil, "--web.listen-address="+csAddr, "--web.config.file="+web,
		"--config.file="+cfg, "--config.min-interval=100ms", "--log.level=debug")
	auth := basicAuth("leaf", leafPW)
	testutil.EventuallyReason(t, 20*time.Second, "configserver up", func() string {
		r, err := testutil.TryDo(nil, http.MethodGet, "http://"+csAddr+"/healthz", "", auth...)
		if err != nil {
			return err.Error()
		}
		return map[bool]string{true: "", false: fmt.Sprint(r.Code)}[r.Code == http.StatusOK]
	})

	configURL := "http://leaf:" + leafPW + "@" + csAddr
	leafAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	leaf := start(t, "oxcross-leaf", nil, "--web.listen-address="+leafAddr, "--leaf.id=leaf-pw",
		"--config.url="+configURL, "--config.cache-file="+filepath.Join(dir, "cache.json"),
		"--config.refresh-interval=300ms", "--config.min-interval=100ms", "--log.level=debug")
	waitHealthy(t, leafAddr)
	testutil.EventuallyReason(t, 20*time.Second, "the origin probed with its password", func() string {
		if n := okCount(t, scrape(t, leafAddr), "guarded"); n < 1 {
			return fmt.Sprintf("%v successful probes", n)
		}
		return ""
	})

	get := func(url string, header ...string) string {
		t.Helper()
		r := testutil.Do(t, nil, http.MethodGet, url, "", header...)
		if r.Code != http.StatusOK {
			t.Errorf("GET %s: %d %s", url, r.Code, r.Body)
		}
		return r.Body
	}
	page := get("http://" + leafAddr + "/")
	secretFree("the leaf's status page", page)
	if !strings.Contains(page, "config from http://leaf:xxxxx@"+csAddr) || !strings.Contains(page, "user:xxxxx@") {
		t.Errorf("the leaf's status page does not show the URLs redacted:\n%s", page)
	}
	secretFree("the leaf's /metrics", get("http://"+leafAddr+"/metrics"))
	secretFree("the configserver's status page", get("http://"+csAddr+"/", auth...))
	sd := get("http://"+csAddr+"/sd/origins", auth...)
	secretFree("/sd/origins", sd)
	if !strings.Contains(sd, "user:xxxxx@") {
		t.Errorf("/sd/origins does not show the origin's URL redacted: %s", sd)
	}
	secretFree("the configserver's /metrics", get("http://"+csAddr+"/metrics", auth...))

	// The configserver stops: a leaf starting now is not ready, and says
	// why without the password.
	if err := cs.stop(t); err != nil {
		t.Errorf("configserver: %v", err)
	}
	lateAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	late := start(t, "oxcross-leaf", nil, "--web.listen-address="+lateAddr, "--leaf.id=late",
		"--config.url="+configURL, "--config.cache-file="+filepath.Join(dir, "none.json"), "--log.level=debug")
	waitHealthy(t, lateAddr)
	testutil.EventuallyReason(t, 10*time.Second, "not ready, saying why", func() string {
		r, err := testutil.TryDo(nil, http.MethodGet, "http://"+lateAddr+"/-/ready", "")
		if err != nil {
			return err.Error()
		}
		if r.Code != http.StatusServiceUnavailable || !strings.Contains(r.Body, "leaf:xxxxx@") {
			return fmt.Sprintf("/-/ready = %d %q", r.Code, r.Body)
		}
		secretFree("/-/ready", r.Body)
		return ""
	})
	secretFree("the late leaf's status page", get("http://"+lateAddr+"/"))
	testutil.EventuallyReason(t, 10*time.Second, "the first leaf to see the configserver gone", func() string {
		if !strings.Contains(leaf.log.String(), "Config refresh failed") {
			return "no failed refresh logged yet"
		}
		return ""
	})

	for _, p := range []*proc{leaf, late, cs} {
		log := p.log.String()
		secretFree("the log of "+p.name, log)
		if p != cs && !strings.Contains(log, `msg="Following the configserver" url="http://leaf:xxxxx@`+csAddr+"/config?leaf_id=") {
			t.Errorf("%s does not log the configserver's URL at start, redacted:\n%s", p.name, log)
		}
	}
}
