package config_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
)

const summaryConfig = `interval: 30
timeout: 5s
modules:
  ssh: {kind: tcp}
  spare: {kind: http}
leaves: [{id: a, address: 'h:1'}]
origins:
  - {url: 'http://a.example'}
  - {name: s, url: 'https://b.example/x', mode: simple, interval: 60}
  - {address: 'db:5432', module: ssh}
  - {hostname: h, module: icmp, timeout: 1s}
  - {url: 'http://c.example:9301'}
`

const summaryWant = `5 origins (advanced 2, icmp 1, simple 1, ssh 1), 2 modules of its own, 1 static leaves; interval 30s, timeout 5s by default
ORIGIN_ID            MODE      TARGET                         INTERVAL  TIMEOUT
a.example-80-http    advanced  http://a.example/oxcross       30s       5s
s                    simple    https://b.example/x            1m0s      5s
db-5432-tcp          ssh       db:5432                        30s       5s
h-icmp               icmp      h                              30s       1s
c.example-9301-http  advanced  http://c.example:9301/oxcross  30s       5s
`

// TestWriteSummary: --config.check's report: counts by module, then one
// line per origin with its target, URL or address.
func TestWriteSummary(t *testing.T) {
	var b bytes.Buffer
	if err := config.WriteSummary(&b, mustParse(t, []byte(summaryConfig))); err != nil {
		t.Fatal(err)
	}
	if b.String() != summaryWant {
		t.Errorf("WriteSummary =\n%s\nwant\n%s", b.String(), summaryWant)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	testutil.WriteFile(t, good, summaryConfig)
	var out, errOut bytes.Buffer
	if code := config.Check(good, parser, &out, &errOut); code != 0 || errOut.Len() != 0 {
		t.Errorf("Check of a valid file: %d %q", code, errOut.String())
	}
	if want := "SUCCESS: " + good + " is valid\n" + summaryWant; out.String() != want {
		t.Errorf("Check of a valid file wrote\n%s\nwant\n%s", out.String(), want)
	}

	// Every error, with its line, and nothing on out.
	bad := filepath.Join(dir, "bad.yaml")
	testutil.WriteFile(t, bad, "interval: 5\ntimeout: 6\norigins:\n  - url: ftp://h\n")
	out.Reset()
	errOut.Reset()
	if code := config.Check(bad, parser, &out, &errOut); code != 1 || out.Len() != 0 {
		t.Errorf("Check of a broken file: %d %q", code, out.String())
	}
	if got := errOut.String(); !strings.HasPrefix(got, "FAILED: config file "+bad+": ") || !containsAll(got, "line 2: timeout: 6s is longer than the interval 5s", `line 4: origins[0]: url: scheme "ftp" is not http or https`) {
		t.Errorf("Check of a broken file wrote %q", got)
	}

	out.Reset()
	errOut.Reset()
	missing := filepath.Join(dir, "missing.yaml")
	if code := config.Check(missing, parser, &out, &errOut); code != 1 || out.Len() != 0 || !containsAll(errOut.String(), "FAILED: ", "reading config file", missing) {
		t.Errorf("Check of a missing file: %d %q %q", code, out.String(), errOut.String())
	}
}

// TestCheckLimits: --config.check applies the limits it is given
// (the flags' defaults unless set).
func TestCheckLimits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	testutil.WriteFile(t, path, "interval: 1ms\ntimeout: 1ms\norigins:\n  - url: http://h/\n")
	var out, errOut bytes.Buffer
	if code := config.Check(path, kinds.Parser(config.DefaultLimits), &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "minimum interval 1s") {
		t.Errorf("check with the default limits: %d %q %q", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := config.Check(path, kinds.Parser(config.Limits{MinInterval: time.Millisecond}), &out, &errOut); code != 0 {
		t.Errorf("check with a 1ms minimum: %d %q", code, errOut.String())
	}
}
