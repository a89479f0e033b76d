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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// DefaultMaxLeavesPerSource is the default of the command's
	// --registry.max-leaves-per-source.
	DefaultMaxLeavesPerSource = 16
	// DefaultRefreshInterval is assumed for a leaf that does not say its own.
	DefaultRefreshInterval = time.Minute
	// MaxRefreshInterval caps a registration's refresh_interval: an id
	// expires at most three times this (30 minutes) after its last
	// heartbeat, whatever the registration asks for.
	MaxRefreshInterval = 10 * time.Minute
	// DefaultHostRecheckInterval is how often Run re-resolves advertised
	// host names unless RegistryOptions.HostRecheckInterval says otherwise.
	DefaultHostRecheckInterval = time.Minute
	// missedRefreshes is how many refresh intervals a leaf may miss before
	// it drops out of /sd/leaves.
	missedRefreshes = 3
	// hostLookupTimeout bounds one resolution of an advertised host name.
	hostLookupTimeout = 2 * time.Second
	// recheckWorkers bounds the lookups RecheckHosts runs at once.
	recheckWorkers = 8
)

// RegistryOptions configure a Registry.
type RegistryOptions struct {
	// MaxLeaves bounds the registered leaves; 0 means DefaultMaxLeaves.
	MaxLeaves int
	// MaxLeavesPerSource bounds, in open mode, the live ids registered
	// from one source address, so that one host cannot take every slot;
	// 0 means no bound (the command's flag defaults to
	// DefaultMaxLeavesPerSource).
	MaxLeavesPerSource int
	// AllowedCIDRs are networks whose addresses leaves may advertise
	// whatever address their request comes from (a reverse proxy in front
	// of the configserver, NAT). Outside them, the advertised host must be
	// the request's address.
	AllowedCIDRs []netip.Prefix
	// Identities grant authenticated identities leaf ids in identity mode;
	// nil grants each identity the id of its own name only.
	// Options.IdentitiesFile replaces them when it is loaded.
	Identities Identities
	// Resolver resolves advertised host names; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// HostRecheckInterval is how often Run re-resolves advertised host
	// names; 0 means DefaultHostRecheckInterval.
	HostRecheckInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Store keeps the entries where several configserver replicas share
	// them (NewEtcdStore); nil keeps them in this process's memory only,
	// the default. Every check stays with the Registry, whatever the store.
	Store Store
}

// Caller is who sends a registry request.
type Caller struct {
	// Addr is the address the request comes from.
	Addr netip.Addr
	// Authenticated is set in identity mode, when the web config
	// authenticates requests: a leaf id then belongs to the identity that
	// may hold it, not to whoever comes first.
	Authenticated bool
	// Identities are the names the request proved in identity mode: its
	// basic-auth user, its verified client certificate's common name and
	// DNS names.
	Identities []string
}

type entry struct {
	leaf    discovery.Leaf
	expires time.Time
	// from is the address the registration came from.
	from netip.Addr
	// owner is the identity that registered it; "" in open mode.
	owner string
	// host is the advertised host name that RecheckHosts re-resolves; ""
	// for an IP address and for a static leaf.
	host string
	// rev is the store's revision of the entry (0 in memory), which a
	// write compares so that it does not overwrite a change it has not
	// seen; lease is the etcd lease the entry's key is on.
	rev   int64
	lease int64
}

// Registry keeps the leaves that registered by heartbeat. It makes every
// check of a registration (identity mode, per-source cap, max leaves,
// refresh caps) against its in-memory view of the entries, then writes
// through its Store; reads (Live, Labels, Count) never wait on the store.
type Registry struct {
	opts       RegistryOptions
	store      Store
	identities atomic.Pointer[Identities]
	// writeMu serialises writes (check, store, apply), so that a write's
	// checks see every earlier write of this process; mu guards the maps
	// only and is never held across a store's round trip.
	writeMu sync.Mutex
	mu      sync.RWMutex
	leaves  map[string]*entry
	// bySource indexes leaves by the address they registered from, for
	// the per-source limit.
	bySource map[netip.Addr]map[string]*entry
	// version changes with every change of the registry's content; written
	// under mu, read without it (every /sd/leaves request reads it).
	version atomic.Uint64

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
	if opts.HostRecheckInterval <= 0 {
		opts.HostRecheckInterval = DefaultHostRecheckInterval
	}
	if opts.Store == nil {
		opts.Store = memoryStore{}
	}
	r := &Registry{
		opts:     opts,
		store:    opts.Store,
		leaves:   make(map[string]*entry),
		bySource: make(map[netip.Addr]map[string]*entry),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oxcross_configserver_registrations_total",
			Help: "Leaf heartbeats by result: ok, invalid (400/413), forbidden (403), conflict (409), full (429), unavailable (503: the registry's store cannot be written).",
		}, []string{"result"}),
	}
	r.SetIdentities(opts.Identities)
	for _, res := range []string{"ok", "invalid", "forbidden", "conflict", "full", "unavailable"} {
		r.registrations.WithLabelValues(res)
	}
	reg.MustRegister(r.registrations)
	return r
}

