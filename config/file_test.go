package config_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
)

// fileConfig is a valid config with one origin at host:9301.
func fileConfig(host string) string {
	return fmt.Sprintf("interval: 30\ntimeout: 10\norigins:\n  - scheme: http\n    hostname: %s\n    port: 9301\n", host)
}

func snapshot(t testing.TB, text string) *config.Snapshot {
	t.Helper()
	s, err := config.NewSnapshot(mustParse(t, []byte(text)))
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	return s
}

func TestFileLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	testutil.WriteFile(t, path, fileConfig("a.example.com"))
	f := config.NewFile(path, parser)
	if f.Path() != path {
		t.Errorf("Path() = %q, want %q", f.Path(), path)
	}

	l, err := f.Load(true)
	if err != nil {
		t.Fatalf("first Load(true): %v", err)
	}
	if want := snapshot(t, fileConfig("a.example.com")); !bytes.Equal(l.Body, want.Body) || l.ETag != want.ETag || l.ETag != config.ETag(l.Body) {
		t.Errorf("Load: body %s etag %s, want %s %s", l.Body, l.ETag, want.Body, want.ETag)
	}
	if len(l.Config.Origins) != 1 || l.Config.Origins[0].ID != "a.example.com-9301-http" {
		t.Errorf("Load: origins %+v", l.Config.Origins)
	}
	if _, err := f.Load(true); !errors.Is(err, config.ErrNotModified) {
		t.Errorf("Load(true) of an unchanged file: err = %v, want ErrNotModified", err)
	}
	if l2, err := f.Load(false); err != nil || l2.ETag != l.ETag {
		t.Errorf("Load(false) of an unchanged file: %v, %v; want the config again", l2, err)
	}

	// The same config written differently is new content, but the same body.
	testutil.WriteFile(t, path, fileConfig("a.example.com")+"# a comment\n")
	if l2, err := f.Load(true); err != nil || l2.ETag != l.ETag {
		t.Errorf("Load(true) after a comment was added: %v, %v; want the same normalized config", l2, err)
	}

	// A broken file is reported once, then not again while it is unchanged.
	testutil.WriteFile(t, path, fileConfig("b.example.com")+"  - scheme: gopher\n")
	_, err = f.Load(true)
	if err == nil || errors.Is(err, config.ErrNotModified) {
		t.Fatalf("Load(true) of a broken file: err = %v, want a parse error", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "scheme") {
		t.Errorf("error %q does not name the file and the field", err)
	}
	for range 3 {
		if _, err := f.Load(true); !errors.Is(err, config.ErrNotModified) {
			t.Errorf("Load(true) of an unchanged broken file: err = %v, want ErrNotModified", err)
		}
	}
	if _, err := f.Load(false); err == nil || errors.Is(err, config.ErrNotModified) {
		t.Errorf("Load(false) of a broken file: err = %v, want the parse error", err)
	}

	// Going back to the previous good content is a change.
	testutil.WriteFile(t, path, fileConfig("a.example.com"))
	if l2, err := f.Load(true); err != nil || l2.ETag != l.ETag {
		t.Errorf("Load(true) after the fix: %v, %v", l2, err)
	}

	// A missing file is an error naming it, every time.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := f.Load(true); err == nil || errors.Is(err, config.ErrNotModified) || !strings.Contains(err.Error(), path) {
			t.Errorf("Load(true) of a missing file: err = %v, want one naming %s", err, path)
		}
	}
}

// TestFileLoadParser: a File parses with its parser: its kinds and limits.
func TestFileLoadParser(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	testutil.WriteFile(t, path, "interval: 100ms\norigins:\n  - url: http://h/\n")
	if _, err := config.NewFile(path, kinds.Parser(config.Limits{MinInterval: time.Second})).Load(false); err == nil || !strings.Contains(err.Error(), "minimum interval") {
		t.Errorf("Load beyond the parser's limits: %v", err)
	}
	if _, err := config.NewFile(path, parser).Load(false); err != nil {
		t.Errorf("Load without limits: %v", err)
	}
	if _, err := config.NewFile(path, config.Parser{}).Load(false); err == nil || !strings.Contains(err.Error(), "without probe kinds") {
		t.Errorf("Load with a parser without kinds: %v", err)
	}
}

// TestFileLoadSymlink: a File follows a symlink on every read, as a
// Kubernetes ConfigMap volume needs.
func TestFileLoadSymlink(t *testing.T) {
	cm := testutil.NewConfigMap(t, t.TempDir(), map[string]string{"config.yaml": fileConfig("a.example.com")})
	f := config.NewFile(cm.Path("config.yaml"), parser)
	l, err := f.Load(true)
	if err != nil || l.Config.Origins[0].ID != "a.example.com-9301-http" {
		t.Fatalf("Load: %v, %v", l, err)
	}
	cm.Swap(t, map[string]string{"config.yaml": fileConfig("b.example.com")})
	l, err = f.Load(true)
	if err != nil || l.Config.Origins[0].ID != "b.example.com-9301-http" {
		t.Errorf("Load after the ConfigMap's swap: %v, %v", l, err)
	}
}

func TestFileLoadTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	big := fileConfig("a.example.com") + "#" + strings.Repeat("x", config.MaxConfigBytes) + "\n"
	testutil.WriteFile(t, path, big)
	_, err := config.NewFile(path, parser).Load(false)
	if err == nil || !strings.Contains(err.Error(), "larger than") || !strings.Contains(err.Error(), path) {
		t.Errorf("Load of a %d-byte file: err = %v, want one about its size naming the file", len(big), err)
	}

	// A file of exactly MaxConfigBytes is read whole.
	exact := fileConfig("a.example.com") + "#"
	exact += strings.Repeat("x", config.MaxConfigBytes-len(exact)-1) + "\n"
	testutil.WriteFile(t, path, exact)
	if data, err := config.ReadFile(path); err != nil || len(data) != config.MaxConfigBytes {
		t.Errorf("ReadFile of a file of MaxConfigBytes: %d bytes, %v", len(data), err)
	}
	if _, err := config.NewFile(path, parser).Load(false); err != nil {
		t.Errorf("Load of a file of MaxConfigBytes: %v", err)
	}
}

func TestReadFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	if _, err := config.ReadFile(path); err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("ReadFile of a missing file: %v, want an error naming it that wraps ErrNotExist", err)
	}
}
