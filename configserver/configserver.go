// Package configserver serves the target config to leaves: it loads and
// validates the config file, reloads it on demand and when the file
// changes, and answers GET /config with conditional requests. It keeps the
// registry of live leaves with its HTTP handlers, and serves the http_sd
// lists /sd/leaves and /sd/origins.
package configserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/config"
)

// Server holds the config being served.
type Server struct {
	file    *config.File
	logger  *slog.Logger
	current atomic.Pointer[config.Snapshot]
	// mu serialises reloads: the File remembers the last content it read.
	mu sync.Mutex

	reloadSuccess   prometheus.Gauge
	reloadTimestamp prometheus.Gauge
	reloads         *prometheus.CounterVec
	origins         prometheus.Gauge
	configRequests  *prometheus.CounterVec

	registry *Registry
	// views caches the leaves' views of the current config.
	views atomic.Pointer[viewCache]
	// auth says what the web config authenticates; nil: nothing.
	auth func() (Authentication, error)
	// identities is --registry.identities, nil without one.
	identities *identitiesFile
	// sdCache caches the encoded /sd/leaves.
	sdMu    sync.Mutex
	sdCache sdLeavesCache
}

type sdLeavesCache struct {
	configETag string
	version    uint64
	until      time.Time
	body       []byte
	// gzipped is body compressed, for clients that accept gzip: with
	// 1,000 leaves the list is ~250 KB, and ~10 KB gzipped.
	gzipped []byte
}

// Registry returns the server's leaf registry.
func (s *Server) Registry() *Registry { return s.registry }

// Options configure a Server.
type Options struct {
	// Parser reads the config file, at start and at every reload: it knows
	// the probe kinds, and its limits refuse a file beyond them like any
	// broken one. Required.
	Parser config.Parser
	// Registry configures the leaf registry.
	Registry RegistryOptions
	// Authentication says what the web config in front of the handlers
	// authenticates (WebConfigAuthentication); it is asked at every
	// registry request. nil means nothing: the registry is in open mode.
	Authentication func() (Authentication, error)
	// IdentitiesFile is an identities file (see Identities) read at start,
	// at every Reload and, when its content changed, by Watch; it
	// replaces Registry.Identities. Empty means none.
	IdentitiesFile string
}

// New loads the config file at path and returns a Server for it, its
// metrics registered on reg. A config that does not load at start is an
// error: there is no good config to keep.
func New(path string, o Options, reg prometheus.Registerer, logger *slog.Logger) (*Server, error) {
	s := &Server{
		file:     config.NewFile(path, o.Parser),
		logger:   logger,
		registry: NewRegistry(o.Registry, reg),
		auth:     o.Authentication,
		reloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "oxcross_configserver_config_last_reload_successful",
			Help: "1 if the last config reload succeeded, 0 if it failed and the previous config is still served.",
		}),
		reloadTimestamp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "oxcross_configserver_config_last_reload_success_timestamp_seconds",
			Help: "Time of the last successful config reload, as a Unix timestamp.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oxcross_configserver_config_reloads_total",
			Help: "Config reloads by result (success or failure).",
		}, []string{"result"}),
		origins: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "oxcross_configserver_config_origins",
			Help: "Number of origins in the served config.",
		}),
		configRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oxcross_configserver_config_requests_total",
			Help: "GET /config requests by status code (200 or 304).",
		}, []string{"code"}),
	}
	leaves := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "oxcross_configserver_leaves",
		Help: "Leaves in /sd/leaves by kind: static (listed in the config) or dynamic (registered by heartbeat).",
	}, []string{"kind"})
	reg.MustRegister(s.reloadSuccess, s.reloadTimestamp, s.reloads, s.origins, s.configRequests, leafCollector{s, leaves})
	s.reloads.WithLabelValues("success")
	s.reloads.WithLabelValues("failure")
	if err := s.load(false); err != nil {
		return nil, err
	}
	if o.IdentitiesFile != "" {
		s.identities = &identitiesFile{path: o.IdentitiesFile}
		if err := s.loadIdentities(false); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Reload rereads the config file and the identities file. On failure the
// previous ones stay.
func (s *Server) Reload() error {
	return errors.Join(s.load(false), s.loadIdentities(false))
}

// loadIdentities rereads the identities file, if any, and applies it when
// its content changed. With onlyIfChanged, content that failed before is
// not reported again.
func (s *Server) loadIdentities(onlyIfChanged bool) error {
	if s.identities == nil {
		return nil
	}
	ids, changed, err := s.identities.load(onlyIfChanged)
	if err != nil {
		s.logger.Error("Identities file not loaded, keeping the previous identities", "file", s.identities.path, "err", err)
		return err
	}
	if changed {
		s.registry.SetIdentities(ids)
		s.logger.Info("Loaded the registry's identities", "file", s.identities.path, "identities", len(ids))
	}
	return nil
}

// Ready reports nil while the server has a config to serve (always, once
// New has returned: a config that does not load at start is an error) and
// its registry's store can be written (always, in memory; for etcd, while
// it answers), and why not otherwise. While not ready, the server still
// serves its last config and registry.
func (s *Server) Ready() error {
	if s.current.Load() == nil {
		return errors.New("no config loaded yet")
	}
	return s.registry.store.Ready()
}

// Current returns the config being served.
func (s *Server) Current() *config.Snapshot {
	return s.current.Load()
}

func (s *Server) load(onlyIfChanged bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.file.Load(onlyIfChanged)
	if errors.Is(err, config.ErrNotModified) {
		return nil
	}
	if err != nil {
		s.reloadSuccess.Set(0)
		s.reloads.WithLabelValues("failure").Inc()
		if s.current.Load() != nil {
			s.logger.Error("Config reload failed, still serving the previous config", "file", s.file.Path(), "err", err)
		}
		return err
	}
	for _, w := range l.Config.Warnings {
		s.logger.Warn("Config accepted as the original Oxcross read it", "file", s.file.Path(), "warning", w)
	}
	// The same content keeps its views: a reload of an unchanged file
	// does not make every leaf's view be encoded again.
	if v := s.views.Load(); v == nil || v.snap.ETag != l.ETag {
		s.views.Store(newViewCache(l, MaxViewCacheBytes))
	}
	prev := s.current.Swap(l)
	s.reloadSuccess.Set(1)
	s.reloadTimestamp.SetToCurrentTime()
	s.reloads.WithLabelValues("success").Inc()
	s.origins.Set(float64(len(l.Config.Origins)))
	if prev == nil || prev.ETag != l.ETag {
		s.logger.Info("Loaded config", "file", s.file.Path(), "origins", len(l.Config.Origins), "etag", l.ETag)
	}
	return nil
}

// Watch polls the config file every interval until ctx ends and reloads it
// when its content changes. Reading the file anew each time follows
// symlinks, so Kubernetes ConfigMap updates are seen.
func (s *Server) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = s.load(true)
			_ = s.loadIdentities(true)
		}
	}
}

