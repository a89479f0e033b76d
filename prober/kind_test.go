package prober_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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
	"github.com/oxcross/oxcross/internal/testutil"
	"github.com/oxcross/oxcross/prober"
)

// bannerSettings are the settings of the banner kind, a module's
// `banner:`.
type bannerSettings struct {
	// Expect must start the first line the server sends.
	Expect string `yaml:"expect" json:"expect,omitempty"`
}

func (s *bannerSettings) Validate() error {
	if s.Expect == "" {
		return errors.New("expect: missing; say what the banner starts with")
	}
	return nil
}

// bannerKind is a probe kind defined only in this test, as a new kind's
// file would define it: it connects to host:port and reads the first line,
// which must start with the module's expect.
type bannerKind struct{}

func (bannerKind) Spec() config.Kind {
	return config.Kind{
		Name: "banner", Target: config.TargetHostPort,
		SettingsKey: "banner", NewSettings: func() config.Settings { return &bannerSettings{} },
	}
}

func (bannerKind) Probe(ctx context.Context, p *prober.Params, r *prober.Result) {
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", p.Target.Address)
	if err != nil {
		r.Reason, r.Err = prober.ReasonConnect, err
		return
	}
	defer conn.Close()
	r.Phases.Set(prober.PhaseConnect, time.Since(start))
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	line, err := bufio.NewReader(io.LimitReader(conn, 512)).ReadString('\n')
	if err != nil {
		r.Reason, r.Err = prober.ReasonInvalidResponse, err
		return
	}
	if !strings.HasPrefix(line, p.Module.Settings.(*bannerSettings).Expect) {
		r.Reason, r.Err = prober.ReasonBodyMismatch, fmt.Errorf("banner %q", line)
		return
	}
	r.Success = true
}

// bannerServer greets every connection with banner and returns its
// address.
func bannerServer(t *testing.T, banner string) string {
	t.Helper()
	return testutil.ServeTCP(t, func(c net.Conn) { _, _ = io.WriteString(c, banner+"\r\n") })
}

