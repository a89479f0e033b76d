package configserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/discovery"
)

// Registry limits and defaults.
const (
	// MaxRegistrationBytes bounds a registration body.
	MaxRegistrationBytes = 64 << 10
	// DefaultMaxLeaves bounds the registry.
	DefaultMaxLeaves = 10000
	// DefaultRefreshInterval is assumed for a leaf that does not say its own.
	DefaultRefreshInterval = time.Minute
	// missedRefreshes is how many refresh intervals a leaf may miss before
	// it drops out of /sd/leaves.
	missedRefreshes = 3
)

// RegistryOptions configure a Registry.
type RegistryOptions struct {
	// MaxLeaves bounds the registered leaves; 0 means DefaultMaxLeaves.
	MaxLeaves int
	// AllowedCIDRs are networks whose addresses leaves may advertise
	// whatever address their request comes from (a reverse proxy in front
	// of the configserver, NAT). Outside them, the advertised host must be
	// the request's address.
	AllowedCIDRs []netip.Prefix
	// Resolver resolves advertised host names; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

type entry struct {
	leaf    discovery.Leaf
	expires time.Time
	// from is the address the registration came from.
	from netip.Addr
}

// Registry keeps the leaves that registered by heartbeat.
type Registry struct {
	opts    RegistryOptions
	mu      sync.RWMutex
	leaves  map[string]*entry
	version uint64

	registrations *prometheus.CounterVec
}

// NewRegistry returns an empty registry whose metrics are registered on reg.
func NewRegistry(opts RegistryOptions, reg prometheus.Registerer) *Registry {
	if opts.MaxLeaves <= 0 {
		opts.MaxLeaves = DefaultMaxLeaves
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	r := &Registry{
		opts:   opts,
		leaves: make(map[string]*entry),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oxcross_configserver_registrations_total",
			Help: "Leaf heartbeats by result: ok, invalid (400/413), forbidden (403), conflict (409), full (429).",
		}, []string{"result"}),
	}
	for _, res := range []string{"ok", "invalid", "forbidden", "conflict", "full"} {
		r.registrations.WithLabelValues(res)
	}
	reg.MustRegister(r.registrations)
	return r
}

// httpError is an error with the status code it answers.
type httpError struct {
	code   int
	result string
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }

func refuse(code int, result string, format string, args ...any) error {
	return &httpError{code: code, result: result, err: fmt.Errorf(format, args...)}
}

// Put records a heartbeat of leaf id, sent from the address from. static are the
// config's leaves: a registration may not take over one of their ids with
// another address.
func (r *Registry) Put(ctx context.Context, id string, reg discovery.Registration, from netip.Addr, static []config.StaticLeaf) (discovery.Leaf, time.Duration, error) {
	if err := config.ValidateLeafID(id); err != nil {
		return discovery.Leaf{}, 0, refuse(http.StatusBadRequest, "invalid", "%v", err)
	}
	if err := config.ValidateLabels(reg.Labels); err != nil {
		return discovery.Leaf{}, 0, refuse(http.StatusBadRequest, "invalid", "labels: %v", err)
	}
	if len(reg.Version) > 128 {
		return discovery.Leaf{}, 0, refuse(http.StatusBadRequest, "invalid", "version longer than 128 characters")
	}
	interval := DefaultRefreshInterval
	if reg.RefreshInterval != "" {
		d, err := time.ParseDuration(reg.RefreshInterval)
		if err != nil || d <= 0 {
			return discovery.Leaf{}, 0, refuse(http.StatusBadRequest, "invalid", "refresh_interval %q is not a positive duration", reg.RefreshInterval)
		}
		// A leaf may refresh more often than every second (tests do) or
		// less often than daily: clamp rather than refuse its heartbeat.
		interval = min(max(d, time.Second), 24*time.Hour)
	}
	addr := reg.Address
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" && from.IsValid() {
		addr = net.JoinHostPort(from.Unmap().String(), port)
	}
	if err := config.ValidateAddress(addr); err != nil {
		return discovery.Leaf{}, 0, refuse(http.StatusBadRequest, "invalid", "address: %v", err)
	}
	listed := false
	for _, s := range static {
		if s.ID == id {
			if s.Address != addr {
				return discovery.Leaf{}, 0, refuse(http.StatusConflict, "conflict", "leaf id %q is listed in the config with address %s, not %s", id, s.Address, addr)
			}
			listed = true
		}
	}
	// The config vouches for a static leaf's address (behind NAT, its
	// requests come from elsewhere); any other must be the sender's own.
	if !listed {
		if err := r.checkAddress(ctx, addr, from); err != nil {
			return discovery.Leaf{}, 0, err
		}
	}

	now := r.opts.Now()
	ttl := missedRefreshes * interval
	leaf := discovery.Leaf{ID: id, Address: addr, Labels: reg.Labels, Version: reg.Version, LastSeen: now}
	r.mu.Lock()
	defer r.mu.Unlock()
	old, exists := r.leaves[id]
	if !exists && len(r.leaves) >= r.opts.MaxLeaves {
		r.pruneLocked(now)
		if len(r.leaves) >= r.opts.MaxLeaves {
			return discovery.Leaf{}, 0, refuse(http.StatusTooManyRequests, "full", "the registry holds %d leaves, its limit (--registry.max-leaves)", r.opts.MaxLeaves)
		}
	}
	if exists && old.from != from && !r.allowed(from) && old.expires.After(now) {
		return discovery.Leaf{}, 0, refuse(http.StatusForbidden, "forbidden", "leaf id %q is registered from %s, not %s", id, old.from, from)
	}
	// An expired entry coming back changes what Live lists, even when it
	// is the same as before.
	if !exists || !old.expires.After(now) || !sameLeaf(old.leaf, leaf) {
		r.version++
	}
	r.leaves[id] = &entry{leaf: leaf, expires: now.Add(ttl), from: from}
	r.registrations.WithLabelValues("ok").Inc()
	return leaf, ttl, nil
}

