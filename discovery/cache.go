package discovery

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/oxcross/oxcross/config"
)

// WriteCache writes body to path atomically: a temporary file in the same
// directory, synced, then renamed over path, so that a crash leaves either
// the old cache or the new one.
func WriteCache(path string, body []byte) error {
	dir := filepath.Dir(path)
	removeStaleTemps(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing config cache: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(body); err != nil {
		tmp.Close()
		return fmt.Errorf("writing config cache %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing config cache %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing config cache %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing config cache %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// staleTempAge is how old a temporary cache file must be before
// WriteCache takes it for the leftover of a crash.
const staleTempAge = time.Minute

// removeStaleTemps removes the temporary files of WriteCache that a crash
// (SIGKILL, power loss) left next to path, so that repeated crashes do not
// pile them up.
func removeStaleTemps(path string) {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+escapeGlob(filepath.Base(path))+".*"))
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > staleTempAge {
			_ = os.Remove(m)
		}
	}
}

func escapeGlob(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`)
	return r.Replace(s)
}

// ReadCache loads a config cache written by WriteCache, parsed with
// parser: its limits may have been lowered since the cache was written.
func ReadCache(path string, parser config.Parser) (*config.Snapshot, error) {
	data, err := config.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config cache: %w", err)
	}
	cfg, err := parser.ParseView(data)
	if err != nil {
		return nil, fmt.Errorf("config cache %s: %w", path, err)
	}
	return config.NewSnapshot(cfg)
}
