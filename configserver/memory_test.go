package configserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/statuspage"
	"github.com/oxcross/oxcross/internal/testutil"
)

// The tests here replay issue 13's #3 (memory exhaustion through one
// cached view per leaf id) and #8 (large labels blowing up /sd/leaves and
// the heap) over real HTTP on loopback.

// idsPerSource is how many ids the tests register from one source
// address: a few, as a host running several leaves would, so that no
// per-source limit of the registry is what holds the attack.
const idsPerSource = 8

// loopbackSource returns the i-th of distinct loopback addresses,
// 127.1.0.1 on, that a test can send from as if from that many hosts.
func loopbackSource(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 1, byte(i / 250), byte(i%250 + 1)})
}

// sourceClient returns an HTTP client whose connections come from src.
func sourceClient(src netip.Addr) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// selectiveConfig returns a config of n origins, a third of them for every
// leaf, a third for leaves of one of 10 regions and a third for leaves of
// one of 5 tiers: a leaf sees one of 11 × 6 = 66 selections.
func selectiveConfig(n int) string {
	var b strings.Builder
	b.WriteString("interval: 30s\norigins:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: edge-%d\n    url: https://edge%d.example.com/\n    mode: simple\n", i, i)
		switch i % 3 {
		case 1:
			fmt.Fprintf(&b, "    leaf_selector: {region: r%d}\n", i%10)
		case 2:
			fmt.Fprintf(&b, "    leaf_selector: {tier: t%d}\n", i%5)
		}
	}
	return b.String()
}

// memServer is a configserver on loopback for the memory tests, with
// room for max registered leaves.
type memServer struct {
	s   *configserver.Server
	srv *httptest.Server
}

func newMemServer(tb testing.TB, text string, max int) *memServer {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "config.yaml")
	testutil.WriteFile(tb, path, text)
	s, err := configserver.New(path, configserver.Options{Parser: parser, Registry: configserver.RegistryOptions{MaxLeaves: max}}, prometheus.NewRegistry(), discard)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(configserver.NewMux(s))
	tb.Cleanup(srv.Close)
	return &memServer{s: s, srv: srv}
}

// attackViews registers ids [from, to) with labels of their own, each
// from a source shared by idsPerSource ids, and asks for each one's view
// of the config, as issue 13's #3 did. Every id has a label no other id
// has, and region and tier values that spread the ids over all 66
// selections of selectiveConfig and beyond. It returns the ETag each id
// was served.
func (m *memServer) attackViews(tb testing.TB, from, to int) map[string]string {
	tb.Helper()
	etags := make(map[string]string, to-from)
	for first := from; first < to; first += idsPerSource {
		c := sourceClient(loopbackSource(first / idsPerSource))
		for i := first; i < min(first+idsPerSource, to); i++ {
			id := fmt.Sprintf("v%d", i)
			body := fmt.Sprintf(`{"address": ":%d", "refresh_interval": "10m", "labels": {"region": "r%d", "tier": "t%d", "host": "h%d"}}`, 20000+i%idsPerSource, i%11, i%7, i)
			if r := testutil.Do(tb, c, http.MethodPut, m.srv.URL+"/api/v1/leaves/"+id, body, "Content-Type", "application/json"); r.Code != http.StatusOK {
				tb.Fatalf("PUT %s: %d %s", id, r.Code, r.Body)
			}
			// If-None-Match: * answers 304 whatever the view: the
			// configserver still works out the view, the test does not
			// read 200 KB a time.
			r := testutil.Do(tb, c, http.MethodGet, m.srv.URL+"/config?leaf_id="+id, "", "If-None-Match", "*")
			if r.Code != http.StatusNotModified || r.Header.Get("ETag") == "" {
				tb.Fatalf("GET /config?leaf_id=%s: %d, ETag %q", id, r.Code, r.Header.Get("ETag"))
			}
			etags[id] = r.Header.Get("ETag")
		}
		c.CloseIdleConnections()
	}
	return etags
}

