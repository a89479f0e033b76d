package configserver

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/prober"
)

// viewSnapshot parses a config text into the snapshot a Server serves.
func viewSnapshot(t *testing.T, text string) *config.Snapshot {
	t.Helper()
	cfg, err := prober.DefaultKinds(slog.New(slog.DiscardHandler)).Parser(config.Limits{}).Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := config.NewSnapshot(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// cached returns the number of views c holds and the bytes they count.
func (c *viewCache) cached() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len(), c.bytes
}

// TestViewCacheKeys: leaves whose labels match the same selectors share
// one view, whatever else their labels say; leaves that match different
// ones do not.
func TestViewCacheKeys(t *testing.T) {
	c := newViewCache(viewSnapshot(t, `origins:
  - {url: 'http://a/', mode: simple}
  - {url: 'http://b/', mode: simple, leaf_selector: {region: eu}}
  - {url: 'http://c/', mode: simple, leaf_selector: {region: eu}}
  - {url: 'http://d/', mode: simple, leaf_selector: {region: eu, tier: gold}}
  - {url: 'http://e/', mode: simple, leaf_selector: {tier: gold, region: eu}}
`), MaxViewCacheBytes)
	if len(c.selectors) != 2 {
		t.Errorf("%d distinct selectors, want 2 ({region: eu} and {region: eu, tier: gold})", len(c.selectors))
	}
	get := func(labels map[string]string) string {
		t.Helper()
		body, etag, err := c.get(labels)
		if err != nil || etag != config.ETag(body) {
			t.Fatalf("get(%v): ETag %s for its body, %v", labels, etag, err)
		}
		return etag
	}
	none := get(nil)
	for _, labels := range []map[string]string{{}, {"region": "us"}, {"tier": "gold"}, {"host": "h1", "region": "eu-west"}} {
		if got := get(labels); got != none {
			t.Errorf("labels %v select no origin but have their own view", labels)
		}
	}
	eu := get(map[string]string{"region": "eu"})
	if eu == none || get(map[string]string{"region": "eu", "host": "h2", "tier": "silver"}) != eu {
		t.Errorf("leaves in region eu do not share one view of their own")
	}
	gold := get(map[string]string{"region": "eu", "tier": "gold"})
	if gold == eu || gold == none {
		t.Errorf("a leaf in eu and gold shares another selection's view")
	}
	if n, _ := c.cached(); n != 3 {
		t.Errorf("%d views cached, want 3", n)
	}
}

// TestViewCacheBound: the cached views' bodies stay within the bound, the
// least recently used going first; an evicted view comes back the same.
func TestViewCacheBound(t *testing.T) {
	var b strings.Builder
	b.WriteString("origins:\n")
	for i := range 400 {
		fmt.Fprintf(&b, "  - {url: 'http://edge%d/', mode: simple, leaf_selector: {region: r%d}}\n", i, i%4)
	}
	snap := viewSnapshot(t, b.String())
	body, _, err := newViewCache(snap, MaxViewCacheBytes).get(map[string]string{"region": "r0"})
	if err != nil {
		t.Fatal(err)
	}
	// Room for two views of 100 origins, not three.
	c := newViewCache(snap, 5*len(body)/2)
	etags := map[string]string{}
	for _, r := range []string{"r0", "r1", "r2", "r3"} {
		_, etags[r], _ = c.get(map[string]string{"region": r})
		if n, bytes := c.cached(); n > 2 || bytes > c.maxBytes {
			t.Fatalf("after %s: %d views of %d bytes cached, bound %d", r, n, bytes, c.maxBytes)
		}
	}
	c.mu.Lock()
	front := c.order.Front().Value.(*encodedView).etag
	c.mu.Unlock()
	if front != etags["r3"] {
		t.Errorf("the view just served is not the most recent one")
	}
	if _, etag, _ := c.get(map[string]string{"region": "r0"}); etag != etags["r0"] {
		t.Errorf("r0's view, evicted and encoded again, has ETag %s, was %s", etag, etags["r0"])
	}
	// A view larger than the bound is still served, and kept alone.
	tiny := newViewCache(snap, 1)
	if body, _, err := tiny.get(map[string]string{"region": "r1"}); err != nil || len(body) == 0 {
		t.Fatalf("a view beyond the bound: %d bytes, %v", len(body), err)
	}
	if n, _ := tiny.cached(); n != 1 {
		t.Errorf("%d views cached beyond the bound, want the last one", n)
	}
}

// TestViewCacheNotSelective: without selectors or static leaves every
// leaf sees the config itself, and nothing is cached.
func TestViewCacheNotSelective(t *testing.T) {
	snap := viewSnapshot(t, "origins: [{url: 'http://a/', mode: simple}]\n")
	c := newViewCache(snap, MaxViewCacheBytes)
	if _, etag, _ := c.get(map[string]string{"region": "eu"}); etag != snap.ETag {
		t.Errorf("ETag %s, want the config's %s", etag, snap.ETag)
	}
	if n, _ := c.cached(); n != 0 {
		t.Errorf("%d views cached for a config without selectors", n)
	}
}

// TestViewCacheSelection: the indexed selection agrees with
// config.Target.Selects for every leaf, selectors with several pairs and
// with empty values (which a leaf without the label matches) among them.
func TestViewCacheSelection(t *testing.T) {
	c := newViewCache(viewSnapshot(t, `origins:
  - {url: 'http://a/', mode: simple, leaf_selector: {region: eu}}
  - {url: 'http://b/', mode: simple, leaf_selector: {region: eu, tier: gold}}
  - {url: 'http://c/', mode: simple, leaf_selector: {region: us, tier: ''}}
  - {url: 'http://d/', mode: simple, leaf_selector: {tier: ''}}
  - {url: 'http://e/', mode: simple, leaf_selector: {tier: gold}}
  - {url: 'http://f/', mode: simple, leaf_selector: {region: '', tier: ''}}
`), MaxViewCacheBytes)
	values := []string{"", "eu", "us", "gold", "absent"}
	for r := range values {
		for tr := range values {
			labels := map[string]string{"host": "h"}
			if values[r] != "absent" {
				labels["region"] = values[r]
			}
			if values[tr] != "absent" {
				labels["tier"] = values[tr]
			}
			key := c.selection(labels)
			for i, sel := range c.selectors {
				want := (&config.Target{LeafSelector: sel}).Selects(labels)
				if got := key[i/8]&(1<<(i%8)) != 0; got != want {
					t.Errorf("labels %v, selector %v: selected %v, Selects says %v", labels, sel, got, want)
				}
			}
		}
	}
}
