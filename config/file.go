package config

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxConfigBytes bounds a config file or response.
const MaxConfigBytes = 16 << 20

// ErrNotModified is returned when the config has not changed since the last
// successful load.
var ErrNotModified = errors.New("config not modified")

// File reads a config file. It follows symlinks on every read, so a
// Kubernetes ConfigMap update (which swaps a symlink) is seen like an edit.
type File struct {
	path   string
	parser Parser
	last   [sha256.Size]byte
	read   bool
}

// NewFile returns a File reading path with parser.
func NewFile(path string, parser Parser) *File {
	return &File{path: path, parser: parser}
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Load reads and parses the file. With onlyIfChanged, a file whose content
// is the same as at the previous call (successful or not) gives
// ErrNotModified, so that a watcher polling a broken file reports it once.
func (f *File) Load(onlyIfChanged bool) (*Snapshot, error) {
	data, err := ReadFile(f.path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	if onlyIfChanged && f.read && sum == f.last {
		return nil, ErrNotModified
	}
	f.last, f.read = sum, true
	cfg, err := f.parser.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", f.path, err)
	}
	return NewSnapshot(cfg)
}

// ReadFile reads a config file or cache of at most MaxConfigBytes.
func ReadFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading config file %s: %w", path, err)
	}
	if len(data) > MaxConfigBytes {
		return nil, fmt.Errorf("config file %s is larger than %d bytes", path, MaxConfigBytes)
	}
	return data, nil
}
