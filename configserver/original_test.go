package configserver_test

// The original Oxcross and the configserver: its leaf reads /config, and
// its config files are served with warnings.

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/testutil"
)

// mixedConfig has origins of every sort: those an original leaf probes as
// the new one does, and those it cannot (other modules and kinds, paths),
// some for leaves of region eu only, and a static leaf of that region.
const mixedConfig = `interval: 1500ms
timeout: 1200ms
modules:
  api: {kind: http, http: {method: HEAD, valid_status_codes: [204]}}
leaves:
  - {id: static-eu, address: '127.0.0.1:9999', labels: {region: eu}}
origins:
  - {name: edge1, url: 'http://edge1.example.com:9301', labels: {tier: '1'}}
  - {scheme: https, hostname: status.example.org, mode: simple}
  - {url: 'http://[::1]:8080/', mode: simple, interval: 5s}
  - {name: health, url: 'https://api.example.com/healthz', mode: simple}
  - {name: api, url: 'https://api.example.com/', module: api}
  - {name: ssh, address: 'ssh.example.com:22', mode: tcp}
  - {name: ping, hostname: ping.example.com, mode: icmp}
  - {name: eu-edge, url: 'http://eu.example.com:9301', leaf_selector: {region: eu}}
  - {name: eu-ping, hostname: eu-ping.example.com, mode: icmp, leaf_selector: {region: eu}}
`

