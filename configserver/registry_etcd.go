package configserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/discovery"
)

// Defaults of EtcdOptions.
const (
	// DefaultEtcdPrefix is the key prefix of the leaves in etcd.
	DefaultEtcdPrefix = "/oxcross/registry/leaves/"
	// DefaultEtcdRequestTimeout bounds one write to etcd.
	DefaultEtcdRequestTimeout = 2 * time.Second
	// DefaultEtcdHealthInterval is how often the store checks that etcd
	// answers.
	DefaultEtcdHealthInterval = time.Second
)

// EtcdOptions configure the etcd store.
type EtcdOptions struct {
	// Endpoints are etcd's client URLs. Required.
	Endpoints []string
	// Prefix is the key prefix of the leaves: one key per leaf,
	// Prefix + leaf id. Empty means DefaultEtcdPrefix.
	Prefix string
	// TLS configures TLS to etcd; nil means plain text.
	TLS *tls.Config
	// Username and Password authenticate to etcd; empty: no auth.
	Username, Password string
	// RequestTimeout bounds each request to etcd; 0 means
	// DefaultEtcdRequestTimeout.
	RequestTimeout time.Duration
	// HealthInterval is how often the store checks that etcd answers; 0
	// means DefaultEtcdHealthInterval.
	HealthInterval time.Duration
	// Logger is required.
	Logger *slog.Logger
}

// EtcdStore keeps the registry in etcd, so that configserver replicas
// share it: one key per leaf under a prefix, each on its own lease whose
// TTL is the leaf's expiry, so that etcd deletes a leaf whose heartbeats
// stop. The Registry's view is a cache kept by a watch (an initial Get,
// then a Watch from its revision; listed anew after a compaction, a lost
// watch, or an outage).
type EtcdStore struct {
	o       EtcdOptions
	cli     *clientv3.Client
	revokes chan int64

	mu sync.Mutex
	// down says why etcd cannot be used now; nil while it can.
	down error
	// downSince is when down was set after being nil.
	downSince time.Time
	// relisted counts the lists from etcd; lastList is the last one.
	relisted uint64
	lastList time.Time
	listed   atomic.Bool

	up      prometheus.Gauge
	relists prometheus.Counter
	errs    *prometheus.CounterVec
}

// storedEntry is the value of a leaf's key in etcd.
type storedEntry struct {
	Leaf    storedLeaf `json:"leaf"`
	From    string     `json:"from"`
	Owner   string     `json:"owner,omitempty"`
	Host    string     `json:"host,omitempty"`
	TTL     string     `json:"ttl"`
	Expires time.Time  `json:"expires"`
}

type storedLeaf struct {
	ID       string            `json:"id"`
	Address  string            `json:"address"`
	Labels   map[string]string `json:"labels,omitempty"`
	Version  string            `json:"version,omitempty"`
	LastSeen time.Time         `json:"last_seen"`
}

// NewEtcdStore returns a store on the etcd cluster of o.Endpoints, its
// metrics registered on reg. It does not wait for etcd (except to
// authenticate, with a username): until etcd answers, the store is not
// Ready and registrations are refused with 503. Close it when done.
func NewEtcdStore(o EtcdOptions, reg prometheus.Registerer) (*EtcdStore, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("etcd store: no endpoints")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultEtcdPrefix
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultEtcdRequestTimeout
	}
	if o.HealthInterval <= 0 {
		o.HealthInterval = DefaultEtcdHealthInterval
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            o.Endpoints,
		DialTimeout:          o.RequestTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: o.RequestTimeout,
		TLS:                  o.TLS,
		Username:             o.Username,
		Password:             o.Password,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", strings.Join(o.Endpoints, ","), err)
	}
	s := &EtcdStore{
		o:         o,
		cli:       cli,
		revokes:   make(chan int64, 1024),
		down:      errors.New("not listed from etcd yet"),
		downSince: time.Now(),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "oxcross_configserver_registry_store_up",
			Help: "1 while the registry's etcd answers (registrations are accepted), 0 while it does not (registrations get 503, /sd/leaves serves the last registry).",
		}),
		relists: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oxcross_configserver_registry_store_relists_total",
			Help: "Times the registry's cache was listed from etcd anew: at start, after a compaction, a lost watch or an outage.",
		}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oxcross_configserver_registry_store_errors_total",
			Help: "Failed requests to the registry's etcd by operation: put, delete, list, watch, health.",
		}, []string{"op"}),
	}
	for _, op := range []string{"put", "delete", "list", "watch", "health"} {
		s.errs.WithLabelValues(op)
	}
	reg.MustRegister(s.up, s.relists, s.errs)
	return s, nil
}