// heapAlloc returns the bytes of live heap objects after a collection.
func heapAlloc() uint64 {
	// Twice, so that what sync.Pools held is gone too.
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

const mib = 1 << 20

// TestViewsPerSelectionNotPerID replays issue 13's #3: against a
// 3,000-origin config with leaf selectors, each of many registered ids
// asks for its view. Views are cached per distinct selection of origins,
// so the heap grows by the views (bounded by the config, at most 66 here)
// and by what the registry keeps per id, not by a view per id (0.9 MB
// each before).
//
// The test runs 2,000 ids, to stay quick under -race: the first 1,000
// create every view, the next 1,000 measure what an id costs, and the
// growth at 10,000 ids (the first 1,000 plus 9,000 at that cost) must stay
// below the 50 MiB. BenchmarkViewsHeap10k measures all 10,000.
func TestViewsPerSelectionNotPerID(t *testing.T) {
	const ids = 2000
	m := newMemServer(t, selectiveConfig(3000), 0)
	// The view of a leaf nobody registered is there before the attack.
	unknown := testutil.Do(t, m.srv.Client(), http.MethodGet, m.srv.URL+"/config?leaf_id=nobody", "")
	before := heapAlloc()
	etags := m.attackViews(t, 0, ids/2)
	half := int64(heapAlloc()) - int64(before)
	maps.Copy(etags, m.attackViews(t, ids/2, ids))
	all := int64(heapAlloc()) - int64(before)
	perID := max(all-half, 0) / (ids / 2)
	projected := half + 9000*perID
	t.Logf("heap growth: %.1f MiB after %d ids, %.1f MiB after %d; %d bytes per id; %.1f MiB projected for 10,000 ids", float64(half)/mib, ids/2, float64(all)/mib, ids, perID, float64(projected)/mib)
	if projected >= 50*mib || all >= 50*mib {
		t.Errorf("heap growth %.1f MiB after %d ids (%.1f MiB after %d, %d bytes per id): %.1f MiB for 10,000 ids, want < 50 MiB", float64(all)/mib, ids, float64(half)/mib, ids/2, perID, float64(projected)/mib)
	}
	// What an id costs is its registry entry, not a view.
	if perID > 4<<10 {
		t.Errorf("an id costs %d bytes of heap, want < 4 KiB", perID)
	}

	// Ids with the same selection share one view: 11 regions (r10 selects
	// nothing) × 7 tiers (t5 and t6 select nothing) make 66 views.
	distinct := map[string]bool{}
	for _, e := range etags {
		distinct[e] = true
	}
	if len(distinct) != 66 {
		t.Errorf("%d ids were served %d distinct views, want 66", ids, len(distinct))
	}
	for i := range ids {
		a, b := fmt.Sprintf("v%d", i), fmt.Sprintf("v%d", (i+77)%ids) // 77 = 7 × 11: same region and tier
		if (i+77) < ids && etags[a] != etags[b] {
			t.Fatalf("%s and %s select the same origins but were served ETags %s and %s", a, b, etags[a], etags[b])
		}
	}
	// An id in neither a region nor a tier of the config sees what an
	// unknown id sees.
	if e := etags["v76"]; e != unknown.Header.Get("ETag") { // 76 % 11 = 10, 76 % 7 = 6
		t.Errorf("v76 (region r10, tier t6) has ETag %s, unknown ids %s", e, unknown.Header.Get("ETag"))
	}
	// Made-up ids all share the unknown view and cost nothing each.
	before = heapAlloc()
	c := m.srv.Client()
	for i := range ids {
		r := testutil.Do(t, c, http.MethodGet, fmt.Sprintf("%s/config?leaf_id=made-up-%d", m.srv.URL, i), "", "If-None-Match", "*")
		if r.Header.Get("ETag") != unknown.Header.Get("ETag") {
			t.Fatalf("made-up id %d: ETag %s, want the unknown view's %s", i, r.Header.Get("ETag"), unknown.Header.Get("ETag"))
		}
	}
	if grown := int64(heapAlloc()) - int64(before); grown > 2*mib {
		t.Errorf("%d made-up ids grew the heap by %.1f MiB", ids, float64(grown)/mib)
	}
}

// BenchmarkViewsHeap10k is issue 13's #3 at its full size: 10,000
// distinct ids register and ask for their view of a 3,000-origin config
// with leaf selectors. It reports the heap growth, which must stay below
// 50 MiB, as MiB/10k-ids: each iteration is a whole run on a new server,
// and the last one is reported.
func BenchmarkViewsHeap10k(b *testing.B) {
	const ids = 10000
	var grown int64
	for b.Loop() {
		m := newMemServer(b, selectiveConfig(3000), ids)
		before := heapAlloc()
		m.attackViews(b, 0, ids)
		grown = int64(heapAlloc()) - int64(before)
		runtime.KeepAlive(m)
		m.srv.Close()
	}
	b.ReportMetric(float64(grown)/mib, "MiB/10k-ids")
	if grown >= 50*mib {
		b.Errorf("10,000 ids grew the heap by %.1f MiB, want < 50 MiB", float64(grown)/mib)
	}
}

// budgetLabels returns config.MaxLabels leaf labels whose names and values
// take total bytes: one value of config.MaxLabelValueLength, the others
// filling the rest evenly, every value escaped in JSON when escape is set
// ('<' becomes \u003c): the most a registration can put in /sd/leaves.
func budgetLabels(total int, escape bool) map[string]string {
	const n = config.MaxLabels
	fill := "v"
	if escape {
		fill = "<"
	}
	labels := make(map[string]string, n)
	rest := total - config.MaxLabelValueLength
	for i := range n {
		rest -= len(fmt.Sprintf("l%02d", i))
	}
	for i := range n {
		k := fmt.Sprintf("l%02d", i)
		if i == 0 {
			labels[k] = strings.Repeat(fill, config.MaxLabelValueLength)
			continue
		}
		size := rest / (n - 1)
		if i <= rest%(n-1) {
			size++
		}
		labels[k] = strings.Repeat(fill, size)
	}
	return labels
}

// longID returns a distinct leaf id of config.MaxLeafIDLength characters.
func longID(i int) string {
	id := fmt.Sprintf("leaf-%05d-", i)
	return id + strings.Repeat("x", config.MaxLeafIDLength-len(id))
}

// TestSDLeavesBoundedByLabelBudget replays issue 13's #8: 1,000 leaves
// register with everything a registration can make large (128-character
// ids and versions, 32 labels at the label budget), once with plain
// values and once with values that JSON escapes six-fold. /sd/leaves, the
// status page and the heap stay within what the budget allows (18 MB,
// 8.6 MB and 215 MB before, with 32 labels of 255 characters); over the
// budget a registration is refused (TestRegisterLabelsOverBudget).
func TestSDLeavesBoundedByLabelBudget(t *testing.T) {
	const leaves = 1000
	for _, c := range []struct {
		name   string
		escape bool
		// sd and page bound /sd/leaves and the status page, heap the
		// heap's growth with both (215 MB before).
		sd, page, heap int
	}{
		{"plain", false, 4 * mib, 2 * mib, 20 * mib},
		{"escaped", true, 14 * mib, 5 * mib, 40 * mib},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newMemServer(t, configYAML("127.0.0.1", 9), 0)
			labels := budgetLabels(config.MaxLeafLabelBytes, c.escape)
			reg, err := json.Marshal(map[string]any{"address": ":9299", "version": strings.Repeat("1", 128), "refresh_interval": "10m", "labels": labels})
			if err != nil {
				t.Fatal(err)
			}
			before := heapAlloc()
			for first := 0; first < leaves; first += idsPerSource {
				cl := sourceClient(loopbackSource(first / idsPerSource))
				for i := first; i < first+idsPerSource; i++ {
					if r := testutil.Do(t, cl, http.MethodPut, m.srv.URL+"/api/v1/leaves/"+longID(i), string(reg), "Content-Type", "application/json"); r.Code != http.StatusOK {
						t.Fatalf("PUT %s: %d %s", longID(i), r.Code, r.Body)
					}
				}
				cl.CloseIdleConnections()
			}
			// Prometheus' http_sd client asks without gzip.
			r := testutil.Do(t, m.srv.Client(), http.MethodGet, m.srv.URL+"/sd/leaves", "")
			var groups []sdGroup
			if err := json.Unmarshal([]byte(r.Body), &groups); err != nil || len(groups) != leaves {
				t.Fatalf("/sd/leaves: %d groups, %v", len(groups), err)
			}
			if got := groups[0].Labels["l00"]; got != labels["l00"] {
				t.Errorf("/sd/leaves label l00 = %.20q…, want %.20q…", got, labels["l00"])
			}
			var page bytes.Buffer
			l := m.s.Current()
			if err := statuspage.RenderConfigserver(&page, statuspage.Configserver{File: "config.yaml", ETag: l.ETag, Leaves: m.s.Leaves(), Origins: l.Config.Origins, Now: time.Now(), Refresh: 15}); err != nil {
				t.Fatal(err)
			}
			grown := int64(heapAlloc()) - int64(before)
			runtime.KeepAlive(m)
			t.Logf("%d leaves at the label budget: /sd/leaves %d bytes (%d per leaf), status page %d bytes, heap +%.1f MiB", leaves, len(r.Body), len(r.Body)/leaves, page.Len(), float64(grown)/mib)
			if len(r.Body) >= c.sd {
				t.Errorf("/sd/leaves of %d leaves at the label budget: %d bytes, want < %d", leaves, len(r.Body), c.sd)
			}
			if page.Len() >= c.page {
				t.Errorf("status page of %d leaves at the label budget: %d bytes, want < %d", leaves, page.Len(), c.page)
			}
			if grown >= int64(c.heap) {
				t.Errorf("%d leaves at the label budget, /sd/leaves and the status page grew the heap by %.1f MiB, want < %d MiB", leaves, float64(grown)/mib, c.heap/mib)
			}
		})
	}
}

