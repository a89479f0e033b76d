package testutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "config.yaml")
	WriteFile(t, path, "one")
	WriteFile(t, path, "two")
	if got := readFile(t, path); got != "two" {
		t.Errorf("read %q, want two", got)
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	WriteFile(t, path, "one")
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	WriteAtomic(t, path, "two")
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != "two" {
		t.Errorf("read %q, want two", got)
	}
	if os.SameFile(before, after) {
		t.Errorf("the file was written in place, not replaced")
	}
	if after.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", after.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files in the directory, want 1 (no temporary file left)", len(entries))
	}

	// A failure is an error, not the end of the goroutine.
	returned := false
	tb := run(t, func(tb testing.TB) {
		WriteAtomic(tb, filepath.Join(dir, "missing", "config.yaml"), "x")
		returned = true
	})
	if !tb.Failed() || tb.fatal || !returned || !strings.Contains(tb.message(), "missing") {
		t.Errorf("writing into a missing directory: failed %v, fatal %v, returned %v, %q", tb.Failed(), tb.fatal, returned, tb.message())
	}
}

func TestConfigMap(t *testing.T) {
	dir := t.TempDir()
	m := NewConfigMap(t, dir, map[string]string{"config.yaml": "v1", "extra.yaml": "e1"})
	if got := readFile(t, m.Path("config.yaml")); got != "v1" {
		t.Errorf("read %q, want v1", got)
	}
	if target, err := os.Readlink(m.Path("config.yaml")); err != nil || target != filepath.Join("..data", "config.yaml") {
		t.Errorf("config.yaml links to %q (%v), want ..data/config.yaml", target, err)
	}
	v1, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		t.Fatal(err)
	}

	m.Swap(t, map[string]string{"config.yaml": "v2"})
	if got := readFile(t, m.Path("config.yaml")); got != "v2" {
		t.Errorf("after Swap: read %q, want v2", got)
	}
	v2, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil || v2 == v1 || !strings.HasPrefix(v2, "..") {
		t.Errorf("..data links to %q (%v) after Swap, before to %q; want another hidden directory", v2, err, v1)
	}
	if _, err := os.Lstat(filepath.Join(dir, v1)); !os.IsNotExist(err) {
		t.Errorf("the previous version %s is still there: %v", v1, err)
	}
	if _, err := os.Lstat(m.Path("extra.yaml")); !os.IsNotExist(err) {
		t.Errorf("extra.yaml, gone from the ConfigMap, is still linked: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 3 { // ..2026..., ..data, config.yaml
		t.Errorf("directory holds %q, want the version, ..data and config.yaml", names)
	}

	tb := run(t, func(tb testing.TB) { m.Swap(tb, map[string]string{"../escape": "x"}) })
	if !tb.Failed() || tb.fatal {
		t.Errorf("a bad file name: failed %v, fatal %v", tb.Failed(), tb.fatal)
	}
}
