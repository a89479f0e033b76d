package configserver_test

import (
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/statuspage"
	"github.com/oxcross/oxcross/internal/testutil"
)

// etcdRegistry returns a registry on the etcd store at endpoint and prefix,
// running until the test ends, and its metrics.
func etcdRegistry(t testing.TB, endpoint, prefix string, opts configserver.RegistryOptions) (*configserver.Registry, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	store, err := configserver.NewEtcdStore(configserver.EtcdOptions{
		Endpoints: []string{endpoint}, Prefix: prefix, HealthInterval: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	}, reg)
	if err != nil {
		t.Fatal(err)
	}
	opts.Store = store
	r := configserver.NewRegistry(opts, reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; _ = store.Close() })
	testutil.EventuallyReason(t, 10*time.Second, "the etcd store ready", func() string {
		if err := store.Ready(); err != nil {
			return err.Error()
		}
		return ""
	})
	return r, reg
}

func sortedIDs(r *configserver.Registry) []string {
	leaves, _, _ := r.Live()
	var ids []string
	for _, l := range leaves {
		ids = append(ids, l.ID)
	}
	slices.Sort(ids)
	return ids
}

func putAs(r *configserver.Registry, id string, from netip.Addr, refresh string) error {
	_, _, err := r.Put(context.Background(), id, discovery.Registration{Address: from.String() + ":9299", RefreshInterval: refresh}, configserver.Caller{Addr: from}, nil)
	return err
}

// TestEtcdRegistryShared: two registries on one etcd prefix share their
// leaves, and the checks above the store see the other replica's
// registrations: the per-source cap, the owner of an id; a deletion on one
// is seen by the other, and etcd's lease expires a leaf whose heartbeats
// stop, in both.
func TestEtcdRegistryShared(t *testing.T) {
	etcd := testutil.StartEtcd(t)
	prefix := fmt.Sprintf("/oxcross-test/%d/", time.Now().UnixNano())
	opts := configserver.RegistryOptions{MaxLeavesPerSource: 2}
	r1, _ := etcdRegistry(t, etcd.ClientURL, prefix, opts)
	r2, _ := etcdRegistry(t, etcd.ClientURL, prefix, opts)

	if err := putAs(r1, "a", srcA, "1m"); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyReason(t, 2*time.Second, "r2 lists a", func() string {
		if ids := sortedIDs(r2); !slices.Equal(ids, []string{"a"}) {
			return fmt.Sprint(ids)
		}
		return ""
	})
	// srcA holds a (through r1) and b (through r2): a third id from it is
	// over the cap, on either replica.
	if err := putAs(r2, "b", srcA, "1m"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*time.Second, "r1 lists b", func() bool { return slices.Contains(sortedIDs(r1), "b") })
	if err := putAs(r1, "c", srcA, "1m"); err == nil {
		t.Errorf("a third id from %s through r1 accepted, want the per-source cap of 2 counting r2's registration", srcA)
	}
	// a belongs to srcA: another source may not take it through r2.
	if err := putAs(r2, "a", srcB, "1m"); err == nil {
		t.Errorf("leaf a, registered from %s through r1, taken from %s through r2", srcA, srcB)
	}
	// Renewing through the other replica is the same leaf.
	if err := putAs(r2, "a", srcA, "1m"); err != nil {
		t.Errorf("renewing a through r2: %v", err)
	}
	if err := r2.Delete("b", configserver.Caller{Addr: srcA}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*time.Second, "r1 drops b", func() bool { return !slices.Contains(sortedIDs(r1), "b") })

	// A leaf that stops its heartbeats: refresh 1s, so a lease of 3s.
	put := time.Now()
	if err := putAs(r1, "short", srcB, "1s"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*time.Second, "r2 lists short", func() bool { return slices.Contains(sortedIDs(r2), "short") })
	testutil.Eventually(t, 15*time.Second, "short expires", func() bool {
		return !slices.Contains(sortedIDs(r1), "short") && !slices.Contains(sortedIDs(r2), "short")
	})
	gone := time.Since(put)
	if gone < 3*time.Second {
		t.Errorf("short left after %s, before its 3s", gone)
	}
	t.Logf("a leaf with refresh 1s (lease 3s) left both replicas %s after its only heartbeat", gone.Round(time.Millisecond))
	if ids := sortedIDs(r2); !slices.Equal(ids, []string{"a"}) {
		t.Errorf("r2 lists %v, want [a]", ids)
	}
}