// Close closes the connection to etcd.
func (s *EtcdStore) Close() error { return s.cli.Close() }

// Ready reports nil while etcd answers and the registry has been listed
// from it, and why not otherwise.
func (s *EtcdStore) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down != nil {
		return fmt.Errorf("the registry's etcd (%s) is unreachable: %w", strings.Join(s.o.Endpoints, ","), s.down)
	}
	return nil
}

// setDown records that etcd failed with err (op: the request).
func (s *EtcdStore) setDown(op string, err error) {
	s.errs.WithLabelValues(op).Inc()
	s.mu.Lock()
	was := s.down
	s.down = err
	if was == nil {
		s.downSince = time.Now()
	}
	s.mu.Unlock()
	s.up.Set(0)
	if was == nil {
		s.o.Logger.Error("The registry's etcd is unreachable: serving the last registry, refusing registrations with 503", "op", op, "endpoints", strings.Join(s.o.Endpoints, ","), "err", err)
	}
}

// setUp records that etcd answers, and reports whether it did not before.
func (s *EtcdStore) setUp() bool {
	s.mu.Lock()
	was := s.down
	s.down = nil
	s.downSince = time.Time{}
	s.mu.Unlock()
	s.up.Set(1)
	if was != nil && s.listed.Load() {
		s.o.Logger.Info("The registry's etcd answers again", "endpoints", strings.Join(s.o.Endpoints, ","))
	}
	return was != nil
}

func (s *EtcdStore) key(id string) string { return s.o.Prefix + id }

func (s *EtcdStore) put(ctx context.Context, id string, e *entry, ttl time.Duration, prev *entry) (int64, int64, error) {
	if err := s.Ready(); err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.RequestTimeout)
	defer cancel()
	val, err := json.Marshal(storedEntry{
		Leaf: storedLeaf{ID: e.leaf.ID, Address: e.leaf.Address, Labels: e.leaf.Labels, Version: e.leaf.Version, LastSeen: e.leaf.LastSeen},
		From: e.from.String(), Owner: e.owner, Host: e.host, TTL: ttl.String(), Expires: e.leaf.LastSeen.Add(ttl),
	})
	if err != nil {
		return 0, 0, fmt.Errorf("encoding leaf %q: %w", id, err)
	}
	// Whole seconds, rounded up: the leaf stays at least its ttl.
	lease, err := s.cli.Grant(ctx, int64(math.Ceil(ttl.Seconds())))
	if err != nil {
		return 0, 0, s.failed(ctx, "put", err)
	}
	var prevRev int64
	if prev != nil {
		prevRev = prev.rev
	}
	key := s.key(id)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", prevRev)).
		Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease.ID))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		s.revoke(int64(lease.ID))
		return 0, 0, s.failed(ctx, "put", err)
	}
	if !resp.Succeeded {
		s.revoke(int64(lease.ID))
		return 0, 0, s.conflict(resp)
	}
	if prev != nil {
		s.revoke(prev.lease)
	}
	return resp.Header.Revision, int64(lease.ID), nil
}