// SetIdentities replaces the identities that grant leaf ids in identity
// mode.
func (r *Registry) SetIdentities(ids Identities) {
	r.identities.Store(&ids)
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

// Put records a heartbeat of leaf id from caller c. static are the
// config's leaves: only the leaf itself (its configured address, or in
// identity mode its identity) may register one of their ids, and only with
// its configured address.
func (r *Registry) Put(ctx context.Context, id string, reg discovery.Registration, c Caller, static []config.StaticLeaf) (discovery.Leaf, time.Duration, error) {
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
		// A leaf may refresh more often than every second (tests do);
		// one that asks for more than MaxRefreshInterval gets that, so
		// that no registration outlives its heartbeats by more than
		// 30 minutes. The answer says what was taken.
		interval = min(max(d, time.Second), MaxRefreshInterval)
	}
	from := c.Addr.Unmap()
	addr := reg.Address
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" && from.IsValid() {
		addr = net.JoinHostPort(from.String(), port)
	}
	if err := config.ValidateAddress(addr); err != nil {
		return discovery.Leaf{}, 0, refuse(http.StatusBadRequest, "invalid", "address: %v", err)
	}
	st, listed := findStatic(static, id)
	owner, err := r.authorize(ctx, id, c, st, listed)
	if err != nil {
		return discovery.Leaf{}, 0, err
	}
	// The config vouches for a static leaf's address (behind NAT, its
	// requests come from elsewhere); any other must be the sender's own.
	var host string
	if listed {
		if st.Address != addr {
			return discovery.Leaf{}, 0, refuse(http.StatusConflict, "conflict", "leaf id %q is listed in the config with address %s, not %s", id, st.Address, addr)
		}
	} else {
		host, err = r.checkAddress(ctx, addr, from)
		if err != nil {
			// The leaf's own heartbeat with an address that no longer
			// passes (its name now resolves elsewhere, or not at all)
			// ends its registration at once; a resolver failing for
			// now does not.
			var he *httpError
			if errors.As(err, &he) && he.code == http.StatusForbidden {
				r.dropOwned(id, from, owner)
			}
			return discovery.Leaf{}, 0, err
		}
	}

	ttl := missedRefreshes * interval
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	for attempt := 1; ; attempt++ {
		now := r.opts.Now()
		leaf := discovery.Leaf{ID: id, Address: addr, Labels: reg.Labels, Version: reg.Version, LastSeen: now}
		e := &entry{leaf: leaf, expires: r.store.expiry(now, ttl), from: from, owner: owner, host: host}
		prev, err := r.checkPut(id, e, c, owner, now)
		if err != nil {
			return discovery.Leaf{}, 0, err
		}
		err = r.write(ctx, id, e, ttl, prev)
		if errors.Is(err, errStoreConflict) {
			if attempt < maxStoreAttempts {
				continue
			}
			err = busy(id)
		}
		if err != nil {
			return discovery.Leaf{}, 0, err
		}
		r.registrations.WithLabelValues("ok").Inc()
		return leaf, ttl, nil
	}
}

// maxStoreAttempts bounds the writes of one request that find the entry
// changed in the store since the checks read it (another replica wrote it).
const maxStoreAttempts = 3

