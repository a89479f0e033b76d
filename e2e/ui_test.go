package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/internal/testutil"
)

// chromium finds Debian's chromium, which scripts/packages.d/ui.txt
// installs.
func chromium(t *testing.T) string {
	t.Helper()
	for _, c := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: run bash scripts/install-deps.sh (Debian package chromium)")
	return ""
}

// headless runs Chromium headless on url with extra arguments and returns
// its standard output.
func headless(t *testing.T, bin, url string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), url)...)
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// TestStatusPages renders the leaf's and the configserver's pages in
// headless Chromium: the leaf's page lists every origin with its result
// and a latency chart; the configserver's lists the registered leaf and the
// origins. Screenshots go to the test's artifact directory.
func TestStatusPages(t *testing.T) {
	bin := chromium(t)
	f := startFleet(t, "")
	_, leafAddr := f.startLeaf(t, filepath.Join(t.TempDir(), "cache.json"))
	testutil.EventuallyReason(t, 15*time.Second, "origins probed", func() string {
		m := scrape(t, leafAddr)
		if okCount(t, m, "adv") < 2 || okCount(t, m, "simple") < 2 {
			return "not probed yet"
		}
		return ""
	})

	dom := headless(t, bin, "http://"+leafAddr+"/", "--dump-dom")
	for _, want := range []string{`id="leaf-id">leaf-e2e<`, `data-origin="adv"`, `data-origin="simple"`, `class="up"`, "advanced", "± ", "last exchange", `id="leaf-clock"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("leaf page lacks %q", want)
		}
	}
	if n := strings.Count(dom, `<svg class="chart"`); n != 2 {
		t.Errorf("leaf page has %d latency charts, want 2 (one per origin)", n)
	}
	if !strings.Contains(dom, `<path d="M`) {
		t.Errorf("leaf page charts draw no latency line")
	}
	if strings.Contains(dom, "<script") {
		t.Errorf("leaf page has a script; it must work without JavaScript")
	}

	csDOM := headless(t, bin, "http://"+f.csAddr+"/", "--dump-dom")
	for _, want := range []string{`data-leaf="leaf-e2e"`, `data-origin="adv"`, `data-origin="simple"`, "dynamic"} {
		if !strings.Contains(csDOM, want) {
			t.Errorf("configserver page lacks %q", want)
		}
	}

	dir := t.ArtifactDir()
	for name, url := range map[string]string{"leaf.png": "http://" + leafAddr + "/", "configserver.png": "http://" + f.csAddr + "/"} {
		shot := filepath.Join(dir, name)
		headless(t, bin, url, "--screenshot="+shot, "--window-size=1400,500")
		st, err := os.Stat(shot)
		if err != nil || st.Size() < 5000 {
			t.Errorf("screenshot %s: %v (size %v)", shot, err, st)
			continue
		}
		t.Logf("screenshot: %s (%d bytes)", shot, st.Size())
	}
	if out := os.Getenv("OXCROSS_SCREENSHOT_DIR"); out != "" {
		// Refresh the README's pictures: OXCROSS_SCREENSHOT_DIR=$PWD/docs/img.
		for _, name := range []string{"leaf.png", "configserver.png"} {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				err = os.WriteFile(filepath.Join(out, name), data, 0o644)
			}
			if err != nil {
				t.Errorf("copying %s: %v", name, err)
			}
		}
	}
}
