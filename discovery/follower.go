package discovery

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/config"
)

// FollowerOptions configure a Follower. Exactly one of Remote and File is set.
type FollowerOptions struct {
	// Remote is the configserver to follow.
	Remote *Remote
	// File is the local config file of a standalone leaf.
	File *config.File
	// CacheFile keeps the last good config from Remote, read back with
	// Remote's parser; empty disables it. A write that fails is retried at
	// every refresh until it succeeds.
	CacheFile string
	// RefreshInterval is how often Remote is asked for a new config.
	RefreshInterval time.Duration
	// WatchInterval is how often File is checked for changes.
	WatchInterval time.Duration
	// FetchTimeout bounds each request to Remote: the heartbeat and the
	// fetch of the config get it each. 0 means DefaultFetchTimeout; it is
	// cut to RefreshInterval (but not below a second), so that a
	// configserver that accepts and never answers cannot hold up more than
	// one refresh.
	FetchTimeout time.Duration
	// Heartbeat, when set, is called before every fetch from Remote (the
	// leaf's registration with the configserver); its errors are logged.
	Heartbeat func(context.Context) error
	// Apply receives every new good config, after Config returns it. It
	// is called from Run's goroutine.
	Apply func(*config.Config)
	// Logger and Registerer are required.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Follower keeps the leaf's config current: it loads it at start (from the
// configserver, else from the cache, else retrying with backoff), then
// refreshes it on schedule and on demand, keeping the last good config
// whenever a refresh fails. It holds the leaf's one copy of its config.
type Follower struct {
	o FollowerOptions
	// reload carries Reload's requests; each gets the load's result.
	reload  chan chan error
	current atomic.Pointer[config.Snapshot]
	mu      sync.Mutex
	lastErr error
	// cacheErr says why the cache could not be used at start.
	cacheErr error

	refreshSuccess  prometheus.Gauge
	refreshFailures prometheus.Counter
	origins         prometheus.Gauge
	fromCache       prometheus.Gauge

	// The cache, when there is one; only Run's goroutine uses these.
	// cacheStale: the cache file does not hold the current config yet;
	// cacheWriteErr is the errorKind of the last failed write, "" after a
	// success.
	cacheStale         bool
	cacheWriteErr      string
	cacheWriteFailures prometheus.Counter
	cacheWriteSuccess  prometheus.Gauge
}

// DefaultFetchTimeout bounds a request to the configserver unless
// FollowerOptions.FetchTimeout says otherwise.
const DefaultFetchTimeout = 10 * time.Second

// NewFollower returns a Follower; call Run to start it.
func NewFollower(o FollowerOptions) (*Follower, error) {
	if (o.Remote == nil) == (o.File == nil) {
		return nil, errors.New("a follower needs either a config URL or a config file")
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = time.Minute
	}
	if o.WatchInterval <= 0 {
		o.WatchInterval = 5 * time.Second
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = DefaultFetchTimeout
	}
	o.FetchTimeout = min(o.FetchTimeout, max(o.RefreshInterval, time.Second))
	f := &Follower{
		o:      o,
		reload: make(chan chan error),
		refreshSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "oxcross_leaf_config_last_refresh_success_timestamp_seconds",
			Help: "Time of the last successful config load or refresh (a 304 counts), as a Unix timestamp.",
		}),
		refreshFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oxcross_leaf_config_refresh_failures_total",
			Help: "Config loads or refreshes that failed; the leaf kept its last good config.",
		}),
		origins: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "oxcross_leaf_config_origins",
			Help: "Number of origins in the config the leaf probes.",
		}),
		fromCache: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "oxcross_leaf_config_from_cache",
			Help: "1 while the leaf probes with the config from its cache file because the configserver has not answered since start.",
		}),
	}
	o.Registerer.MustRegister(f.refreshSuccess, f.refreshFailures, f.origins, f.fromCache)
	if f.usesCache() {
		f.cacheWriteFailures = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oxcross_leaf_config_cache_write_failures_total",
			Help: "Writes of the config cache file that failed; the write is retried at every refresh until it succeeds.",
		})
		f.cacheWriteSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "oxcross_leaf_config_cache_last_write_success_timestamp_seconds",
			Help: "Time the config cache file was last written, as a Unix timestamp; 0 if not since start.",
		})
		o.Registerer.MustRegister(f.cacheWriteFailures, f.cacheWriteSuccess)
	}
	return f, nil
}

