package e2e

// A mixed fleet on loopback: the original Oxcross' leaf and configserver
// (as the original reads and serves its config: internal/testutil's
// ParseOriginalConfig) with the new binaries, in both directions, and the
// original's config file with the things it ignored or skipped.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/internal/testutil"
)

// originalPort is a free port of 127.0.0.1 that the original probes (at
// most 32767), for a binary to listen on.
func originalPort(t *testing.T) int {
	t.Helper()
	l := testutil.ListenOriginalPort(t)
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// originalFile is a config file of the original, with what it ignored
// (a comment, an origin's extra key, capitalised keys) and skipped (ftp).
const originalFile = `{
    "comment": "the original's config file",
    "Timeout": 1,
    "interval": 1,
    "origins": [
        {"scheme": "http", "hostname": "127.0.0.1", "port": %d, "mode": "advanced", "location": "loopback"},
        {"Scheme": "http", "Hostname": "127.0.0.1", "Port": %d, "Mode": "simple"},
        {"scheme": "ftp", "hostname": "127.0.0.1", "port": 21, "mode": "simple"}
    ]
}
`

// originalWarnings are the warnings of originalFile, each with its line.
var originalWarnings = []string{
	`line 2: unknown field \"comment\" ignored`,
	`line 3: field \"Timeout\" read as \"timeout\"`,
	`line 6: origins[0]: unknown field \"location\" ignored`,
	`line 7: origins[1]: field \"Scheme\" read as \"scheme\"`,
	`line 8: origins[2]: scheme: \"ftp\" is not http or https; skipped`,
}

// TestMixedFleet: either side may be upgraded first. An original leaf
// reads the new configserver's /config and probes the new origin and a
// health check as it did; the new leaf follows the original configserver
// and the new one, and probes both; the original's config file is served
// with its warnings in the log and from --config.check.
func TestMixedFleet(t *testing.T) {
	op := originalPort(t)
	start(t, "oxcross-origin", []string{fmt.Sprintf("OXCROSS_ORIGIN_PORT=%d", op)})
	health := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
		}
	}))
	health.Listener.Close()
	health.Listener = testutil.ListenOriginalPort(t)
	health.Start()
	t.Cleanup(health.Close)
	hp := health.Listener.Addr().(*net.TCPAddr).Port
	waitHealthy(t, fmt.Sprintf("127.0.0.1:%d", op))
	advancedID, simpleID := fmt.Sprintf("127.0.0.1-%d-http", op), fmt.Sprintf("127.0.0.1-%d-http", hp)

	file := filepath.Join(t.TempDir(), "oxcross_config.json")
	testutil.WriteFile(t, file, fmt.Sprintf(originalFile, op, hp))

	// --config.check prints each warning with its line, and succeeds.
	for _, bin := range []string{"oxcross-configserver", "oxcross-leaf"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, bin), "--config.check="+file)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Errorf("%s --config.check: %v\n%s%s", bin, err, stdout.String(), stderr.String())
		}
		for _, w := range originalWarnings {
			if want := "WARNING: config file " + file + ": " + strings.ReplaceAll(w, `\"`, `"`); !strings.Contains(stderr.String(), want) {
				t.Errorf("%s --config.check: no %q in\n%s", bin, want, stderr.String())
			}
		}
		if !strings.Contains(stdout.String(), "SUCCESS") || !strings.Contains(stdout.String(), "2 origins (advanced 1, simple 1)") {
			t.Errorf("%s --config.check wrote\n%s", bin, stdout.String())
		}
	}

	// The new configserver, as the original's Deployment runs it.
	csAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	cs := start(t, "oxcross-configserver", []string{"OXCROSS_CONF=" + file}, "--web.listen-address="+csAddr)
	waitHealthy(t, csAddr)
	for _, w := range originalWarnings {
		if !strings.Contains(cs.log.String(), "level=WARN") || !strings.Contains(cs.log.String(), w) {
			t.Errorf("the configserver's log lacks the warning %s:\n%s", w, cs.log.String())
		}
	}

	t.Run("original leaf, new configserver and origin", func(t *testing.T) {
		// The original leaf's plain GET, decoded as it decodes it.
		resp := testutil.Do(t, nil, http.MethodGet, "http://"+csAddr+"/config", "")
		if resp.Code != http.StatusOK {
			t.Fatalf("GET /config: %d %s", resp.Code, resp.Body)
		}
		cfg, err := testutil.ParseOriginalConfig([]byte(resp.Body))
		if err != nil {
			t.Fatalf("the original leaf cannot start with %s: %v", resp.Body, err)
		}
		if cfg.Interval != 1 || cfg.Timeout != 1 || len(cfg.Origins) != 2 {
			t.Fatalf("the original leaf reads %+v", cfg)
		}
		// It probes each as it did.
		for i, want := range []string{fmt.Sprintf("http://127.0.0.1:%d/oxcross", op), fmt.Sprintf("http://127.0.0.1:%d", hp)} {
			o := cfg.Origins[i]
			if o.URL != want || o.ID() != []string{advancedID, simpleID}[i] {
				t.Errorf("origins[%d] = %+v, want %s", i, o, want)
				continue
			}
			r := testutil.Do(t, nil, http.MethodGet, o.URL, "")
			if r.Code != http.StatusOK {
				t.Errorf("the original leaf's probe of %s: %d", o.URL, r.Code)
			}
			if o.Mode != "advanced" {
				continue
			}
			var answer struct {
				ServerTime string `json:"server_time"`
				Token      string `json:"token"`
			}
			if err := json.Unmarshal([]byte(r.Body), &answer); err != nil || answer.Token == "" {
				t.Errorf("the original leaf cannot read %s: %v", r.Body, err)
			}
			if _, err := time.Parse(time.RFC3339, answer.ServerTime); err != nil {
				t.Errorf("the original leaf's time.Parse: %v", err)
			}
		}
	})

	// The original configserver: it reads the same file as the original
	// did and serves it with encoding/json, the URL keys included.
	orig, err := testutil.ParseOriginalConfig([]byte(fmt.Sprintf(originalFile, op, hp)))
	if err != nil {
		t.Fatal(err)
	}
	origBody, err := json.Marshal(orig)
	if err != nil {
		t.Fatal(err)
	}
	origCS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/config" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(origBody)
	}))
	t.Cleanup(origCS.Close)

	for _, tc := range []struct{ name, base string }{
		{"new leaf, original configserver", origCS.URL},
		{"new leaf, new configserver", "http://" + csAddr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
			leaf := start(t, "oxcross-leaf", []string{"OXCROSS_LEAF_ID=mixed", "OXCROSS_CONFIG_API_BASE=" + tc.base},
				"--web.listen-address="+addr, "--config.refresh-interval=1s", "--config.cache-file="+filepath.Join(t.TempDir(), "cache.json"))
			waitHealthy(t, addr)
			testutil.EventuallyReason(t, 30*time.Second, "both origins probed", func() string {
				m := scrape(t, addr)
				if n, _ := testutil.LookupMetric(t, m, "oxcross_leaf_config_origins"); n != 2 {
					return fmt.Sprintf("%v origins in the config", n)
				}
				for _, id := range []string{advancedID, simpleID} {
					if okCount(t, m, id) < 1 {
						return id + " not probed successfully"
					}
				}
				return ""
			})
			if strings.Contains(leaf.log.String(), "Config refresh failed") {
				t.Errorf("the leaf's refreshes failed:\n%s", leaf.log.String())
			}
			if err := leaf.stop(t); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("leaf exit: %v", err)
			}
		})
	}
}