func (s *EtcdStore) delete(ctx context.Context, id string, prev *entry) error {
	if err := s.Ready(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.RequestTimeout)
	defer cancel()
	key := s.key(id)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", prev.rev)).
		Then(clientv3.OpDelete(key)).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return s.failed(ctx, "delete", err)
	}
	if !resp.Succeeded {
		return s.conflict(resp)
	}
	s.revoke(prev.lease)
	return nil
}

// failed records a failed request; a request cut short by its caller
// (the leaf gave up) says nothing of etcd.
func (s *EtcdStore) failed(ctx context.Context, op string, err error) error {
	if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("etcd did not answer within %s", s.o.RequestTimeout)
		}
		s.setDown(op, err)
	}
	return err
}

// conflict turns the Else branch of a failed compare into a
// *conflictError with the entry now stored.
func (s *EtcdStore) conflict(resp *clientv3.TxnResponse) error {
	ce := &conflictError{}
	for _, r := range resp.Responses {
		if rr := r.GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
			kv := rr.Kvs[0]
			if e, err := s.decode(kv.Value); err == nil {
				e.rev, e.lease = kv.ModRevision, kv.Lease
				ce.current = e
			}
		}
	}
	return ce
}

// revoke drops a lease no key uses any more, in the background: if it
// cannot, the lease expires by itself.
func (s *EtcdStore) revoke(lease int64) {
	if lease == 0 {
		return
	}
	select {
	case s.revokes <- lease:
	default:
	}
}

func (s *EtcdStore) expiry(time.Time, time.Duration) time.Time { return neverExpires }

// neverExpires is the expiry of an entry whose lease expires it.
var neverExpires = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// decode reads the value of a leaf's key.
func (s *EtcdStore) decode(val []byte) (*entry, error) {
	var se storedEntry
	if err := json.Unmarshal(val, &se); err != nil {
		return nil, err
	}
	if err := config.ValidateLeafID(se.Leaf.ID); err != nil {
		return nil, err
	}
	from, err := netip.ParseAddr(se.From)
	if err != nil && se.From != "invalid IP" {
		return nil, fmt.Errorf("from: %w", err)
	}
	return &entry{
		leaf:    discovery.Leaf{ID: se.Leaf.ID, Address: se.Leaf.Address, Labels: se.Leaf.Labels, Version: se.Leaf.Version, LastSeen: se.Leaf.LastSeen},
		expires: neverExpires, from: from, owner: se.Owner, host: se.Host,
	}, nil
}

// run lists the leaves, watches their changes and checks etcd's health
// until ctx ends.
func (s *EtcdStore) run(ctx context.Context, r *Registry) {
	go s.revoker(ctx)
	for ctx.Err() == nil {
		rev, err := s.list(ctx, r)
		if err != nil {
			s.setDown("list", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.o.HealthInterval):
			}
			continue
		}
		s.watch(ctx, r, rev)
	}
}