// usesCache reports whether the follower keeps a cache of the config from
// the configserver.
func (f *Follower) usesCache() bool {
	return f.o.Remote != nil && f.o.CacheFile != ""
}

// Reload has Run load the config now (SIGHUP, POST /-/reload): it rereads
// the config file, or fetches from the configserver, and returns when that
// is done, with why it failed (the last good config stays), or when ctx
// ends. Before the first config it cuts the start's backoff short.
func (f *Follower) Reload(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case f.reload <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Config returns the config the leaf probes with, nil until the first
// one is loaded. It is safe for concurrent use.
func (f *Follower) Config() *config.Config {
	if s := f.current.Load(); s != nil {
		return s.Config
	}
	return nil
}

// Ready reports nil once the leaf has a config to probe with, and why not
// otherwise.
func (f *Follower) Ready() error {
	if f.current.Load() != nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lastErr != nil && f.cacheErr != nil {
		return fmt.Errorf("no config yet: %w; and the cache is no use: %w", f.lastErr, f.cacheErr)
	}
	if f.lastErr != nil {
		return fmt.Errorf("no config yet: %w", f.lastErr)
	}
	return errors.New("no config yet: still loading")
}

// Run follows the config until ctx ends.
func (f *Follower) Run(ctx context.Context) {
	f.start(ctx)
	interval := f.o.RefreshInterval
	if f.o.File != nil {
		interval = f.o.WatchInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			f.refresh(ctx, true)
		case done := <-f.reload:
			done <- f.refresh(ctx, false)
		}
	}
}

// start loads the first config, falling back to the cache, and retries with
// backoff until there is one.
func (f *Follower) start(ctx context.Context) {
	backoff := time.Second
	var waiting chan error // a Reload that cut the backoff short
	answer := func(err error) {
		if waiting != nil {
			waiting <- err
			waiting = nil
		}
	}
	for attempt := 1; ; attempt++ {
		err := f.refresh(ctx, false)
		if err == nil || f.hasConfig() {
			answer(nil)
			return
		}
		if attempt == 1 && f.o.Remote != nil && f.o.CacheFile != "" {
			if l, cerr := ReadCache(f.o.CacheFile, f.o.Remote.parser); cerr != nil {
				// A missing cache is normal on a first start; a corrupt one
				// is ignored, and /-/ready says why it was no use.
				f.o.Logger.Warn("No usable config cache", "file", f.o.CacheFile, "err", cerr)
				f.mu.Lock()
				f.cacheErr = cerr
				f.mu.Unlock()
			} else {
				f.o.Logger.Warn("Configserver unreachable at start, probing with the cached config", "file", f.o.CacheFile, "origins", len(l.Config.Origins), "err", err)
				f.o.Remote.SetETag(l.ETag)
				f.fromCache.Set(1)
				f.use(l)
				answer(err)
				return
			}
		}
		answer(err)
		f.o.Logger.Error("No config to probe with yet, retrying", "in", backoff, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		case waiting = <-f.reload:
		}
		backoff = min(backoff*2, f.o.RefreshInterval)
	}
}

func (f *Follower) hasConfig() bool {
	return f.current.Load() != nil
}

// refresh loads the config once. With poll set, an unchanged local file is
// not reported again. A cache that could not be written is written now,
// whatever the configserver answers.
func (f *Follower) refresh(ctx context.Context, poll bool) error {
	l, err := f.load(ctx, poll)
	if l != nil {
		// Into the cache before it is applied: a leaf that restarts
		// finds what it probed with.
		if f.usesCache() {
			f.writeCache(l.Body)
		}
		f.use(l)
		return nil
	}
	if f.usesCache() && f.cacheStale {
		if cur := f.current.Load(); cur != nil {
			f.writeCache(cur.Body)
		}
	}
	return err
}

