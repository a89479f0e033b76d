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