// list replaces r's view with the leaves in etcd and returns the revision
// it read them at.
func (s *EtcdStore) list(ctx context.Context, r *Registry) (int64, error) {
	lctx, cancel := context.WithTimeout(ctx, 4*s.o.RequestTimeout)
	defer cancel()
	resp, err := s.cli.Get(lctx, s.o.Prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	entries := make(map[string]*entry, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		id := strings.TrimPrefix(string(kv.Key), s.o.Prefix)
		e, err := s.decode(kv.Value)
		if err != nil || e.leaf.ID != id {
			s.o.Logger.Warn("Ignoring a key of the registry's etcd that is not a leaf", "key", string(kv.Key), "err", err)
			continue
		}
		e.rev, e.lease = kv.ModRevision, kv.Lease
		entries[id] = e
	}
	r.replaceAll(entries)
	s.relists.Inc()
	s.mu.Lock()
	s.relisted++
	s.lastList = time.Now()
	s.mu.Unlock()
	s.setUp()
	s.listed.Store(true)
	s.o.Logger.Debug("Listed the registry from etcd", "leaves", len(entries), "revision", resp.Header.Revision)
	return resp.Header.Revision, nil
}

// watch applies the changes after revision rev to r's view until the
// watch is lost, or etcd comes back after an outage (then the caller
// lists anew), or ctx ends.
func (s *EtcdStore) watch(ctx context.Context, r *Registry, rev int64) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.cli.Watch(wctx, s.o.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	tick := time.NewTicker(s.o.HealthInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case wr, ok := <-wch:
			if !ok || wr.Canceled || wr.CompactRevision != 0 || wr.Err() != nil {
				err := wr.Err()
				if err == nil {
					err = errors.New("watch closed")
				}
				s.errs.WithLabelValues("watch").Inc()
				s.o.Logger.Warn("Lost the watch of the registry's etcd, listing it anew", "err", err, "compact_revision", wr.CompactRevision)
				return
			}
			for _, ev := range wr.Events {
				id := strings.TrimPrefix(string(ev.Kv.Key), s.o.Prefix)
				switch ev.Type {
				case clientv3.EventTypePut:
					e, err := s.decode(ev.Kv.Value)
					if err != nil || e.leaf.ID != id {
						s.o.Logger.Warn("Ignoring a key of the registry's etcd that is not a leaf", "key", string(ev.Kv.Key), "err", err)
						continue
					}
					e.rev, e.lease = ev.Kv.ModRevision, ev.Kv.Lease
					r.applyStored(id, e)
				case clientv3.EventTypeDelete:
					r.deleteStored(id, ev.Kv.ModRevision)
				}
			}
		case <-tick.C:
			timeout := min(s.o.RequestTimeout, s.o.HealthInterval)
			hctx, hcancel := context.WithTimeout(ctx, timeout)
			// A linearizable read of one key: it needs the cluster's
			// quorum, as writes do.
			_, err := s.cli.Get(hctx, s.o.Prefix)
			hcancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					err = fmt.Errorf("no answer within %s", timeout)
				}
				s.setDown("health", err)
				continue
			}
			if s.setUp() {
				// Back after an outage: list anew rather than trust
				// that the watch missed nothing.
				return
			}
		}
	}
}

// revoker revokes the leases that keys no longer use until ctx ends.
func (s *EtcdStore) revoker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-s.revokes:
			rctx, cancel := context.WithTimeout(ctx, s.o.RequestTimeout)
			_, _ = s.cli.Revoke(rctx, clientv3.LeaseID(id))
			cancel()
		}
	}
}

// replaceAll replaces the registry's view with entries (listed from the
// store).
func (r *Registry) replaceAll(entries map[string]*entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leaves = make(map[string]*entry, len(entries))
	r.bySource = make(map[netip.Addr]map[string]*entry)
	for id, e := range entries {
		r.setLocked(id, e)
	}
	r.version.Add(1)
}

// applyStored applies a change read from the store to the registry's
// view.
func (r *Registry) applyStored(id string, e *entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applyLocked(id, e, r.opts.Now())
}

// deleteStored applies a deletion at revision rev read from the store.
func (r *Registry) deleteStored(id string, rev int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.leaves[id]; ok && e.rev < rev {
		r.deleteLocked(id)
	}
}

// Endpoints returns etcd's client URLs.
func (s *EtcdStore) Endpoints() []string { return s.o.Endpoints }

func (s *EtcdStore) status() StoreStatus {
	st := StoreStatus{Kind: "etcd", Prefix: s.o.Prefix}
	for _, ep := range s.o.Endpoints {
		st.Endpoints = append(st.Endpoints, config.RedactURL(ep))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Relists, st.LastRelist = s.relisted, s.lastList
	if s.down != nil {
		st.Down, st.DownSince = s.down.Error(), s.downSince
		// An error may quote an endpoint as it was given.
		for i, ep := range s.o.Endpoints {
			st.Down = strings.ReplaceAll(st.Down, ep, st.Endpoints[i])
		}
		if s.o.Password != "" {
			st.Down = strings.ReplaceAll(st.Down, s.o.Password, "xxxxx")
		}
	}
	return st
}