// TestEtcdRegistryOutage: while etcd is down the registry keeps its leaves
// and refuses registrations (503, unavailable), is not ready, and counts
// it; once etcd is back it is ready again, with the leaves it had.
func TestEtcdRegistryOutage(t *testing.T) {
	etcd := testutil.StartEtcd(t)
	prefix := fmt.Sprintf("/oxcross-test/%d/", time.Now().UnixNano())
	r, reg := etcdRegistry(t, etcd.ClientURL, prefix, configserver.RegistryOptions{})
	if err := putAs(r, "a", srcA, "10s"); err != nil {
		t.Fatal(err)
	}
	etcd.Stop(t)
	testutil.Eventually(t, 10*time.Second, "store_up 0", func() bool {
		return testutil.MetricValue(t, reg, "oxcross_configserver_registry_store_up") == 0
	})
	err := putAs(r, "b", srcB, "10s")
	if err == nil {
		t.Fatal("a registration accepted while etcd is down")
	}
	if !strings.Contains(err.Error(), "etcd") {
		t.Errorf("the refusal %q does not say etcd is unreachable", err)
	}
	if ids := sortedIDs(r); !slices.Equal(ids, []string{"a"}) {
		t.Errorf("during the outage the registry lists %v, want its last [a]", ids)
	}
	etcd.Start(t)
	testutil.Eventually(t, 15*time.Second, "store_up 1", func() bool {
		return testutil.MetricValue(t, reg, "oxcross_configserver_registry_store_up") == 1
	})
	if ids := sortedIDs(r); !slices.Equal(ids, []string{"a"}) {
		t.Errorf("after the outage the registry lists %v, want [a]", ids)
	}
	if err := putAs(r, "b", srcB, "10s"); err != nil {
		t.Errorf("a registration after etcd is back: %v", err)
	}
	if n := testutil.MetricValue(t, reg, "oxcross_configserver_registry_store_relists_total"); n < 2 {
		t.Errorf("relists %v, want at least 2 (start, and after the outage)", n)
	}
}

// TestEtcdServerOutage: the configserver's HTTP side of an etcd outage:
// registrations get 503 with the reason and Retry-After, counted once as
// unavailable; /sd/leaves and the views keep the last registry; Ready says
// why not, and recovers by itself.
func TestEtcdServerOutage(t *testing.T) {
	etcd := testutil.StartEtcd(t)
	storeMetrics := prometheus.NewRegistry()
	store, err := configserver.NewEtcdStore(configserver.EtcdOptions{
		Endpoints: []string{etcd.ClientURL}, Prefix: fmt.Sprintf("/oxcross-test/%d/", time.Now().UnixNano()),
		HealthInterval: 100 * time.Millisecond, Logger: discard,
	}, storeMetrics)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	f := startFixture(t, filepath.Join(t.TempDir(), "config.yaml"), regConfig, nil, configserver.RegistryOptions{Store: store})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.s.Registry().Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testutil.Eventually(t, 10*time.Second, "ready", func() bool { return f.s.Ready() == nil })

	if r := f.put(t, "eu-1", `{"address":":9299","labels":{"region":"eu"}}`); r.Code != http.StatusOK {
		t.Fatalf("PUT eu-1: %d %s", r.Code, r.Body)
	}
	view := f.do(t, http.MethodGet, "/config?leaf_id=eu-1", "").Body
	etcd.Stop(t)
	testutil.Eventually(t, 10*time.Second, "not ready", func() bool { return f.s.Ready() != nil })
	if err := f.s.Ready(); !strings.Contains(err.Error(), "etcd") {
		t.Errorf("Ready while etcd is down: %v, want a reason naming etcd", err)
	}
	// The status page: etcd, its endpoint, down and why.
	st := f.s.Registry().StoreStatus()
	if st.Kind != "etcd" || !slices.Equal(st.Endpoints, []string{etcd.ClientURL}) || st.Down == "" || st.DownSince.IsZero() || st.Relists != 1 {
		t.Errorf("StoreStatus while etcd is down: %+v, want etcd at %s, down with a reason, listed once", st, etcd.ClientURL)
	}
	page := storePage(t, f.s)
	t.Logf("while etcd is down: %s", page)
	for _, w := range []string{`data-kind="etcd" data-up="false"`, "Registry: etcd " + etcd.ClientURL, `<span class="down">down</span>, went down `, html.EscapeString(st.Down)} {
		if !strings.Contains(page, w) {
			t.Errorf("the status page while etcd is down lacks %q:\n%s", w, page)
		}
	}
	r := f.put(t, "eu-2", `{"address":":9299"}`)
	wantCode(t, "PUT while etcd is down", r, http.StatusServiceUnavailable, "etcd")
	if r.Header.Get("Retry-After") == "" {
		t.Error("a 503 without Retry-After")
	}
	if n := testutil.MetricValue(t, f.reg, metricRegistrations, "result", "unavailable"); n != 1 {
		t.Errorf("registrations unavailable %v, want 1", n)
	}
	if r := f.del(t, "eu-1"); r.Code != http.StatusServiceUnavailable {
		t.Errorf("DELETE while etcd is down: %d %s, want 503", r.Code, r.Body)
	}
	if leaves := f.sdLeaves(t); leaves["eu-1"].Labels == nil {
		t.Errorf("/sd/leaves while etcd is down lists %v, want the last registry with eu-1", leaves)
	}
	if got := f.do(t, http.MethodGet, "/config?leaf_id=eu-1", "").Body; got != view {
		t.Error("eu-1's view changed while etcd is down")
	}
	etcd.Start(t)
	testutil.Eventually(t, 15*time.Second, "ready again", func() bool { return f.s.Ready() == nil })
	if r := f.put(t, "eu-2", `{"address":":9299"}`); r.Code != http.StatusOK {
		t.Errorf("PUT after etcd is back: %d %s", r.Code, r.Body)
	}
	// Listed anew after the outage.
	if st := f.s.Registry().StoreStatus(); st.Down != "" || !st.DownSince.IsZero() || st.Relists < 2 || st.LastRelist.IsZero() {
		t.Errorf("StoreStatus after etcd is back: %+v, want up, listed at least twice", st)
	}
	if page := storePage(t, f.s); !strings.Contains(page, `data-kind="etcd" data-up="true"`) || !strings.Contains(page, `<span class="up">up</span> · listed `) {
		t.Errorf("the status page after etcd is back does not show it up:\n%s", page)
	}
}

