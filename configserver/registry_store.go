package configserver

import (
	"context"
	"errors"
	"time"
)

// Store keeps a Registry's entries. The Registry makes every check of a
// registration against its in-memory view, then writes through the store,
// which feeds the changes made elsewhere (by other replicas, by lease
// expiry) back into that view; reads never wait on the store.
//
// The stores are this package's: the in-memory one (RegistryOptions.Store
// nil, the default) and the etcd one (NewEtcdStore).
type Store interface {
	// Ready reports nil while the store can be written, and why not
	// otherwise.
	Ready() error

	// put stores e as the entry of leaf id for ttl, provided the stored
	// entry is still prev (nil: none). It returns the entry's revision
	// and lease, a *conflictError when the stored entry changed, or why
	// the store cannot be written.
	put(ctx context.Context, id string, e *entry, ttl time.Duration, prev *entry) (rev, lease int64, err error)
	// delete removes the entry of leaf id, provided it is still prev.
	delete(ctx context.Context, id string, prev *entry) error
	// expiry is when an entry written at now for ttl leaves Live: for a
	// store whose leases expire entries, never (the store deletes it).
	expiry(now time.Time, ttl time.Duration) time.Time
	// run keeps r's view in step with the store until ctx ends.
	run(ctx context.Context, r *Registry)
	// status is the store's state for the status page.
	status() StoreStatus
}

// StoreStatus is the state of a Registry's store, as the configserver's
// status page shows it (statuspage.RegistryStore has the same fields).
type StoreStatus struct {
	// Kind is "memory" or "etcd".
	Kind string
	// Endpoints are etcd's client URLs, a password in them redacted.
	Endpoints []string
	// Prefix is the key prefix of the leaves in etcd.
	Prefix string
	// Down says why the store cannot be written now (the endpoints in it
	// redacted); empty while it can.
	Down string
	// DownSince is when the store went down; zero while up.
	DownSince time.Time
	// Relists counts the times the registry was listed from the store
	// anew (at start, after a compaction, a lost watch or an outage), and
	// LastRelist is the last of them (zero: never).
	Relists    uint64
	LastRelist time.Time
}

// StoreStatus returns the state of the registry's store.
func (r *Registry) StoreStatus() StoreStatus { return r.store.status() }

// errStoreConflict says that a stored entry changed since the registry's
// view of it: the write is checked again and retried.
var errStoreConflict = errors.New("the entry changed in the registry's store meanwhile")

// conflictError is errStoreConflict with the entry now stored (nil: none).
type conflictError struct {
	current *entry
}

func (e *conflictError) Error() string { return errStoreConflict.Error() }
func (e *conflictError) Unwrap() error { return errStoreConflict }

// memoryStore is the in-memory store: the Registry's own view is the
// storage, entries expire by the Registry's clock, and nothing can fail.
type memoryStore struct{}

func (memoryStore) Ready() error { return nil }

func (memoryStore) put(context.Context, string, *entry, time.Duration, *entry) (int64, int64, error) {
	return 0, 0, nil
}

func (memoryStore) delete(context.Context, string, *entry) error { return nil }

func (memoryStore) expiry(now time.Time, ttl time.Duration) time.Time { return now.Add(ttl) }

func (memoryStore) run(ctx context.Context, _ *Registry) { <-ctx.Done() }

func (memoryStore) status() StoreStatus { return StoreStatus{Kind: "memory"} }
