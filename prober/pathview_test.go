package prober

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
)

// TestPathsAPI: the scheduler's traces of path origins are served at
// /api/v1/paths, hop by hop with the reverse name, loss and RTTs; one
// origin with ?origin_id=, 404 for one that is not a path origin; reverse
// names are cached.
func TestPathsAPI(t *testing.T) {
	skipUnlessLinux(t)
	// 127.0.0.2, which /etc/hosts does not name, unlike 127.0.0.1.
	ln, err := net.Listen("tcp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	testutil.ServeConns(t, ln, func(c net.Conn) { _ = c.Close() })
	dns := testutil.NewDNSServer(t, nil)
	dns.SetPTR(netip.MustParseAddr("127.0.0.2"), "loopback.test")
	cfg, err := DefaultKinds(discard).Parser(config.Limits{}).Parse(fmt.Appendf(nil, `
modules:
  path_tcp: {kind: path, path: {method: tcp}}
  path_udp: {kind: path}
origins:
  - {name: web-udp, address: '%[1]s', module: path_udp, interval: 1s}
  - {name: web-tcp, address: '%[1]s', module: path_tcp, interval: 1s}
  - {name: plain, address: '%[1]s', module: tcp, interval: 1s}
`, ln.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	h := NewHistory()
	s := NewScheduler(SchedulerOptions{Prober: newTestProber(), Metrics: NewMetrics(prometheus.NewRegistry()), LeafID: testLeafID, History: h, Logger: discard})
	t.Cleanup(s.Stop)
	s.Apply(cfg)
	srv := httptest.NewServer(NewPathsHandler(h, func() *config.Config { return cfg }, NewReverseNames(dns.Resolver())))
	t.Cleanup(srv.Close)
	get := func(query string) (int, []PathView) {
		t.Helper()
		resp := testutil.Do(t, srv.Client(), http.MethodGet, srv.URL+"/api/v1/paths"+query, "")
		var body struct{ Paths []PathView }
		if resp.Code == http.StatusOK {
			if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
				t.Fatalf("GET %s: %v: %s", query, err, resp.Body)
			}
		}
		return resp.Code, body.Paths
	}
	testutil.EventuallyReason(t, 10*time.Second, "both path origins traced", func() string {
		_, paths := get("")
		if len(paths) != 2 {
			return fmt.Sprintf("%d paths", len(paths))
		}
		for _, p := range paths {
			if !p.Probed {
				return p.OriginID + " not probed"
			}
		}
		return ""
	})
	_, paths := get("")
	for i, want := range []string{"web-tcp", "web-udp"} {
		p := paths[i]
		if p.OriginID != want || !p.Reached || len(p.Hops) != 1 || p.Destination != "127.0.0.2" {
			t.Fatalf("path %d: %+v, want %s reached at hop 1", i, p, want)
		}
		hop := p.Hops[0]
		if hop.Address != "127.0.0.2" || hop.Name != "loopback.test" || hop.Sent != 3 || hop.Received != 3 || hop.Loss != 0 ||
			hop.RTTMinSeconds <= 0 || hop.RTTMedianSeconds < hop.RTTMinSeconds || hop.Final != "reached" {
			t.Errorf("%s: hop %+v", want, hop)
		}
	}
	if paths[1].MTU != 9000 || paths[0].MTU != 0 {
		t.Errorf("MTUs: tcp %d, udp %d; want 0 (not measured) and 9000", paths[0].MTU, paths[1].MTU)
	}
	queries := dns.Queries()
	if code, one := get("?origin_id=web-udp"); code != http.StatusOK || len(one) != 1 || one[0].OriginID != "web-udp" || one[0].Hops[0].Name != "loopback.test" {
		t.Errorf("?origin_id=web-udp: %d %+v", code, one)
	}
	if dns.Queries() != queries {
		t.Errorf("the reverse name was asked again (%d queries, then %d): not cached", queries, dns.Queries())
	}
	for _, id := range []string{"plain", "nope"} {
		if code, _ := get("?origin_id=" + id); code != http.StatusNotFound {
			t.Errorf("?origin_id=%s: status %d, want 404", id, code)
		}
	}
}

// TestReverseNamesTimeout: a resolver that does not answer within
// ReverseTimeout gives no name, and the lack of one is cached.
func TestReverseNamesTimeout(t *testing.T) {
	t.Parallel()
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = silent.Close() })
	dials := 0
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		dials++
		var d net.Dialer
		return d.DialContext(ctx, "udp4", silent.LocalAddr().String())
	}}
	rn := NewReverseNames(r)
	a := netip.MustParseAddr("192.0.2.1")
	start := time.Now()
	names := rn.names(context.Background(), []netip.Addr{a, a})
	took := time.Since(start)
	if names[a] != "" || len(names) != 1 {
		t.Errorf("names %v from a silent resolver", names)
	}
	if took < ReverseTimeout {
		t.Errorf("gave up after %s, before ReverseTimeout %s", took, ReverseTimeout)
	}
	before := dials
	rn.names(context.Background(), []netip.Addr{a})
	if dials != before {
		t.Errorf("asked again (%d dials, then %d): the lack of a name is not cached", before, dials)
	}
}
