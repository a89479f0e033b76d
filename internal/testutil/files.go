package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// WriteFile writes text to path (mode 0644), creating the directories
// it needs. It must be called from the test's goroutine.
func WriteFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
}

// WriteAtomic replaces path with text (mode 0644) as editors and
// configuration managers do: it writes a temporary file in the same
// directory and renames it over path, so that a reader never sees half of
// it. It reports a failure with t.Errorf, so it may be called from any
// goroutine.
func WriteAtomic(t testing.TB, path, text string) {
	t.Helper()
	if err := ReplaceFile(path, text); err != nil {
		t.Error(err)
	}
}

// ReplaceFile is WriteAtomic without a test.
func ReplaceFile(path, text string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	_, err = tmp.WriteString(text)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return nil
}

// ConfigMap is a directory laid out as the kubelet lays out a Kubernetes
// ConfigMap volume: the files are in a timestamped directory, ..data is
// a symbolic link to it, and each file name is a symbolic link to
// ..data/name. Swap updates it as the kubelet does.
type ConfigMap struct {
	// Dir is the volume's directory.
	Dir string

	mu      sync.Mutex
	version int
	current string          // the timestamped directory ..data points to
	linked  map[string]bool // the file names linked in Dir
}

// NewConfigMap lays files (by name) out in dir, which must exist, as a
// ConfigMap volume.
func NewConfigMap(t testing.TB, dir string, files map[string]string) *ConfigMap {
	t.Helper()
	m := &ConfigMap{Dir: dir, linked: make(map[string]bool)}
	if err := m.swap(files); err != nil {
		t.Fatal(err)
	}
	return m
}

// Path returns the path of the file name in the volume, as a program
// reading the ConfigMap is given it.
func (m *ConfigMap) Path(name string) string { return filepath.Join(m.Dir, name) }

// Swap replaces the volume's files with files, as the kubelet does: it
// writes them to a new timestamped directory, points a new ..data_tmp
// symbolic link to it, renames that over ..data, links new file names, unlinks
// those gone and removes the previous directory. A reader following the links sees
// either the old files or the new ones, never a mix. It reports a failure
// with t.Errorf, so it may be called from any goroutine.
func (m *ConfigMap) Swap(t testing.TB, files map[string]string) {
	t.Helper()
	if err := m.swap(files); err != nil {
		t.Error(err)
	}
}

func (m *ConfigMap) swap(files map[string]string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.version++
	version := fmt.Sprintf("..2026_01_01_00_00_00.%04d", m.version)
	if err := os.Mkdir(filepath.Join(m.Dir, version), 0o755); err != nil {
		return fmt.Errorf("ConfigMap %s: %w", m.Dir, err)
	}
	for name, text := range files {
		if name == "" || strings.ContainsRune(name, os.PathSeparator) || strings.HasPrefix(name, "..") {
			return fmt.Errorf("ConfigMap %s: bad file name %q", m.Dir, name)
		}
		if err := os.WriteFile(filepath.Join(m.Dir, version, name), []byte(text), 0o644); err != nil {
			return fmt.Errorf("ConfigMap %s: %w", m.Dir, err)
		}
	}
	tmp := filepath.Join(m.Dir, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		return fmt.Errorf("ConfigMap %s: %w", m.Dir, err)
	}
	if err := os.Rename(tmp, filepath.Join(m.Dir, "..data")); err != nil {
		return fmt.Errorf("ConfigMap %s: %w", m.Dir, err)
	}
	for name := range files {
		if m.linked[name] {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), m.Path(name)); err != nil {
			return fmt.Errorf("ConfigMap %s: %w", m.Dir, err)
		}
		m.linked[name] = true
	}
	for name := range m.linked {
		if _, ok := files[name]; ok {
			continue
		}
		if err := os.Remove(m.Path(name)); err != nil {
			return fmt.Errorf("ConfigMap %s: %w", m.Dir, err)
		}
		delete(m.linked, name)
	}
	if m.current != "" {
		if err := os.RemoveAll(filepath.Join(m.Dir, m.current)); err != nil {
			return fmt.Errorf("ConfigMap %s: removing the previous version: %w", m.Dir, err)
		}
	}
	m.current = version
	return nil
}