// writeCache writes body to the cache file, and says when that starts or
// stops failing.
func (f *Follower) writeCache(body []byte) {
	if err := WriteCache(f.o.CacheFile, body); err != nil {
		f.cacheStale = true
		f.cacheWriteFailures.Inc()
		if msg := errorKind(err); msg != f.cacheWriteErr {
			f.o.Logger.Warn("Could not write the config cache; retrying at every refresh", "file", f.o.CacheFile, "err", err)
			f.cacheWriteErr = msg
		} else {
			f.o.Logger.Debug("Could not write the config cache again", "file", f.o.CacheFile, "err", err)
		}
		return
	}
	if f.cacheWriteErr != "" {
		f.o.Logger.Info("Wrote the config cache again", "file", f.o.CacheFile)
		f.cacheWriteErr = ""
	}
	f.cacheStale = false
	f.cacheWriteSuccess.SetToCurrentTime()
}

// errorKind is what an error of a file operation says without naming the
// file: the write's temporary file has a new name every time.
func errorKind(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// load fetches or reads the config once. It returns a config that is new
// or changed, nil when there is none.
func (f *Follower) load(ctx context.Context, poll bool) (*config.Snapshot, error) {
	var (
		l   *config.Snapshot
		err error
	)
	if f.o.Remote != nil {
		if f.o.Heartbeat != nil {
			hctx, cancel := context.WithTimeout(ctx, f.o.FetchTimeout)
			if herr := f.o.Heartbeat(hctx); herr != nil && ctx.Err() == nil {
				f.o.Logger.Warn("Heartbeat to the configserver failed", "err", herr)
			}
			cancel()
		}
		rctx, cancel := context.WithTimeout(ctx, f.o.FetchTimeout)
		l, err = f.o.Remote.Fetch(rctx)
		cancel()
	} else {
		l, err = f.o.File.Load(poll)
	}
	switch {
	case errors.Is(err, config.ErrNotModified):
		if f.o.Remote != nil {
			f.refreshSuccess.SetToCurrentTime()
			f.fromCache.Set(0)
		}
		return nil, nil
	case err != nil:
		if ctx.Err() != nil {
			return nil, err
		}
		f.refreshFailures.Inc()
		f.mu.Lock()
		f.lastErr = err
		f.mu.Unlock()
		had := f.hasConfig()
		if had {
			f.o.Logger.Error("Config refresh failed, keeping the last good config", "err", err)
		}
		return nil, err
	}
	f.refreshSuccess.SetToCurrentTime()
	f.fromCache.Set(0)
	f.warn(l)
	return l, nil
}

// warn logs the warnings of a config just loaded (config.Config.Warnings):
// each time a local file is read, and for a configserver's config when it
// changed, not at every refresh.
func (f *Follower) warn(l *config.Snapshot) {
	if f.o.Remote != nil {
		if prev := f.current.Load(); prev != nil && prev.ETag == l.ETag {
			return
		}
	}
	logger := f.o.Logger
	if f.o.File != nil {
		logger = logger.With("file", f.o.File.Path())
	}
	for _, w := range l.Config.Warnings {
		logger.Warn("Config accepted as the original Oxcross read it", "warning", w)
	}
}

func (f *Follower) use(l *config.Snapshot) {
	f.mu.Lock()
	f.lastErr = nil
	f.mu.Unlock()
	// use runs on Run's goroutine only: nothing stores in between. The
	// same config again keeps the one applied, which the scheduler's
	// loops point into.
	if prev := f.current.Load(); prev != nil && prev.ETag == l.ETag {
		return
	}
	f.current.Store(l)
	f.origins.Set(float64(len(l.Config.Origins)))
	f.o.Logger.Info("Loaded config", "origins", len(l.Config.Origins), "etag", l.ETag)
	f.o.Apply(l.Config)
}

// ServeReload answers POST /-/reload as the configserver does: it reloads
// the config now (Reload) and answers 200 once that is done, or 500 with
// the reason the last good config stays.
func (f *Follower) ServeReload(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := f.Reload(r.Context()); err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = fmt.Fprintf(w, "Reload failed, keeping the last good config: %v\n", err)
		return
	}
	n := 0
	if cfg := f.Config(); cfg != nil {
		n = len(cfg.Origins)
	}
	_, _ = fmt.Fprintf(w, "Reloaded: %d origins.\n", n)
}
