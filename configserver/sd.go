package configserver

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/discovery"
)

// serveSDLeaves answers the http_sd list of live leaves: the config's
// static leaves and the registered ones. The encoded list is cached until
// the registry or config changes or a leaf expires.
func (s *Server) serveSDLeaves(w http.ResponseWriter, r *http.Request) {
	l := s.current.Load()
	now := s.registry.opts.Now()
	s.sdMu.Lock()
	c := s.sdCache
	s.sdMu.Unlock()
	version := s.registry.currentVersion()
	if c.body == nil || c.configETag != l.ETag || c.version != version || !now.Before(c.until) {
		body, until := s.encodeSDLeaves(l)
		c = sdLeavesCache{configETag: l.ETag, version: version, until: until, body: body, gzipped: gzipBytes(body)}
		s.sdMu.Lock()
		s.sdCache = c
		s.sdMu.Unlock()
	}
	w.Header().Add("Vary", "Accept-Encoding")
	if c.gzipped != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		writeJSON(w, c.gzipped)
		return
	}
	writeJSON(w, c.body)
}

// gzipBytes returns b gzipped, or nil if that fails.
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil
	}
	if err := zw.Close(); err != nil {
		return nil
	}
	return buf.Bytes()
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
// Prometheus' http_sd client sends none; curl --compressed, browsers and
// Go's default HTTP client do.
func acceptsGzip(header string) bool {
	for header != "" {
		var part string
		part, header, _ = strings.Cut(header, ",")
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

func (s *Server) encodeSDLeaves(l *config.Snapshot) ([]byte, time.Time) {
	leaves, nextExpiry := s.leaves(l)
	body, err := json.Marshal(discovery.LeafGroups(leaves))
	if err != nil {
		s.logger.Error("Cannot encode /sd/leaves", "err", err)
		return []byte("[]"), time.Time{}
	}
	until := nextExpiry
	if until.IsZero() {
		until = s.registry.opts.Now().Add(time.Hour)
	}
	return body, until
}

// Leaves returns the live leaves: the config's static ones and the
// registered ones.
func (s *Server) Leaves() []discovery.Leaf {
	leaves, _ := s.leaves(s.current.Load())
	return leaves
}

func (s *Server) leaves(l *config.Snapshot) ([]discovery.Leaf, time.Time) {
	dynamic, _, nextExpiry := s.registry.Live()
	static := make(map[string]bool, len(l.Config.Leaves))
	leaves := make([]discovery.Leaf, 0, len(l.Config.Leaves)+len(dynamic))
	for _, sl := range l.Config.Leaves {
		static[sl.ID] = true
		leaves = append(leaves, discovery.Leaf{ID: sl.ID, Address: sl.Address, Labels: sl.Labels, Static: true})
	}
	for _, d := range dynamic {
		if !static[d.ID] {
			leaves = append(leaves, d)
		}
	}
	return leaves, nextExpiry
}

func (s *Server) serveSDOrigins(w http.ResponseWriter, _ *http.Request) {
	body, err := json.Marshal(discovery.OriginGroups(s.current.Load().Config))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, body)
}

func writeJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// leafCollector exports oxcross_configserver_leaves at scrape time.
type leafCollector struct {
	s     *Server
	gauge *prometheus.GaugeVec
}

func (c leafCollector) Describe(ch chan<- *prometheus.Desc) { c.gauge.Describe(ch) }

func (c leafCollector) Collect(ch chan<- prometheus.Metric) {
	static := 0
	if l := c.s.current.Load(); l != nil {
		static = len(l.Config.Leaves)
	}
	c.gauge.WithLabelValues("static").Set(float64(static))
	c.gauge.WithLabelValues("dynamic").Set(float64(c.s.registry.Count()))
	c.gauge.Collect(ch)
}