func sameLeaf(a, b discovery.Leaf) bool {
	return a.Address == b.Address && a.Version == b.Version && maps.Equal(a.Labels, b.Labels)
}

// checkAddress refuses an advertised address that is not the address
// the request came from, unless it lies in an allowed network.
func (r *Registry) checkAddress(ctx context.Context, addr string, from netip.Addr) error {
	host, _, _ := net.SplitHostPort(addr)
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip.Unmap()}
	} else {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		found, err := r.opts.Resolver.LookupNetIP(rctx, "ip", host)
		if err != nil {
			return refuse(http.StatusForbidden, "forbidden", "advertised host %q does not resolve: %v", host, err)
		}
		for _, ip := range found {
			ips = append(ips, ip.Unmap())
		}
	}
	for _, ip := range ips {
		if ip == from.Unmap() {
			return nil
		}
	}
	if len(ips) > 0 && r.allowedAll(ips) {
		return nil
	}
	return refuse(http.StatusForbidden, "forbidden", "advertised address %s is not the request's source address %s; a leaf may only register its own address (or one in --registry.allow-address-cidr)", addr, from)
}

func (r *Registry) allowed(ip netip.Addr) bool {
	for _, p := range r.opts.AllowedCIDRs {
		if p.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

func (r *Registry) allowedAll(ips []netip.Addr) bool {
	for _, ip := range ips {
		if !r.allowed(ip) {
			return false
		}
	}
	return true
}

// Delete removes leaf id at once, if from may: the address it registered
// from, or an allowed network.
func (r *Registry) Delete(id string, from netip.Addr) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.leaves[id]
	if !ok {
		return refuse(http.StatusNotFound, "invalid", "leaf %q is not registered", id)
	}
	if e.from != from && !r.allowed(from) {
		return refuse(http.StatusForbidden, "forbidden", "leaf %q was registered from %s, not %s", id, e.from, from)
	}
	delete(r.leaves, id)
	r.version++
	return nil
}

// pruneLocked drops expired entries.
func (r *Registry) pruneLocked(now time.Time) {
	for id, e := range r.leaves {
		if !e.expires.After(now) {
			delete(r.leaves, id)
			r.version++
		}
	}
}

// Live returns the leaves whose heartbeat is recent enough, the registry's
// version (which changes with every change of its content) and when the
// first of them expires.
func (r *Registry) Live() (leaves []discovery.Leaf, version uint64, nextExpiry time.Time) {
	now := r.opts.Now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	leaves = make([]discovery.Leaf, 0, len(r.leaves))
	for _, e := range r.leaves {
		if !e.expires.After(now) {
			continue
		}
		leaves = append(leaves, e.leaf)
		if nextExpiry.IsZero() || e.expires.Before(nextExpiry) {
			nextExpiry = e.expires
		}
	}
	return leaves, r.version, nextExpiry
}

// Count returns the number of live registered leaves.
func (r *Registry) Count() int {
	now := r.opts.Now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for _, e := range r.leaves {
		if e.expires.After(now) {
			n++
		}
	}
	return n
}

// currentVersion returns the registry's version, which changes with its
// content, without listing the leaves.
func (r *Registry) currentVersion() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.version
}

// Labels returns the labels of a live registered leaf.
func (r *Registry) Labels(id string) (map[string]string, bool) {
	now := r.opts.Now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.leaves[id]
	if !ok || !e.expires.After(now) {
		return nil, false
	}
	return e.leaf.Labels, true
}

// requestAddr returns the address a request came from.
func requestAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// decodeRegistration reads a registration body strictly and within
// MaxRegistrationBytes.
func decodeRegistration(w http.ResponseWriter, r *http.Request) (discovery.Registration, error) {
	var reg discovery.Registration
	body := http.MaxBytesReader(w, r.Body, MaxRegistrationBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&reg); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return reg, refuse(http.StatusRequestEntityTooLarge, "invalid", "registration body larger than %d bytes", MaxRegistrationBytes)
		}
		return reg, refuse(http.StatusBadRequest, "invalid", "registration body: %v", err)
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return reg, refuse(http.StatusRequestEntityTooLarge, "invalid", "registration body larger than %d bytes", MaxRegistrationBytes)
	}
	return reg, nil
}

// The registry's HTTP handlers, PUT and DELETE /api/v1/leaves/{id}.

func (s *Server) servePut(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	reg, err := decodeRegistration(w, r)
	if err == nil {
		var leaf discovery.Leaf
		var ttl time.Duration
		leaf, ttl, err = s.registry.Put(r.Context(), id, reg, requestAddr(r), s.current.Load().Config.Leaves)
		if err == nil {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"id": leaf.ID, "address": leaf.Address, "expires_in": ttl.String()})
			return
		}
	}
	s.refuse(w, r, err)
}

func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request) {
	if err := s.registry.Delete(r.PathValue("id"), requestAddr(r)); err != nil {
		s.refuse(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// refuse answers a refused registry request with its status and reason.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, err error) {
	code, result := http.StatusInternalServerError, "invalid"
	var he *httpError
	if errors.As(err, &he) {
		code, result = he.code, he.result
	}
	s.registry.registrations.WithLabelValues(result).Inc()
	s.logger.Debug("Refused a leaf registry request", "method", r.Method, "path", r.URL.Path, "remote_addr", r.RemoteAddr, "status", code, "err", err)
	http.Error(w, err.Error(), code)
}