// ServeConfig answers GET /config with the normalized config and its ETag;
// a request whose If-None-Match has that ETag gets 304.
func (s *Server) ServeConfig(w http.ResponseWriter, r *http.Request) {
	body, etag := s.viewFor(r.URL.Query().Get("leaf_id"))
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache")
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		s.configRequests.WithLabelValues("304").Inc()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	s.configRequests.WithLabelValues("200").Inc()
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// etagMatch reports whether an If-None-Match header lists etag.
func etagMatch(header, etag string) bool {
	for header != "" {
		var tag string
		tag, header, _ = strings.Cut(header, ",")
		tag = strings.TrimSpace(tag)
		if tag == "*" || tag == etag || tag == "W/"+etag {
			return true
		}
	}
	return false
}

// ServeReload answers POST /-/reload: 200 after a successful reload, 500
// with the reason otherwise.
func (s *Server) ServeReload(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.Reload(); err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = fmt.Fprintf(w, "Reload failed, still serving the previous config: %v\n", err)
		return
	}
	_, _ = fmt.Fprintf(w, "Reloaded: %d origins.\n", len(s.Current().Config.Origins))
}

// viewFor returns the body and ETag of the config as leaf id sees it: the
// origins whose leaf selector matches the leaf's labels (from its
// registration or its static entry). An unknown leaf sees the origins
// without a selector. Without an id, it is the whole config.
//
// Views are cached per distinct selection of origins (see viewCache), so
// that ids, made-up or registered, cost no memory of their own here.
func (s *Server) viewFor(id string) ([]byte, string) {
	c := s.views.Load()
	if id == "" {
		l := s.current.Load()
		return l.Body, l.ETag
	}
	// A static leaf's labels are its config entry's, whatever its
	// registration says.
	sl, static := findStatic(c.snap.Config.Leaves, id)
	labels := sl.Labels
	if !static {
		labels, _ = s.registry.Labels(id)
	}
	body, etag, err := c.get(labels)
	if err != nil {
		s.logger.Error("Cannot encode a leaf's view of the config", "leaf_id", id, "err", err)
		return c.snap.Body, c.snap.ETag
	}
	return body, etag
}

// NewMux returns the configserver's API routes: /config, /-/reload, the
// leaf registry's /api/v1/leaves/{id} and the http_sd lists /sd/leaves and
// /sd/origins. The caller adds /metrics, health, readiness and the landing
// page.
func NewMux(s *Server) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config", s.ServeConfig)
	mux.HandleFunc("POST /-/reload", s.ServeReload)
	mux.HandleFunc("PUT /api/v1/leaves/{id}", s.servePut)
	mux.HandleFunc("DELETE /api/v1/leaves/{id}", s.serveDelete)
	mux.HandleFunc("GET /sd/leaves", s.serveSDLeaves)
	mux.HandleFunc("GET /sd/origins", s.serveSDOrigins)
	mux.HandleFunc("PUT /-/reload", s.ServeReload)
	return mux
}