// TestRegisterLabelsOverBudget: labels over config.MaxLeafLabelBytes are
// refused with 400 and the reason, and never listed; at the budget they
// are taken. A leaf refuses such labels itself before it sends them.
func TestRegisterLabelsOverBudget(t *testing.T) {
	f := newRegFixture(t, regConfig, configserver.RegistryOptions{})
	for _, escape := range []bool{false, true} {
		over, _ := json.Marshal(map[string]any{"address": ":9299", "labels": budgetLabels(config.MaxLeafLabelBytes+1, escape)})
		wantCode(t, "labels one byte over the budget", f.put(t, "big", string(over)), http.StatusBadRequest,
			"labels: 1025 bytes of names and values, at most 1024 are allowed per leaf")
	}
	// A few long labels add up as well as many.
	long := map[string]string{}
	for _, k := range []string{"a", "b", "c", "d"} {
		long[k] = strings.Repeat("v", config.MaxLabelValueLength)
	}
	body, _ := json.Marshal(map[string]any{"address": ":9299", "labels": long})
	wantCode(t, "four labels of 257 bytes", f.put(t, "big", string(body)), http.StatusBadRequest, "1028 bytes of names and values")
	if _, ok := f.sdLeaves(t)["big"]; ok {
		t.Errorf("a leaf refused for its labels is in /sd/leaves")
	}
	at, _ := json.Marshal(map[string]any{"address": ":9299", "labels": budgetLabels(config.MaxLeafLabelBytes, true)})
	if r := f.put(t, "big", string(at)); r.Code != http.StatusOK {
		t.Fatalf("labels at the budget: %d %s", r.Code, r.Body)
	}
	if g, ok := f.sdLeaves(t)["big"]; !ok || len(g.Labels["l00"]) != config.MaxLabelValueLength {
		t.Errorf("a leaf at the label budget is not in /sd/leaves with its labels: %v", g)
	}
	// The leaf's own check, before its first heartbeat.
	_, err := discovery.NewRegistrar(f.srv.URL, f.srv.Client(), "test", "big", discovery.Registration{Address: ":9299", Labels: budgetLabels(config.MaxLeafLabelBytes+1, false)})
	if err == nil || !strings.Contains(err.Error(), "leaf labels: 1025 bytes of names and values, at most 1024") {
		t.Errorf("NewRegistrar with labels over the budget: %v", err)
	}
}