// TestKindDefinedElsewhere proves docs/architecture.md's recipe: a kind
// that nothing in Oxcross knows, registered in one line, is read from a
// config file with its settings and target shape, refused with clear
// errors, scheduled with metrics, and answers /probe.
func TestKindDefinedElsewhere(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	kinds, err := prober.NewKinds(bannerKind{})
	if err != nil {
		t.Fatal(err)
	}
	parser := kinds.Parser(config.Limits{})
	addr := bannerServer(t, "OXCROSS-TEST ready")
	host, port, _ := net.SplitHostPort(addr)

	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	testutil.WriteFile(t, bad, `
modules:
  empty:
    kind: banner
    banner: {}
  wrongkey:
    kind: banner
    tcp: {tls: true}
  greet:
    kind: banner
    banner: {expect: OXCROSS-TEST}
origins:
  - {module: greet, url: "http://`+addr+`/"}
`)
	_, err = config.NewFile(bad, parser).Load(false)
	for _, want := range []string{
		"modules.empty: banner: expect: missing", // the kind's own validation
		"modules.wrongkey: unknown field \"tcp\" (known: kind, ip_family, no_ip_fallback, max_body_bytes, allowed_targets, banner)", // only known kinds' keys
		"url: not for module greet (kind banner); give address or hostname",                                                         // the kind's target shape
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad config: error %v, want it to contain %q", err, want)
		}
	}

	path := filepath.Join(dir, "config.yaml")
	testutil.WriteFile(t, path, `
interval: 1s
modules:
  greet:
    kind: banner
    banner: {expect: OXCROSS-TEST}
  other:
    kind: banner
    banner: {expect: SSH-2.0}
origins:
  - {name: greeted, module: greet, address: "`+addr+`"}
  - {module: other, hostname: "`+host+`", port: `+port+`}
`)
	snap, err := config.NewFile(path, parser).Load(false)
	if err != nil {
		t.Fatal(err)
	}
	cfg := snap.Config
	if got := cfg.Origins[1].ID; got != host+"-"+port+"-banner" {
		t.Errorf("default origin_id %q, want host-port-kind", got)
	}
	// The normalized JSON the configserver serves carries the settings
	// under the kind's key, and reads back the same.
	if !strings.Contains(string(snap.Body), `"banner":{"expect":"OXCROSS-TEST"}`) {
		t.Errorf("normalized JSON lacks the kind's settings: %s", snap.Body)
	}
	view, err := parser.ParseView(snap.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := view.Modules["other"].Settings.(*bannerSettings).Expect; got != "SSH-2.0" {
		t.Errorf("settings after a round trip: expect %q", got)
	}

	reg := prometheus.NewPedanticRegistry()
	p := prober.NewProber("test", kinds)
	sched := prober.NewScheduler(prober.SchedulerOptions{Prober: p, Metrics: prober.NewMetrics(reg), LeafID: "leaf-1", Logger: logger})
	defer sched.Stop()
	sched.Apply(cfg)
	result := func(origin, success, reason string) float64 {
		v, _ := testutil.LookupMetric(t, reg, "oxcross_leaf_probe_results", "origin_id", origin, "result", success, "reason", reason)
		return v
	}
	testutil.Eventually(t, 30*time.Second, "a success of the banner kind and a failure with body_mismatch", func() bool {
		return result("greeted", "true", "ok") >= 1 && result(cfg.Origins[1].ID, "false", "body_mismatch") >= 1
	})

	srv := httptest.NewServer(prober.NewHandler(p, func() *config.Config { return cfg }, prober.DefaultMaxConcurrentProbes, logger))
	defer srv.Close()
	body := get(t, srv.URL+"/probe?module=greet&target="+addr, http.StatusOK)
	for _, want := range []string{"probe_success 1", `probe_banner_duration_seconds{phase="connect"}`, `probe_oxcross_reason{reason="ok"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/probe with the banner kind: want %q in\n%s", want, body)
		}
	}
	if body := get(t, srv.URL+"/probe?module=greet&target="+host, http.StatusBadRequest); !strings.Contains(body, "address: ") || !strings.Contains(body, "not host:port") {
		t.Errorf("/probe with a host where the kind wants host:port: %q", body)
	}
}

// TestNewKindsConflicts: two kinds may not share a name or a built-in
// module.
func TestNewKindsConflicts(t *testing.T) {
	if _, err := prober.NewKinds(bannerKind{}, bannerKind{}); err == nil || !strings.Contains(err.Error(), `"banner" registered twice`) {
		t.Errorf("the same kind twice: %v", err)
	}
	kinds := prober.DefaultKinds(slog.New(slog.DiscardHandler))
	base := kinds.Base()
	for module, kind := range map[string]string{"simple": "http", "advanced": "oxcross", "tcp": "tcp", "icmp": "icmp"} {
		if got := base.Modules[module].Kind; got != kind {
			t.Errorf("built-in module %s has kind %q, want %q", module, got, kind)
		}
	}
}

func get(t *testing.T, url string, wantCode int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		t.Fatalf("GET %s: %s, want %d: %s", url, resp.Status, wantCode, b)
	}
	return string(b)
}

// TestEverySettingDocumented: every settings key of the shipped kinds (the
// yaml names of their settings types, nested ones included) is in
// docs/configuration.md; config's TestEveryKeyDocumented checks the rest.
func TestEverySettingDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	kinds := prober.DefaultKinds(slog.New(slog.DiscardHandler)).Parser(config.Limits{}).Kinds
	var walk func(where string, typ reflect.Type)
	walk = func(where string, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" && opts == "inline" {
				walk(where, f.Type) // its keys are the settings'
				continue
			}
			if name == "" || name == "-" {
				continue
			}
			if !testutil.DocumentsKey(doc, name) {
				t.Errorf("docs/configuration.md does not document %s.%s", where, name)
			}
			if f.Type.Kind() == reflect.Struct {
				walk(where+"."+name, f.Type)
			}
		}
	}
	checked := 0
	for _, name := range kinds.Names() {
		k, _ := kinds.Lookup(name)
		if k.NewSettings == nil {
			continue
		}
		if !testutil.DocumentsKey(doc, k.SettingsKey) {
			t.Errorf("docs/configuration.md does not document the settings key %q of kind %s", k.SettingsKey, name)
		}
		walk(k.SettingsKey, reflect.TypeOf(k.NewSettings()))
		checked++
	}
	if checked < 3 {
		t.Errorf("checked the settings of %d kinds, want those of http, oxcross and tcp", checked)
	}
}
