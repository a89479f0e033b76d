package service

import (
	"bytes"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"
)

// The man page's header is one line whatever version.Print says, and its
// NAME section is a whatis line.
func TestManPageTemplate(t *testing.T) {
	defer func(v, d string) { version.Version, version.BuildDate = v, d }(version.Version, version.BuildDate)
	version.Version, version.BuildDate = "1.2.3", "20261130-09:25:24"

	app := kingpin.New("oxcross-test", "Oxcross test: does nothing. More text.")
	AddFlags(app, "oxcross_test", "", "9999")
	var out bytes.Buffer
	app.UsageWriter(&out)
	ctx, err := app.ParseContext(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.UsageForContextWithTemplate(ctx, 2, ManPageTemplate(app.Name, app.Help)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	if want := `.TH OXCROSS-TEST 1 "2026-11-30" "oxcross-test 1.2.3" "User Commands"`; lines[0] != want {
		t.Errorf("header %q, want %q", lines[0], want)
	}
	if lines[1] != `.SH "NAME"` || lines[2] != `oxcross-test \- does nothing` {
		t.Errorf("NAME section %q, want a whatis line", lines[1:3])
	}
}

// A command's help lists its own flags before the program's.
func TestUsageTemplateCommandFlagsFirst(t *testing.T) {
	if UsageTemplate == kingpin.DefaultUsageTemplate {
		t.Fatal("UsageTemplate is kingpin's default: the flags section it replaces was not found")
	}
	app := kingpin.New("oxcross-test", "Oxcross test.")
	AddFlags(app, "oxcross_test", "", "9999")
	app.Command("run", "Run.").Default()
	probe := app.Command("probe", "Probe once.")
	probe.Flag("module", "The module.").String()
	var out bytes.Buffer
	app.UsageWriter(&out)
	ctx, err := app.ParseContext([]string{"probe"})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.UsageForContext(ctx); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	own, global := strings.Index(help, "--module"), strings.Index(help, "--web.listen-address")
	if own < 0 || global < 0 || own > global || !strings.Contains(help, "Flags of probe:") || !strings.Contains(help, "Flags of oxcross-test:") {
		t.Errorf("probe's help, want its own flags first:\n%s", help)
	}
	out.Reset()
	ctx, err = app.ParseContext(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.UsageForContext(ctx); err != nil {
		t.Fatal(err)
	}
	// Without a command the default one (run) is selected, which has no
	// flags of its own: the program's are all there.
	if !strings.Contains(out.String(), "--web.listen-address") || strings.Contains(out.String(), "Flags of run:") {
		t.Errorf("the default command's help, want the program's flags:\n%s", out.String())
	}
}
