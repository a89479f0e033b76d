package prober

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/tracer"
)

// PathView is one path origin's last trace, as GET /api/v1/paths and the
// leaf's status page show it.
type PathView struct {
	OriginID string `json:"origin_id"`
	Target   string `json:"target"`
	// Probed is false until the origin's first trace ends; the rest is
	// empty until then.
	Probed      bool      `json:"probed"`
	At          time.Time `json:"at,omitzero"`
	Method      string    `json:"method,omitempty"`
	Source      string    `json:"source,omitempty"`
	Destination string    `json:"destination,omitempty"`
	Reached     bool      `json:"reached"`
	// MTU is the path MTU found, 0 when not measured (method tcp).
	MTU             int       `json:"mtu_bytes,omitempty"`
	DurationSeconds float64   `json:"trace_duration_seconds"`
	Hops            []HopView `json:"hops"`
}

// HopView is one hop of a trace.
type HopView struct {
	Hop int `json:"hop"`
	// Address is empty for a hop that did not answer; Name is its reverse
	// DNS name, when the resolver gave one within ReverseTimeout.
	Address  string  `json:"address,omitempty"`
	Name     string  `json:"name,omitempty"`
	Sent     int     `json:"sent"`
	Received int     `json:"received"`
	Loss     float64 `json:"loss"`
	// The round trips of the hop's answers, in seconds; 0 without any.
	RTTMinSeconds    float64 `json:"rtt_min_seconds"`
	RTTMedianSeconds float64 `json:"rtt_median_seconds"`
	// Final is set on the hop that ended the trace: "reached", or why a
	// router refused the probe.
	Final string `json:"final,omitempty"`
}

// ReverseTimeout is how long a hop's reverse DNS lookup may take; a hop
// whose name comes later is shown without one.
const ReverseTimeout = 200 * time.Millisecond

// How long ReverseNames keeps a name, and the lack of one.
const (
	reverseTTL         = time.Hour
	reverseNegativeTTL = 10 * time.Minute
	reverseMaxEntries  = 10000
)

// ReverseNames looks up the reverse DNS names of hops, each within
// ReverseTimeout, and caches the outcome (a name for an hour, none for ten
// minutes). It is safe for concurrent use.
type ReverseNames struct {
	resolver *net.Resolver
	now      func() time.Time

	mu    sync.Mutex
	cache map[netip.Addr]reverseEntry
}

type reverseEntry struct {
	name    string
	expires time.Time
}

// NewReverseNames returns a cache that asks r (net.DefaultResolver when
// nil).
func NewReverseNames(r *net.Resolver) *ReverseNames {
	if r == nil {
		r = net.DefaultResolver
	}
	return &ReverseNames{resolver: r, now: time.Now, cache: make(map[netip.Addr]reverseEntry)}
}

// names returns the names of addrs, looking up those not cached in
// parallel.
func (rn *ReverseNames) names(ctx context.Context, addrs []netip.Addr) map[netip.Addr]string {
	out := make(map[netip.Addr]string, len(addrs))
	if rn == nil {
		return out
	}
	now := rn.now()
	var missing []netip.Addr
	rn.mu.Lock()
	for _, a := range addrs {
		if e, ok := rn.cache[a]; ok && now.Before(e.expires) {
			out[a] = e.name
		} else if _, dup := out[a]; !dup {
			out[a] = ""
			missing = append(missing, a)
		}
	}
	rn.mu.Unlock()
	if len(missing) == 0 {
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, ReverseTimeout)
	defer cancel()
	names := make([]string, len(missing))
	var wg sync.WaitGroup
	for i, a := range missing {
		wg.Go(func() {
			if ns, err := rn.resolver.LookupAddr(ctx, a.String()); err == nil && len(ns) > 0 {
				names[i] = strings.TrimSuffix(ns[0], ".")
			}
		})
	}
	wg.Wait()
	rn.mu.Lock()
	defer rn.mu.Unlock()
	if len(rn.cache) > reverseMaxEntries {
		clear(rn.cache)
	}
	for i, a := range missing {
		ttl := reverseTTL
		if names[i] == "" {
			ttl = reverseNegativeTTL
		}
		rn.cache[a] = reverseEntry{name: names[i], expires: now.Add(ttl)}
		out[a] = names[i]
	}
	return out
}

// Paths returns the last trace of every path origin of cfg, by origin id;
// only originID's when it is not empty. It reports false when originID is
// not a path origin of cfg.
func (h *History) Paths(ctx context.Context, cfg *config.Config, names *ReverseNames, originID string) ([]PathView, bool) {
	var out []PathView
	var addrs []netip.Addr
	for i := range cfg.Origins {
		t := &cfg.Origins[i]
		if _, ok := cfg.Modules[t.Module].Settings.(*PathSettings); !ok {
			continue
		}
		if originID != "" && t.ID != originID {
			continue
		}
		last, at, probed := h.last(t.ID)
		v := PathView{OriginID: t.ID, Target: t.Address, Probed: probed, Hops: []HopView{}}
		if p := last.Path; p != nil {
			v.At = at
			v.fill(p.Trace)
			for _, hop := range p.Trace.Hops {
				if hop.Addr.IsValid() {
					addrs = append(addrs, hop.Addr)
				}
			}
		}
		out = append(out, v)
	}
	if originID != "" && len(out) == 0 {
		return nil, false
	}
	slices.SortFunc(out, func(a, b PathView) int { return strings.Compare(a.OriginID, b.OriginID) })
	byAddr := names.names(ctx, addrs)
	for i := range out {
		for j := range out[i].Hops {
			hv := &out[i].Hops[j]
			if a, err := netip.ParseAddr(hv.Address); err == nil {
				hv.Name = byAddr[a]
			}
		}
	}
	return out, true
}

// last returns origin id's last result and when it came.
func (h *History) last(id string) (Result, time.Time, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	oh, ok := h.origins[id]
	if !ok {
		return Result{}, time.Time{}, false
	}
	at, probed := oh.when()
	return oh.last, at, probed
}

func (v *PathView) fill(t *tracer.Trace) {
	v.Method, v.Reached, v.MTU, v.DurationSeconds = string(t.Method), t.Reached, t.MTU, t.Duration.Seconds()
	v.Destination = t.Dst.Addr().String()
	switch {
	case t.Src.Port() != 0:
		v.Source = t.Src.String()
	case t.Src.IsValid():
		v.Source = t.Src.Addr().String()
	}
	for _, h := range t.Hops {
		hv := HopView{
			Hop: h.TTL, Sent: h.Sent, Received: len(h.RTTs), Loss: h.Loss(),
			RTTMinSeconds: h.MinRTT().Seconds(), RTTMedianSeconds: h.MedianRTT().Seconds(), Final: h.Final,
		}
		if h.Addr.IsValid() {
			hv.Address = h.Addr.String()
		}
		v.Hops = append(v.Hops, hv)
	}
}

// NewPathsHandler serves GET /api/v1/paths[?origin_id=…]: the last trace
// of the current config's path origins as JSON, {"paths": [...]}; 404
// for an origin_id that is not a path origin.
func NewPathsHandler(h *History, current func() *config.Config, names *ReverseNames) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		cfg := current()
		id := r.URL.Query().Get("origin_id")
		var paths []PathView
		ok := true
		if cfg != nil {
			paths, ok = h.Paths(r.Context(), cfg, names, id)
		} else {
			ok = id == ""
		}
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf("origin_id %q is not a path origin of the leaf's config", id)})
			return
		}
		if paths == nil {
			paths = []PathView{}
		}
		_ = json.NewEncoder(w).Encode(map[string][]PathView{"paths": paths})
	})
}