// storePage renders the status page of s as the configserver does, and
// returns its registry store line.
func storePage(t *testing.T, s *configserver.Server) string {
	t.Helper()
	var b strings.Builder
	l := s.Current()
	page := statuspage.Configserver{
		File: "config.yaml", ETag: l.ETag, Leaves: s.Leaves(), Origins: l.Config.Origins,
		Store: statuspage.RegistryStore(s.Registry().StoreStatus()), Now: time.Now(), Refresh: 15,
	}
	if err := statuspage.RenderConfigserver(&b, page); err != nil {
		t.Fatal(err)
	}
	_, line, ok := strings.Cut(b.String(), `<p id="registry-store"`)
	if !ok {
		t.Fatalf("the status page has no registry store line:\n%s", b.String())
	}
	line, _, _ = strings.Cut(line, "</p>")
	return `<p id="registry-store"` + line + "</p>"
}

// TestMemoryStoreStatus: without etcd the registry's store is the
// process's memory, always up, never listed; the page says so.
func TestMemoryStoreStatus(t *testing.T) {
	f := startFixture(t, filepath.Join(t.TempDir(), "config.yaml"), regConfig, nil, configserver.RegistryOptions{})
	if st := f.s.Registry().StoreStatus(); st.Kind != "memory" || st.Down != "" || len(st.Endpoints) != 0 || st.Relists != 0 {
		t.Errorf("StoreStatus in memory: %+v", st)
	}
	if page := storePage(t, f.s); !strings.Contains(page, `data-kind="memory" data-up="true">Registry: in memory (this configserver only)</p>`) {
		t.Errorf("the status page in memory: %s", page)
	}
}