// checkPut makes the checks of a registration of leaf id as entry e
// against the current entries, and returns the stored entry it replaces
// (nil if none).
func (r *Registry) checkPut(id string, e *entry, c Caller, owner string, now time.Time) (*entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, exists := r.leaves[id]
	live := exists && old.expires.After(now)
	if live {
		if err := r.mayReplaceLocked(id, old, c, owner); err != nil {
			return nil, err
		}
	}
	if !c.Authenticated && r.opts.MaxLeavesPerSource > 0 {
		if n := r.liveFromLocked(e.from, id, now); n >= r.opts.MaxLeavesPerSource {
			return nil, refuse(http.StatusTooManyRequests, "full", "%s already holds %d live leaf ids, the most one source address may (--registry.max-leaves-per-source)", e.from, n)
		}
	}
	if !exists && len(r.leaves) >= r.opts.MaxLeaves {
		r.pruneLocked(now)
		if len(r.leaves) >= r.opts.MaxLeaves {
			return nil, refuse(http.StatusTooManyRequests, "full", "the registry holds %d leaves, its limit (--registry.max-leaves)", r.opts.MaxLeaves)
		}
	}
	return r.leaves[id], nil
}

// write stores entry e of leaf id for ttl through the store, provided the
// stored entry is still prev, and then applies it to the registry's view.
func (r *Registry) write(ctx context.Context, id string, e *entry, ttl time.Duration, prev *entry) error {
	rev, lease, err := r.store.put(ctx, id, e, ttl, prev)
	if err != nil {
		r.applyConflict(id, err)
		return storeRefusal(err)
	}
	e.rev, e.lease = rev, lease
	r.mu.Lock()
	r.applyLocked(id, e, r.opts.Now())
	r.mu.Unlock()
	return nil
}

// remove deletes leaf id through the store, provided its stored entry is
// still prev, and from the registry's view.
func (r *Registry) remove(ctx context.Context, id string, prev *entry) error {
	if err := r.store.delete(ctx, id, prev); err != nil {
		r.applyConflict(id, err)
		return storeRefusal(err)
	}
	r.mu.Lock()
	if cur, ok := r.leaves[id]; ok && cur.rev <= prev.rev {
		r.deleteLocked(id)
	}
	r.mu.Unlock()
	return nil
}

// applyConflict applies to the registry's view the stored entry that a
// write found changed (err is a *conflictError), so that the retry checks
// against it.
func (r *Registry) applyConflict(id string, err error) {
	var ce *conflictError
	if !errors.As(err, &ce) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ce.current == nil {
		r.deleteLocked(id)
		return
	}
	r.applyLocked(id, ce.current, r.opts.Now())
}

// busy is the answer to a request that found leaf id changed by another
// replica at each of its attempts.
func busy(id string) error {
	return refuse(http.StatusServiceUnavailable, "unavailable", "leaf %q changed in the registry's store at each of %d attempts to write it; try again", id, maxStoreAttempts)
}

// storeRefusal turns a store's error into the registry's answer: 503 with
// the reason, except a conflict, which the caller retries.
func storeRefusal(err error) error {
	if errors.Is(err, errStoreConflict) {
		return err
	}
	return refuse(http.StatusServiceUnavailable, "unavailable", "the registry cannot store this now, try again later: %v", err)
}

// applyLocked stores e as the entry of leaf id in the registry's view,
// unless the view already holds a later revision.
func (r *Registry) applyLocked(id string, e *entry, now time.Time) {
	old, exists := r.leaves[id]
	if exists && e.rev != 0 && old.rev >= e.rev {
		// The same write again (this process's own, then its watch
		// event) keeps the entry RecheckHosts may be comparing.
		return
	}
	// An expired entry coming back changes what Live lists, even when it
	// is the same as before.
	if !exists || !old.expires.After(now) || !sameLeaf(old.leaf, e.leaf) {
		r.version.Add(1)
	}
	r.setLocked(id, e)
}

func findStatic(static []config.StaticLeaf, id string) (config.StaticLeaf, bool) {
	for _, s := range static {
		if s.ID == id {
			return s, true
		}
	}
	return config.StaticLeaf{}, false
}

// authorize says whether caller c may register, renew or delete leaf id,
// and returns the identity that may (identity mode) or "" (open mode). In
// identity mode, an identity may hold the id of its own name, or the ids
// Identities grant it. In open mode anyone may hold any id first come,
// except a static leaf's: only from its configured address.
func (r *Registry) authorize(ctx context.Context, id string, c Caller, st config.StaticLeaf, listed bool) (string, error) {
	if c.Authenticated {
		if len(c.Identities) == 0 {
			return "", refuse(http.StatusForbidden, "forbidden", "the configserver authenticates leaves (identity mode) and this request proved no identity (a basic-auth user or a verified client certificate), so it may not register or remove leaf %q", id)
		}
		ids := *r.identities.Load()
		for _, name := range c.Identities {
			if ids.allows(name, id) {
				return name, nil
			}
		}
		who := "identity "
		if len(c.Identities) > 1 {
			who = "identities "
		}
		return "", refuse(http.StatusForbidden, "forbidden", "%s%s may not hold leaf id %q: an identity may hold the id of its own name, or the ids --registry.identities grants it", who, strings.Join(quoteAll(c.Identities), ", "), id)
	}
	if listed && !r.isHostOf(ctx, st.Address, c.Addr.Unmap()) {
		return "", refuse(http.StatusForbidden, "forbidden", "leaf id %q is listed in the config at %s, and without authentication only requests from that address may register or remove it (a static leaf needs no registration: it is always in /sd/leaves)", id, st.Address)
	}
	return "", nil
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strconv.Quote(n)
	}
	return out
}