// TestOriginalLeafReadsConfig: an original leaf GETs /config as it always
// did, decodes it into its own structs with encoding/json, and finds the
// http(s) origins of the modes it knows, with their scheme, hostname, port
// and mode, whole seconds, and none of the others. Views by leaf_id too.
// The new leaf, from the same server, gets the config exactly.
func TestOriginalLeafReadsConfig(t *testing.T) {
	c := newDiscoveryFixture(t, mixedConfig, "")
	ctx := context.Background()
	// ams-1 registers with region eu; unknown-1 never registers.
	r, err := discovery.NewRegistrar(c.srv.URL, c.srv.Client(), "t", "ams-1", discovery.Registration{Address: ":9299", Labels: map[string]string{"region": "eu"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	everywhere := []testutil.OriginalOrigin{
		{Scheme: "http", Hostname: "edge1.example.com", Port: 9301, Mode: "advanced", URL: "http://edge1.example.com:9301/oxcross"},
		{Scheme: "https", Hostname: "status.example.org", Port: 443, Mode: "simple", URL: "https://status.example.org:443"},
		{Scheme: "http", Hostname: "[::1]", Port: 8080, Mode: "simple", URL: "http://[::1]:8080"},
	}
	eu := append(everywhere[:len(everywhere):len(everywhere)],
		testutil.OriginalOrigin{Scheme: "http", Hostname: "eu.example.com", Port: 9301, Mode: "advanced", URL: "http://eu.example.com:9301/oxcross"})
	for _, tc := range []struct {
		path string
		want []testutil.OriginalOrigin
	}{
		// The original leaf's own request: what a leaf without labels sees.
		{"/config", everywhere},
		{"/config?leaf_id=ams-1", eu},
		{"/config?leaf_id=static-eu", eu},
		{"/config?leaf_id=unknown-1", everywhere},
	} {
		t.Run(tc.path, func(t *testing.T) {
			// The original leaf sends a plain GET, nothing else.
			resp, err := http.Get(c.srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body := new(bytes.Buffer)
			_, err = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d %v", tc.path, resp.StatusCode, err)
			}
			// Decoded as the original leaf decodes it.
			var raw testutil.OriginalConfig
			if err := json.Unmarshal(body.Bytes(), &raw); err != nil {
				t.Fatalf("the original's json.Unmarshal: %v\n%s", err, body)
			}
			if raw.Interval != 2 || raw.Timeout != 2 {
				t.Errorf("interval %d, timeout %d, want 2 and 2 (1.5s and 1.2s rounded up)", raw.Interval, raw.Timeout)
			}
			orig, err := testutil.ParseOriginalConfig(body.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(orig.Origins, tc.want) {
				t.Errorf("the original leaf probes\n %+v\nwant\n %+v", orig.Origins, tc.want)
			}
			// It skips nothing: nothing it cannot probe is listed.
			if len(raw.Origins) != len(orig.Origins) {
				t.Errorf("listed %+v, of which the original skips some", raw.Origins)
			}
			for _, host := range []string{"api.example.com", "ssh.example.com", "ping.example.com", "eu-ping.example.com"} {
				for _, o := range raw.Origins {
					if strings.Contains(o.Hostname, host) {
						t.Errorf("origin %+v listed for the original", o)
					}
				}
			}
		})
	}

	// The new leaf reads its view exactly: durations, modules, labels,
	// every kind.
	remote, err := discovery.NewRemote(c.srv.URL, "ams-1", c.srv.Client(), "t", discoveryParser)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := remote.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := snap.Config
	if cfg.Interval != 1500*time.Millisecond || cfg.Timeout != 1200*time.Millisecond {
		t.Errorf("new leaf: interval %s, timeout %s", cfg.Interval, cfg.Timeout)
	}
	var ids []string
	for _, o := range cfg.Origins {
		ids = append(ids, o.ID)
	}
	if want := []string{"edge1", "status.example.org-443-https", "::1-8080-http", "health", "api", "ssh", "ping", "eu-edge", "eu-ping"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("new leaf: origins %q, want %q", ids, want)
	}
	if m := cfg.Modules["api"]; m.Kind != "http" || m.Settings == nil {
		t.Errorf("new leaf: module api %+v", m)
	}
	if o := cfg.Origins[0]; o.Labels["tier"] != "1" || o.Interval != 1500*time.Millisecond {
		t.Errorf("new leaf: origin %+v", o)
	}
	if o := cfg.Origins[2]; o.Interval != 5*time.Second || o.Timeout != 1200*time.Millisecond {
		t.Errorf("new leaf: origin %+v", o)
	}
	// The ETag covers the whole body, both parts.
	if resp := testutil.Do(t, c.srv.Client(), http.MethodGet, c.srv.URL+"/config?leaf_id=ams-1", ""); resp.Header.Get("ETag") != config.ETag([]byte(resp.Body)) {
		t.Errorf("ETag %s is not the body's", resp.Header.Get("ETag"))
	}
}

// TestOriginalConfigFiles: the configserver loads the original's config
// files, logs a warning naming the line of each thing the original ignored
// or skipped, at start and at every reload, and serves the rest to leaves
// of both generations.
func TestOriginalConfigFiles(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "config", "testdata", "original", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	path := filepath.Join(t.TempDir(), "oxcross_config.json")
	testutil.WriteFile(t, path, read("file-capitalised.json"))
	var logs testutil.SyncBuffer
	s, err := configserver.New(path, configserver.Options{Parser: parser}, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(configserver.NewMux(s))
	t.Cleanup(srv.Close)
	f := &fixture{path: path, s: s, srv: srv}
	wantServed := []testutil.OriginalOrigin{
		{Scheme: "http", Hostname: "edge1.example.com", Port: 9301, Mode: "advanced", URL: "http://edge1.example.com:9301/oxcross"},
		{Scheme: "https", Hostname: "status.example.org", Port: 443, Mode: "simple", URL: "https://status.example.org:443"},
	}
	check := func(file string, warnings ...string) {
		t.Helper()
		for _, w := range warnings {
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "file="+path) || !strings.Contains(logs.String(), w) {
				t.Errorf("%s: the log lacks the warning %q:\n%s", file, w, logs.String())
			}
		}
		body := []byte(f.served(t).Body)
		orig, err := testutil.ParseOriginalConfig(body)
		if err != nil || !reflect.DeepEqual(orig.Origins, wantServed) || orig.Interval != 30 || orig.Timeout != 10 {
			t.Errorf("%s: the original leaf reads %+v, %v", file, orig, err)
		}
		cfg, err := parser.ParseView(body)
		if err != nil || len(cfg.Origins) != 2 || cfg.Origins[1].URL != "https://status.example.org:443/" {
			t.Errorf("%s: the new leaf reads %+v, %v", file, cfg, err)
		}
	}
	check("file-capitalised.json", `warning="line 2: field \"Timeout\" read as \"timeout\"`, `warning="line 13: origins[1]: field \"HOSTNAME\" read as \"hostname\"`)

	for _, tc := range []struct {
		file     string
		warnings []string
	}{
		{"file-comment.json", []string{`warning="line 2: unknown field \"comment\" ignored`, `warning="line 18: origins[1]: unknown field \"note\" ignored`}},
		{"file-ftp.json", []string{`warning="line 12: origins[1]: scheme: \"ftp\" is not http or https; skipped`}},
	} {
		testutil.WriteFile(t, path, read(tc.file))
		if err := s.Reload(); err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		check(tc.file, tc.warnings...)
	}
	// A reload logs them again.
	before := strings.Count(logs.String(), `scheme: \"ftp\"`)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if after := strings.Count(logs.String(), `scheme: \"ftp\"`); after != before+1 {
		t.Errorf("a reload logged the warning %d times, want once", after-before)
	}
}
