package discovery

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MaxConfigBytes bounds a config file or response.
const MaxConfigBytes = 16 << 20

// ErrNotModified is returned when the config has not changed since the last
// successful load.
var ErrNotModified = errors.New("config not modified")

// Loaded is a config together with the normalized body it is served and
// cached as.
type Loaded struct {
	Config *Config
	// Body is the normalized JSON of Config.
	Body []byte
	// ETag identifies Body.
	ETag string
}

// NewLoaded normalizes cfg.
func NewLoaded(cfg *Config) (*Loaded, error) {
	body, err := cfg.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	return &Loaded{Config: cfg, Body: body, ETag: ETag(body)}, nil
}

// File reads a config file. It follows symlinks on every read, so a
// Kubernetes ConfigMap update (which swaps a symlink) is seen like an edit.
type File struct {
	path string
	lim  Limits
	last [sha256.Size]byte
	read bool
}

// SetLimits makes Load refuse a config beyond lim.
func (f *File) SetLimits(lim Limits) { f.lim = lim }

// NewFile returns a File reading path.
func NewFile(path string) *File {
	return &File{path: path}
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Load reads and parses the file. With onlyIfChanged, a file whose content
// is the same as at the previous call (successful or not) gives
// ErrNotModified, so that a watcher polling a broken file reports it once.
func (f *File) Load(onlyIfChanged bool) (*Loaded, error) {
	data, err := readLimited(f.path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	if onlyIfChanged && f.read && sum == f.last {
		return nil, ErrNotModified
	}
	f.last, f.read = sum, true
	cfg, err := f.lim.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", f.path, err)
	}
	return NewLoaded(cfg)
}

func readLimited(path string) ([]byte, error) {
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

// Remote fetches the config from a configserver's /config with conditional
// requests.
type Remote struct {
	url    string
	client *http.Client
	agent  string
	etag   string
	lim    Limits
}

// SetLimits makes Fetch refuse a config beyond lim.
func (r *Remote) SetLimits(lim Limits) { r.lim = lim }

// NewRemote returns a Remote for the configserver at base (the original's
// OXCROSS_CONFIG_API_BASE); it fetches base + "/config".
func NewRemote(base string, client *http.Client, userAgent string) (*Remote, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("config URL %q: want http(s)://host[:port][/prefix]", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/config"
	return &Remote{url: u.String(), client: client, agent: userAgent}, nil
}

// SetLeafID makes the configserver answer the view of the config meant for
// leaf id (origins selected by leaf labels).
func (r *Remote) SetLeafID(id string) {
	u, err := url.Parse(r.url)
	if err != nil {
		return
	}
	q := u.Query()
	q.Set("leaf_id", id)
	u.RawQuery = q.Encode()
	r.url = u.String()
}

// URL is the address the config is fetched from.
func (r *Remote) URL() string { return r.url }

// SetETag makes the next Fetch conditional on etag, the tag of a config
// the caller already has (from its cache).
func (r *Remote) SetETag(etag string) { r.etag = etag }

// Fetch GETs the config. It returns ErrNotModified when the configserver
// answers 304 to the ETag of the last config fetched.
func (r *Remote) Fetch(ctx context.Context) (*Loaded, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching config from %s: %w", r.url, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", r.agent)
	if r.etag != "" {
		req.Header.Set("If-None-Match", r.etag)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching config: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, ErrNotModified
	case http.StatusOK:
	default:
		return nil, fmt.Errorf("fetching config from %s: status %s", r.url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading config from %s: %w", r.url, err)
	}
	if len(data) > MaxConfigBytes {
		return nil, fmt.Errorf("config from %s is larger than %d bytes", r.url, MaxConfigBytes)
	}
	cfg, err := r.lim.ParseServed(data)
	if err != nil {
		return nil, fmt.Errorf("config from %s: %w", r.url, err)
	}
	l, err := NewLoaded(cfg)
	if err != nil {
		return nil, err
	}
	if et := resp.Header.Get("ETag"); et != "" {
		l.ETag = et
	}
	r.etag = l.ETag
	return l, nil
}

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

// ReadCache loads a config cache written by WriteCache.
func ReadCache(path string) (*Loaded, error) {
	return Limits{}.ReadCache(path)
}

// ReadCache is the package's ReadCache, refusing a cached config beyond
// lim (the limits may have been lowered since it was written).
func (lim Limits) ReadCache(path string) (*Loaded, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, fmt.Errorf("config cache: %w", err)
	}
	cfg, err := lim.ParseServed(data)
	if err != nil {
		return nil, fmt.Errorf("config cache %s: %w", path, err)
	}
	return NewLoaded(cfg)
}