// TestEtcdRegistryConcurrentReplicas: heartbeats of one leaf id racing
// through two replicas are each either stored or refused (never lost
// unseen), and both replicas end with the same entry, the last one etcd
// stored.
func TestEtcdRegistryConcurrentReplicas(t *testing.T) {
	etcd := testutil.StartEtcd(t)
	prefix := fmt.Sprintf("/oxcross-test/%d/", time.Now().UnixNano())
	r1, _ := etcdRegistry(t, etcd.ClientURL, prefix, configserver.RegistryOptions{})
	r2, _ := etcdRegistry(t, etcd.ClientURL, prefix, configserver.RegistryOptions{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored, refused := 0, 0
	for i := range 20 {
		r := r1
		if i%2 == 1 {
			r = r2
		}
		wg.Go(func() {
			_, _, err := r.Put(context.Background(), "same", discovery.Registration{Address: srcA.String() + ":9299", Version: fmt.Sprint(i), RefreshInterval: "1m"}, configserver.Caller{Addr: srcA}, nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if !strings.Contains(err.Error(), "try again") {
					t.Errorf("heartbeat %d: %v", i, err)
				}
				refused++
				return
			}
			stored++
		})
	}
	wg.Wait()
	version := func(r *configserver.Registry) string {
		leaves, _, _ := r.Live()
		if len(leaves) != 1 {
			return fmt.Sprint(len(leaves), " leaves")
		}
		return leaves[0].Version
	}
	testutil.EventuallyReason(t, 2*time.Second, "both replicas agree", func() string {
		if v1, v2 := version(r1), version(r2); v1 != v2 {
			return fmt.Sprintf("r1 has version %s, r2 %s", v1, v2)
		}
		return ""
	})
	t.Logf("20 racing heartbeats through two replicas: %d stored, %d refused to retry; both replicas list version %s", stored, refused, version(r1))
	if stored == 0 {
		t.Error("no heartbeat stored")
	}
}

// cutter forwards TCP connections to upstream until cut, which closes
// those open and refuses new ones until mend: etcd stays up while the
// configserver loses it.
type cutter struct {
	upstream string
	mu       sync.Mutex
	cut      bool
	open     map[net.Conn]net.Conn
}

func newCutter(t *testing.T, upstream string) (*cutter, string) {
	c := &cutter{upstream: upstream, open: map[net.Conn]net.Conn{}}
	addr := testutil.ServeTCP(t, func(conn net.Conn) {
		c.mu.Lock()
		if c.cut {
			c.mu.Unlock()
			return
		}
		up, err := net.Dial("tcp", c.upstream)
		if err != nil {
			c.mu.Unlock()
			return
		}
		c.open[conn] = up
		c.mu.Unlock()
		// Either direction ending (or the test's clean-up closing conn)
		// ends both.
		done := make(chan struct{})
		go func() { _, _ = io.Copy(up, conn); _ = up.Close(); close(done) }()
		_, _ = io.Copy(conn, up)
		_ = conn.Close()
		_ = up.Close()
		<-done
		c.mu.Lock()
		delete(c.open, conn)
		c.mu.Unlock()
	})
	return c, addr
}

func (c *cutter) setCut(cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = cut
	if cut {
		for conn, up := range c.open {
			_ = conn.Close()
			_ = up.Close()
		}
	}
}

// TestEtcdRegistryCompaction: a replica that loses etcd while others
// write and etcd compacts their history finds its watch compacted when it
// is back, lists the registry anew, and has exactly what etcd has.
func TestEtcdRegistryCompaction(t *testing.T) {
	etcd := testutil.StartEtcd(t)
	proxy, proxyAddr := newCutter(t, strings.TrimPrefix(etcd.ClientURL, "http://"))
	prefix := fmt.Sprintf("/oxcross-test/%d/", time.Now().UnixNano())
	// No health checks: the watch alone must notice.
	reg := prometheus.NewRegistry()
	store, err := configserver.NewEtcdStore(configserver.EtcdOptions{
		Endpoints: []string{"http://" + proxyAddr}, Prefix: prefix, HealthInterval: time.Hour, Logger: discard,
	}, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	r := configserver.NewRegistry(configserver.RegistryOptions{Store: store}, reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testutil.Eventually(t, 10*time.Second, "ready", func() bool { return store.Ready() == nil })
	other, _ := etcdRegistry(t, etcd.ClientURL, prefix, configserver.RegistryOptions{})

	if err := putAs(r, "a", srcA, "1m"); err != nil {
		t.Fatal(err)
	}
	if err := putAs(other, "b", srcB, "1m"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*time.Second, "r lists a and b", func() bool { return slices.Equal(sortedIDs(r), []string{"a", "b"}) })

	proxy.setCut(true)
	if err := putAs(other, "c", srcB, "1m"); err != nil {
		t.Fatal(err)
	}
	if err := other.Delete("b", configserver.Caller{Addr: srcB}); err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.ClientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(context.Background(), resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	if ids := sortedIDs(r); !slices.Equal(ids, []string{"a", "b"}) {
		t.Errorf("cut off, r lists %v, want its last [a b]", ids)
	}
	proxy.setCut(false)
	testutil.EventuallyReason(t, 20*time.Second, "r lists what etcd has", func() string {
		if ids := sortedIDs(r); !slices.Equal(ids, []string{"a", "c"}) {
			return fmt.Sprint(ids)
		}
		return ""
	})
	if n := testutil.MetricValue(t, reg, "oxcross_configserver_registry_store_relists_total"); n != 2 {
		t.Errorf("relists %v, want 2: at start, and after the compacted watch", n)
	}
	if n := testutil.MetricValue(t, reg, "oxcross_configserver_registry_store_errors_total", "op", "watch"); n != 1 {
		t.Errorf("watch errors %v, want 1", n)
	}
}