// isHostOf reports whether from is an address of the host of addr
// (host:port, from the config).
func (r *Registry) isHostOf(ctx context.Context, addr string, from netip.Addr) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap() == from
	}
	rctx, cancel := context.WithTimeout(ctx, hostLookupTimeout)
	defer cancel()
	ips, err := r.opts.Resolver.LookupNetIP(rctx, "ip", host)
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if ip.Unmap() == from {
			return true
		}
	}
	return false
}

// mayReplaceLocked says whether caller c, authorized as owner, may renew
// or replace the live entry e of leaf id. In identity mode the identity
// that registered it may, from anywhere, and any identity allowed the id
// may replace an entry registered without one; in open mode the source it
// came from may, and allowed networks.
func (r *Registry) mayReplaceLocked(id string, e *entry, c Caller, owner string) error {
	if c.Authenticated {
		if e.owner == "" || e.owner == owner {
			return nil
		}
		return refuse(http.StatusForbidden, "forbidden", "leaf id %q is registered by identity %q until it expires", id, e.owner)
	}
	if e.from == c.Addr.Unmap() || r.allowed(c.Addr) {
		return nil
	}
	return refuse(http.StatusForbidden, "forbidden", "leaf id %q is registered from %s, not %s", id, e.from, c.Addr.Unmap())
}

// liveFromLocked counts the live entries registered from addr, other than
// id's, and drops that source's expired ones.
func (r *Registry) liveFromLocked(addr netip.Addr, id string, now time.Time) int {
	n := 0
	for other, e := range r.bySource[addr] {
		switch {
		case !e.expires.After(now):
			r.deleteLocked(other)
		case other != id:
			n++
		}
	}
	return n
}

// setLocked stores the entry of leaf id, replacing any.
func (r *Registry) setLocked(id string, e *entry) {
	if old, ok := r.leaves[id]; ok {
		r.unindexLocked(id, old)
	}
	r.leaves[id] = e
	ids := r.bySource[e.from]
	if ids == nil {
		ids = make(map[string]*entry)
		r.bySource[e.from] = ids
	}
	ids[id] = e
}

// deleteLocked removes the entry of leaf id.
func (r *Registry) deleteLocked(id string) {
	if e, ok := r.leaves[id]; ok {
		r.unindexLocked(id, e)
		delete(r.leaves, id)
		r.version.Add(1)
	}
}

func (r *Registry) unindexLocked(id string, e *entry) {
	ids := r.bySource[e.from]
	delete(ids, id)
	if len(ids) == 0 {
		delete(r.bySource, e.from)
	}
}

// dropOwned removes leaf id if from and owner registered it.
func (r *Registry) dropOwned(id string, from netip.Addr, owner string) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	e, ok := r.leaves[id]
	r.mu.RUnlock()
	if ok && e.from == from && e.owner == owner {
		_ = r.remove(context.Background(), id, e)
	}
}

func sameLeaf(a, b discovery.Leaf) bool {
	return a.Address == b.Address && a.Version == b.Version && maps.Equal(a.Labels, b.Labels)
}

// checkAddress refuses an advertised address unless each of its
// addresses (the one, or all a host name resolves to) is the address the
// request came from or lies in an allowed network. It returns the host
// name, "" for an IP address.
func (r *Registry) checkAddress(ctx context.Context, addr string, from netip.Addr) (string, error) {
	host, _, _ := net.SplitHostPort(addr)
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Unmap() != from && !r.allowed(ip) {
			return "", refuse(http.StatusForbidden, "forbidden", "advertised address %s is not the request's source address %s; a leaf may only register its own address (or one in --registry.allow-address-cidr)", addr, from)
		}
		return "", nil
	}
	ips, err := r.lookup(ctx, host)
	if err != nil {
		if !notFound(err) {
			return "", refuse(http.StatusServiceUnavailable, "invalid", "cannot resolve the advertised host %q now: %v", host, err)
		}
		return "", refuse(http.StatusForbidden, "forbidden", "advertised host %q does not resolve: %v", host, err)
	}
	if err := r.hostProblem(host, ips, from); err != nil {
		return "", err
	}
	return host, nil
}