// TestViewsFollowReload: a reload drops the views of the previous config.
func TestViewsFollowReload(t *testing.T) {
	f := newRegFixture(t, regConfig, configserver.RegistryOptions{})
	if r := f.put(t, "ams-1", `{"address": ":9299", "labels": {"region": "eu"}}`); r.Code != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.Code, r.Body)
	}
	ids, before := f.originsOf(t, "ams-1")
	if strings.Join(ids, " ") != "everywhere eu-only tcp-origin" {
		t.Fatalf("ams-1 in eu sees %v", ids)
	}
	testutil.WriteFile(t, f.path, strings.Replace(regConfig, "leaf_selector: {region: eu}", "leaf_selector: {region: us}", 1))
	if err := f.s.Reload(); err != nil {
		t.Fatal(err)
	}
	ids, after := f.originsOf(t, "ams-1")
	if strings.Join(ids, " ") != "everywhere tcp-origin" || after == before {
		t.Errorf("after the reload ams-1 sees %v with ETag %s (was %s)", ids, after, before)
	}
}

// benchViews returns a configserver's routes for a 3,000-origin config
// (selectiveConfig, or with every origin's own selector when distinct)
// with 1,000 registered leaves, and a GET /config request of one of them
// that its ETag answers with 304.
func benchViews(b *testing.B, distinct bool) (http.Handler, *http.Request) {
	text := selectiveConfig(3000)
	if distinct {
		var sb strings.Builder
		for i, line := range strings.Split(text, "\n") {
			if strings.Contains(line, "leaf_selector") {
				line = fmt.Sprintf("    leaf_selector: {site: s%d}", i)
			}
			sb.WriteString(line + "\n")
		}
		text = sb.String()
	}
	m := newMemServer(b, text, 0)
	src := netip.MustParseAddr("127.0.0.1")
	for i := range 1000 {
		reg := discovery.Registration{Address: fmt.Sprintf(":%d", 20000+i), Labels: map[string]string{"region": fmt.Sprintf("r%d", i%11), "tier": fmt.Sprintf("t%d", i%7), "site": fmt.Sprintf("s%d", i)}, RefreshInterval: "1h"}
		if _, _, err := m.s.Registry().Put(context.Background(), fmt.Sprintf("v%d", i), reg, configserver.Caller{Addr: src}, nil); err != nil {
			b.Fatal(err)
		}
	}
	h := configserver.NewMux(m.s)
	req := httptest.NewRequest(http.MethodGet, "/config?leaf_id=v42", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	req.Header.Set("If-None-Match", w.Header().Get("ETag"))
	return h, req
}

// BenchmarkConfigLeafView answers a leaf's GET /config with its view's
// ETag (304) for a 3,000-origin config whose 15 distinct leaf selectors
// give 66 views: working out the leaf's selection and finding its view.
func BenchmarkConfigLeafView(b *testing.B) {
	h, req := benchViews(b, false)
	serveBench(b, h, req, http.StatusNotModified)
}

// BenchmarkConfigLeafViewDistinct is BenchmarkConfigLeafView with a
// selector of its own on each of 2,000 origins, the most a leaf's
// selection costs to work out.
func BenchmarkConfigLeafViewDistinct(b *testing.B) {
	h, req := benchViews(b, true)
	serveBench(b, h, req, http.StatusNotModified)
}
