package configserver

import (
	"container/list"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/oxcross/oxcross/config"
)

// MaxViewCacheBytes bounds the leaves' views of the config that the
// configserver keeps encoded, by the size of their bodies. Views are
// cached per distinct selection of origins, never per leaf id: every leaf
// whose labels match the same leaf selectors shares one.
const MaxViewCacheBytes = 32 << 20

// viewCache holds the views leaves have of one config: one encoded body
// per distinct set of origins that leaves' labels select, however many
// leaves and ids share it. Leaves that are not known (unregistered ids,
// expired ones) have no labels and share one view. The bodies take at most
// maxBytes; the least recently used view goes first.
type viewCache struct {
	snap *config.Snapshot
	// selective is false when every leaf sees the same origins as the
	// whole config and there are no static leaves to strip: the view is
	// the config itself.
	selective bool
	// selectors are the config's distinct leaf selectors. A leaf's
	// selection is the set of them its labels match, which decides the
	// origins it sees.
	selectors []map[string]string
	// pairs indexes the selectors by the label name and value they
	// require, so that working out a selection costs a leaf's labels, not
	// the config's selectors.
	pairs map[string]map[string][]int
	// unset lists the selectors requiring an empty value, which a leaf
	// without the label matches too.
	unset    []int
	maxBytes int

	mu    sync.Mutex
	views map[string]*list.Element
	// order holds the *encodedView values, the most recently used first.
	order list.List
	bytes int
}

// encodedView is one view's served body and ETag.
type encodedView struct {
	key  string
	body []byte
	etag string
}

// newViewCache returns an empty view cache for the config snap, its
// bodies bounded by maxBytes.
func newViewCache(snap *config.Snapshot, maxBytes int) *viewCache {
	c := &viewCache{snap: snap, maxBytes: maxBytes, views: make(map[string]*list.Element), pairs: make(map[string]map[string][]int)}
	c.selective = len(snap.Config.Leaves) > 0
	seen := make(map[string]bool)
	for _, t := range snap.Config.Origins {
		if len(t.LeafSelector) == 0 {
			continue
		}
		c.selective = true
		key := selectorKey(t.LeafSelector)
		if seen[key] {
			continue
		}
		seen[key] = true
		i := len(c.selectors)
		c.selectors = append(c.selectors, t.LeafSelector)
		empty := false
		for k, v := range t.LeafSelector {
			if c.pairs[k] == nil {
				c.pairs[k] = make(map[string][]int)
			}
			c.pairs[k][v] = append(c.pairs[k][v], i)
			empty = empty || v == ""
		}
		if empty {
			c.unset = append(c.unset, i)
		}
	}
	return c
}

// selectorKey identifies a leaf selector: its pairs in name order, quoted.
func selectorKey(sel map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		fmt.Fprintf(&b, "%q=%q,", k, sel[k])
	}
	return b.String()
}

// selection returns the key of the origins a leaf with labels sees: a bit
// set with one bit per distinct selector, set when labels match it (as
// config.Target.Selects has it: every pair of the selector is the leaf's,
// a missing label having the empty value).
func (c *viewCache) selection(labels map[string]string) string {
	// met counts the pairs of each selector that labels meet.
	met := make([]uint8, len(c.selectors))
	for k, v := range labels {
		for _, i := range c.pairs[k][v] {
			met[i]++
		}
	}
	for _, i := range c.unset {
		for k, v := range c.selectors[i] {
			if _, ok := labels[k]; !ok && v == "" {
				met[i]++
			}
		}
	}
	key := make([]byte, (len(c.selectors)+7)/8)
	for i, sel := range c.selectors {
		if int(met[i]) == len(sel) {
			key[i/8] |= 1 << (i % 8)
		}
	}
	return string(key)
}

// get returns the body and ETag of the view a leaf with labels has,
// encoding it unless the cache holds it.
func (c *viewCache) get(labels map[string]string) ([]byte, string, error) {
	if !c.selective {
		return c.snap.Body, c.snap.ETag, nil
	}
	key := c.selection(labels)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.views[key]; ok {
		c.order.MoveToFront(e)
		v := e.Value.(*encodedView)
		return v.body, v.etag, nil
	}
	// Only the body and ETag are kept: the view's own list of origins
	// would cost as much again.
	snap, err := config.NewSnapshot(c.snap.Config.ForLeaf(labels))
	if err != nil {
		return nil, "", err
	}
	v := &encodedView{key: key, body: snap.Body, etag: snap.ETag}
	c.views[key] = c.order.PushFront(v)
	c.bytes += v.size()
	// The view just encoded stays, even beyond the bound: it is served now.
	for c.bytes > c.maxBytes && c.order.Len() > 1 {
		old := c.order.Remove(c.order.Back()).(*encodedView)
		delete(c.views, old.key)
		c.bytes -= old.size()
	}
	return v.body, v.etag, nil
}

// size is what a view counts against the cache's bound.
func (v *encodedView) size() int { return len(v.body) + len(v.key) + len(v.etag) }