// notFound reports whether a lookup error says the name does not exist
// (or has no address), rather than that the resolver failed.
func notFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

func (r *Registry) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, hostLookupTimeout)
	defer cancel()
	return r.opts.Resolver.LookupNetIP(ctx, "ip", host)
}

// hostProblem refuses the addresses ips of an advertised host name unless
// each is from or in an allowed network.
func (r *Registry) hostProblem(host string, ips []netip.Addr, from netip.Addr) error {
	if len(ips) == 0 {
		return refuse(http.StatusForbidden, "forbidden", "advertised host %q has no address", host)
	}
	for _, ip := range ips {
		if ip.Unmap() != from && !r.allowed(ip) {
			return refuse(http.StatusForbidden, "forbidden", "advertised host %q resolves to %s, which is not the request's source address %s; every address of a leaf's host name must be its own (or in --registry.allow-address-cidr)", host, ip.Unmap(), from)
		}
	}
	return nil
}

func (r *Registry) allowed(ip netip.Addr) bool {
	for _, p := range r.opts.AllowedCIDRs {
		if p.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

// Delete removes leaf id at once, if caller c may: in identity mode an
// identity allowed the id (and, while the entry is live, the one that
// registered it); in open mode the address it registered from, or an
// allowed network.
func (r *Registry) Delete(id string, c Caller) error {
	var owner string
	if c.Authenticated {
		var err error
		if owner, err = r.authorize(context.Background(), id, c, config.StaticLeaf{}, false); err != nil {
			return err
		}
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	for attempt := 1; ; attempt++ {
		r.mu.RLock()
		e, ok := r.leaves[id]
		r.mu.RUnlock()
		if !ok {
			return refuse(http.StatusNotFound, "invalid", "leaf %q is not registered", id)
		}
		if c.Authenticated {
			if e.owner != "" && e.owner != owner && e.expires.After(r.opts.Now()) {
				return refuse(http.StatusForbidden, "forbidden", "leaf %q was registered by identity %q, not %q", id, e.owner, owner)
			}
		} else if e.from != c.Addr.Unmap() && !r.allowed(c.Addr) {
			return refuse(http.StatusForbidden, "forbidden", "leaf %q was registered from %s, not %s", id, e.from, c.Addr.Unmap())
		}
		err := r.remove(context.Background(), id, e)
		if errors.Is(err, errStoreConflict) {
			if attempt < maxStoreAttempts {
				continue
			}
			err = busy(id)
		}
		return err
	}
}

// Run keeps the registry's view in step with its store (for a shared
// store: the initial listing, then its changes) and re-resolves
// advertised host names every HostRecheckInterval (RecheckHosts) until
// ctx ends.
func (r *Registry) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.store.run(ctx, r)
	}()
	defer func() { <-done }()
	t := time.NewTicker(r.opts.HostRecheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.RecheckHosts(ctx)
		}
	}
}

// RecheckHosts resolves the host name of every live leaf that advertised
// one, and drops the leaves whose name no longer resolves only to the
// address they registered from (or to allowed networks), or no longer
// exists: a name pointed at another host after its registration (DNS
// rebinding) leaves /sd/leaves at the next recheck, heartbeats or not. A
// lookup that fails otherwise (a timeout) keeps the leaf. It returns the
// ids it dropped.
func (r *Registry) RecheckHosts(ctx context.Context) []string {
	now := r.opts.Now()
	type check struct {
		id string
		e  *entry
	}
	var checks []check
	hosts := map[string]bool{}
	r.mu.RLock()
	for id, e := range r.leaves {
		if e.host != "" && e.expires.After(now) {
			checks = append(checks, check{id, e})
			hosts[e.host] = true
		}
	}
	r.mu.RUnlock()
	if len(checks) == 0 {
		return nil
	}
	type result struct {
		ips []netip.Addr
		err error
	}
	var (
		mu      sync.Mutex
		results = make(map[string]result, len(hosts))
		wg      sync.WaitGroup
		names   = make(chan string)
	)
	for range min(recheckWorkers, len(hosts)) {
		wg.Go(func() {
			for h := range names {
				ips, err := r.lookup(ctx, h)
				mu.Lock()
				results[h] = result{ips, err}
				mu.Unlock()
			}
		})
	}
	for h := range hosts {
		names <- h
	}
	close(names)
	wg.Wait()

	var dropped []string
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	for _, c := range checks {
		res := results[c.e.host]
		gone := res.err != nil && notFound(res.err)
		if res.err != nil && !gone {
			continue
		}
		if !gone && r.hostProblem(c.e.host, res.ips, c.e.from) == nil {
			continue
		}
		// Only the entry that was checked: a heartbeat meanwhile was
		// checked by Put itself.
		r.mu.RLock()
		same := r.leaves[c.id] == c.e
		r.mu.RUnlock()
		if same && r.remove(ctx, c.id, c.e) == nil {
			dropped = append(dropped, c.id)
		}
	}
	return dropped
}

