package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/internal/testutil"
)

// TestLeafPaths: a leaf with a path origin traces it (tcp, to a port that
// listens on 127.0.0.2), exports the path series, serves the hops at
// /api/v1/paths and shows them on its status page.
func TestLeafPaths(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the path kind traces on Linux only")
	}
	ln, err := net.Listen("tcp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	testutil.ServeConns(t, ln, func(c net.Conn) { _ = c.Close() })
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	testutil.WriteFile(t, cfg, fmt.Sprintf(`modules:
  route: {kind: path, path: {method: tcp, max_hops: 4}}
origins:
  - {name: web-path, address: '%s', module: route, interval: 1s}
`, ln.Addr()))
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	start(t, "oxcross-leaf", nil, "--web.listen-address="+addr, "--leaf.id=solo", "--config.file="+cfg)
	waitHealthy(t, addr)
	testutil.EventuallyReason(t, 10*time.Second, "the path traced", func() string {
		if v, ok := testutil.LookupMetric(t, scrape(t, addr), "oxcross_leaf_path_reached", "origin_id", "web-path"); !ok || v != 1 {
			return fmt.Sprintf("oxcross_leaf_path_reached %v (present %v)", v, ok)
		}
		return ""
	})
	m := scrape(t, addr)
	if v := testutil.MetricValue(t, m, "oxcross_leaf_path_hops", "origin_id", "web-path"); v != 1 {
		t.Errorf("oxcross_leaf_path_hops %v, want 1", v)
	}
	resp := testutil.Do(t, nil, http.MethodGet, "http://"+addr+"/api/v1/paths?origin_id=web-path", "")
	var body struct {
		Paths []struct {
			OriginID string `json:"origin_id"`
			Reached  bool
			Hops     []struct {
				Address string
				Loss    float64
				Final   string
			}
		}
	}
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || resp.Code != http.StatusOK {
		t.Fatalf("/api/v1/paths: %d %s (%v)", resp.Code, resp.Body, err)
	}
	if len(body.Paths) != 1 || !body.Paths[0].Reached || len(body.Paths[0].Hops) != 1 || body.Paths[0].Hops[0].Address != "127.0.0.2" || body.Paths[0].Hops[0].Final != "reached" {
		t.Errorf("/api/v1/paths: %s", resp.Body)
	}
	page := testutil.Do(t, nil, http.MethodGet, "http://"+addr+"/", "")
	if !strings.Contains(page.Body, `<table class="path" data-origin="web-path">`) || !strings.Contains(page.Body, "<td>127.0.0.2</td>") {
		t.Errorf("the status page lacks web-path's hop table:\n%s", page.Body)
	}
}