// pruneLocked drops expired entries.
func (r *Registry) pruneLocked(now time.Time) {
	for id, e := range r.leaves {
		if !e.expires.After(now) {
			r.deleteLocked(id)
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
	return leaves, r.version.Load(), nextExpiry
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
	return r.version.Load()
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
// MaxRegistrationBytes: one JSON object, and nothing after it but white
// space.
func decodeRegistration(w http.ResponseWriter, r *http.Request) (discovery.Registration, error) {
	var reg discovery.Registration
	body := http.MaxBytesReader(w, r.Body, MaxRegistrationBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	tooLarge := func(err error) bool {
		var mbe *http.MaxBytesError
		return errors.As(err, &mbe)
	}
	if err := dec.Decode(&reg); err != nil {
		if tooLarge(err) {
			return reg, refuse(http.StatusRequestEntityTooLarge, "invalid", "registration body larger than %d bytes", MaxRegistrationBytes)
		}
		return reg, refuse(http.StatusBadRequest, "invalid", "registration body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if tooLarge(err) {
			return reg, refuse(http.StatusRequestEntityTooLarge, "invalid", "registration body larger than %d bytes", MaxRegistrationBytes)
		}
		return reg, refuse(http.StatusBadRequest, "invalid", "registration body: trailing data after the JSON object")
	}
	return reg, nil
}

// caller returns who sends request r: its source address and, when the
// web config authenticates requests, the identities it proved.
func (s *Server) caller(r *http.Request) (Caller, error) {
	c := Caller{Addr: requestAddr(r)}
	if s.auth == nil {
		return c, nil
	}
	a, err := s.auth()
	if err != nil {
		return c, refuse(http.StatusInternalServerError, "invalid", "cannot tell what the web config authenticates: %v", err)
	}
	if a.Enabled() {
		c.Authenticated = true
		c.Identities = requestIdentities(r, a)
	}
	return c, nil
}

// The registry's HTTP handlers, PUT and DELETE /api/v1/leaves/{id}.

func (s *Server) servePut(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	reg, err := decodeRegistration(w, r)
	var c Caller
	if err == nil {
		c, err = s.caller(r)
	}
	if err == nil {
		var leaf discovery.Leaf
		var ttl time.Duration
		leaf, ttl, err = s.registry.Put(r.Context(), id, reg, c, s.current.Load().Config.Leaves)
		if err == nil {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{
				"id": leaf.ID, "address": leaf.Address,
				// What the registry took: refresh_interval at most
				// MaxRefreshInterval, whatever was asked.
				"refresh_interval": (ttl / missedRefreshes).String(), "expires_in": ttl.String(),
			})
			return
		}
	}
	s.refuse(w, r, err)
}

func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request) {
	c, err := s.caller(r)
	if err == nil {
		err = s.registry.Delete(r.PathValue("id"), c)
	}
	if err != nil {
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
	if result == "unavailable" {
		s.logger.Warn("Refused a leaf registry request: the registry's store cannot be written", "method", r.Method, "path", r.URL.Path, "remote_addr", r.RemoteAddr, "status", code, "err", err)
		w.Header().Set("Retry-After", "1")
		http.Error(w, err.Error(), code)
		return
	}
	s.logger.Debug("Refused a leaf registry request", "method", r.Method, "path", r.URL.Path, "remote_addr", r.RemoteAddr, "status", code, "err", err)
	http.Error(w, err.Error(), code)
}
