package configserver_test

// The registry attacks of issue 13 (#1 static leaf takeover, #2 squatting,
// #4 DNS rebinding, #7 one source filling the registry, #11 trailing data),
// replayed over real sockets: requests from several loopback source
// addresses (127.0.0.0/8 is all loopback on Linux), the configserver's
// routes behind exporter-toolkit's web config (basic auth, client
// certificates) where identity matters.

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/crypto/bcrypt"

	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/testutil"
)

// attackConfig lists the static leaf edge-1 at 127.0.0.5:9299 in region
// eu, and origins for eu and us leaves.
const attackConfig = `origins:
  - name: everywhere
    url: http://127.0.0.1:9/
    mode: simple
  - name: eu-only
    url: http://127.0.0.1:10/
    mode: simple
    leaf_selector: {region: eu}
  - name: us-only
    url: http://127.0.0.1:11/
    mode: simple
    leaf_selector: {region: us}
leaves:
  - id: edge-1
    address: 127.0.0.5:9299
    labels: {region: eu}
`

// regServer is a configserver's routes served on 127.0.0.1 by
// exporter-toolkit's web.Serve, as the command serves them, with the
// registry in identity mode when the web config authenticates.
type regServer struct {
	base  string // http(s)://127.0.0.1:port
	s     *configserver.Server
	clock *fakeClock
	reg   *prometheus.Registry
	dir   string
}

type regServerOptions struct {
	// web is the web config's text; "" serves without one.
	web string
	// identities is the identities file's text; "" for none.
	identities string
	registry   configserver.RegistryOptions
}

func startRegServer(t *testing.T, cfg string, o regServerOptions) *regServer {
	t.Helper()
	dir := t.TempDir()
	rs := &regServer{dir: dir, reg: prometheus.NewRegistry()}
	if o.registry.Now == nil {
		rs.clock = newClock()
		o.registry.Now = rs.clock.Now
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	testutil.WriteFile(t, cfgPath, cfg)
	webPath := ""
	if o.web != "" {
		webPath = filepath.Join(dir, "web.yml")
		testutil.WriteFile(t, webPath, o.web)
	}
	opts := configserver.Options{Parser: parser, Registry: o.registry, Authentication: configserver.WebConfigAuthentication(webPath)}
	if o.identities != "" {
		opts.IdentitiesFile = filepath.Join(dir, "identities.yml")
		testutil.WriteFile(t, opts.IdentitiesFile, o.identities)
	}
	s, err := configserver.New(cfgPath, opts, rs.reg, discard)
	if err != nil {
		t.Fatal(err)
	}
	rs.s = s
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: configserver.NewMux(s), ReadHeaderTimeout: 5 * time.Second}
	noSocket := false
	flags := &web.FlagConfig{WebListenAddresses: &[]string{l.Addr().String()}, WebSystemdSocket: &noSocket, WebConfigFile: &webPath}
	done := make(chan error, 1)
	go func() { done <- web.Serve(l, srv, flags, discard) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("web.Serve: %v", err)
		}
	})
	rs.base = "http://" + l.Addr().String()
	if strings.Contains(o.web, "tls_server_config") {
		rs.base = "https://" + l.Addr().String()
	}
	return rs
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address src, presenting cert (if any) and trusting ca (if any).
func clientFrom(t *testing.T, src string, ca *testutil.CA, cert *testutil.Cert) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	if ca != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: ca.Pool}
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{cert.TLS}
		}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// as is the Authorization header of basic auth as user (password
// user+"-pw"); none when user is "".
func as(user string) []string {
	if user == "" {
		return nil
	}
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+user+"-pw"))}
}

// usersYAML is basic_auth_users for users, each with the password
// user+"-pw".
func usersYAML(t *testing.T, users ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("basic_auth_users:\n")
	for _, u := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  %s: %s\n", u, h)
	}
	return b.String()
}

func (rs *regServer) put(t *testing.T, c *http.Client, id, body string, header ...string) testutil.Response {
	t.Helper()
	return testutil.Do(t, c, http.MethodPut, rs.base+"/api/v1/leaves/"+id, body, append([]string{"Content-Type", "application/json"}, header...)...)
}

func (rs *regServer) del(t *testing.T, c *http.Client, id string, header ...string) testutil.Response {
	t.Helper()
	return testutil.Do(t, c, http.MethodDelete, rs.base+"/api/v1/leaves/"+id, "", header...)
}

// origins returns the origin names of leaf id's view of the config.
func (rs *regServer) origins(t *testing.T, c *http.Client, id string, header ...string) []string {
	t.Helper()
	r := testutil.Do(t, c, http.MethodGet, rs.base+"/config?leaf_id="+id, "", header...)
	if r.Code != http.StatusOK {
		t.Fatalf("GET /config?leaf_id=%s: %d %s", id, r.Code, r.Body)
	}
	var cfg struct {
		Oxcross struct {
			Origins []struct {
				Name string `json:"name"`
			} `json:"origins"`
		} `json:"oxcross"`
	}
	if err := json.Unmarshal([]byte(r.Body), &cfg); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range cfg.Oxcross.Origins {
		names = append(names, o.Name)
	}
	slices.Sort(names)
	return names
}

// sdLeaves returns /sd/leaves by leaf id: the target and the labels.
func (rs *regServer) sdLeaves(t *testing.T, c *http.Client, header ...string) map[string]sdGroup {
	t.Helper()
	r := testutil.Do(t, c, http.MethodGet, rs.base+"/sd/leaves", "", header...)
	if r.Code != http.StatusOK {
		t.Fatalf("GET /sd/leaves: %d %s", r.Code, r.Body)
	}
	var groups []sdGroup
	if err := json.Unmarshal([]byte(r.Body), &groups); err != nil {
		t.Fatal(err)
	}
	out := map[string]sdGroup{}
	for _, g := range groups {
		out[g.Labels["leaf_id"]] = g
	}
	return out
}

var euView = []string{"eu-only", "everywhere"}

// TestStaticLeafTakeover (#1): the config lists edge-1 at 127.0.0.5 in
// region eu. From 127.0.0.2, a PUT of edge-1 with edge-1's own address,
// a 24h refresh interval and region us is refused, whatever the body says;
// edge-1 keeps its eu view, and the real leaf's PUT and DELETE from
// 127.0.0.5 still work. Its body's labels cannot change its view either.
func TestStaticLeafTakeover(t *testing.T) {
	rs := startRegServer(t, attackConfig, regServerOptions{})
	attacker, real := clientFrom(t, "127.0.0.2", nil, nil), clientFrom(t, "127.0.0.5", nil, nil)
	takeover := `{"address":"127.0.0.5:9299","refresh_interval":"24h","labels":{"region":"us"}}`

	wantCode(t, "PUT edge-1 from 127.0.0.2", rs.put(t, attacker, "edge-1", takeover), http.StatusForbidden, "listed in the config at 127.0.0.5:9299")
	if got := rs.origins(t, attacker, "edge-1"); !slices.Equal(got, euView) {
		t.Errorf("after the takeover attempt, edge-1 is served %v, want %v", got, euView)
	}
	// The real leaf heartbeats and removes itself; its body's labels do
	// not change what it is served: its config entry's do.
	if r := rs.put(t, real, "edge-1", takeover); r.Code != http.StatusOK {
		t.Errorf("PUT edge-1 from 127.0.0.5: %d %s, want 200", r.Code, r.Body)
	}
	if got := rs.origins(t, real, "edge-1"); !slices.Equal(got, euView) {
		t.Errorf("edge-1 registered with region us is served %v, want its configured view %v", got, euView)
	}
	if g := rs.sdLeaves(t, real)["edge-1"]; g.Labels["region"] != "eu" || g.Labels["__meta_oxcross_leaf_source"] != "static" {
		t.Errorf("/sd/leaves edge-1: %+v, want the static entry with region eu", g)
	}
	wantCode(t, "PUT edge-1 from 127.0.0.2 while registered", rs.put(t, attacker, "edge-1", takeover), http.StatusForbidden, "only requests from that address")
	wantCode(t, "DELETE edge-1 from 127.0.0.2", rs.del(t, attacker, "edge-1"), http.StatusForbidden, "registered from 127.0.0.5")
	if r := rs.del(t, real, "edge-1"); r.Code != http.StatusNoContent {
		t.Errorf("DELETE edge-1 from 127.0.0.5: %d %s, want 204", r.Code, r.Body)
	}

	// Identity mode: the configured address is not enough, edge-1's
	// identity is, from anywhere (behind NAT).
	t.Run("identity mode", func(t *testing.T) {
		rs := startRegServer(t, attackConfig, regServerOptions{web: usersYAML(t, "edge-1", "mallory")})
		fromLeaf, fromNAT := clientFrom(t, "127.0.0.5", nil, nil), clientFrom(t, "127.0.0.9", nil, nil)
		wantCode(t, "PUT edge-1 as mallory from 127.0.0.5", rs.put(t, fromLeaf, "edge-1", takeover, as("mallory")...), http.StatusForbidden, `identity "mallory" may not hold leaf id "edge-1"`)
		if r := rs.put(t, fromNAT, "edge-1", takeover, as("edge-1")...); r.Code != http.StatusOK {
			t.Errorf("PUT edge-1 as edge-1 from 127.0.0.9: %d %s, want 200", r.Code, r.Body)
		}
		if got := rs.origins(t, fromNAT, "edge-1", as("edge-1")...); !slices.Equal(got, euView) {
			t.Errorf("edge-1 is served %v, want %v", got, euView)
		}
		wantCode(t, "DELETE edge-1 as mallory", rs.del(t, fromLeaf, "edge-1", as("mallory")...), http.StatusForbidden, "may not hold")
		if r := rs.del(t, fromLeaf, "edge-1", as("edge-1")...); r.Code != http.StatusNoContent {
			t.Errorf("DELETE edge-1 as edge-1: %d %s, want 204", r.Code, r.Body)
		}
	})
}

// TestSquatting (#2): an id registered first with refresh_interval
// 10000h is held at most 30 minutes after its last heartbeat, so the real
// leaf gets it then; in identity mode a squatter cannot take it at all.
func TestSquatting(t *testing.T) {
	rs := startRegServer(t, attackConfig, regServerOptions{})
	squatter, real := clientFrom(t, "127.0.0.2", nil, nil), clientFrom(t, "127.0.0.3", nil, nil)
	r := rs.put(t, squatter, "ams-1", `{"address":":9299","refresh_interval":"10000h","labels":{"region":"us"}}`)
	if r.Code != http.StatusOK || !strings.Contains(r.Body, `"refresh_interval":"10m0s"`) || !strings.Contains(r.Body, `"expires_in":"30m0s"`) {
		t.Fatalf("squatter's PUT: %d %s, want 200 capped at 10m0s, expiring in 30m0s", r.Code, r.Body)
	}
	leaf := `{"address":":9299","refresh_interval":"1m","labels":{"region":"eu"}}`
	wantCode(t, "the real leaf's PUT while squatted", rs.put(t, real, "ams-1", leaf), http.StatusForbidden, "registered from 127.0.0.2")
	rs.clock.Advance(30*time.Minute - time.Second)
	wantCode(t, "the real leaf's PUT at 29m59s", rs.put(t, real, "ams-1", leaf), http.StatusForbidden, "registered from 127.0.0.2")
	rs.clock.Advance(time.Second)
	if _, ok := rs.sdLeaves(t, real)["ams-1"]; ok {
		t.Errorf("the squatter is still in /sd/leaves 30 minutes after its heartbeat")
	}
	if r := rs.put(t, real, "ams-1", leaf); r.Code != http.StatusOK {
		t.Fatalf("the real leaf's PUT after 30 minutes: %d %s", r.Code, r.Body)
	}
	if g := rs.sdLeaves(t, real)["ams-1"]; len(g.Targets) != 1 || g.Targets[0] != "127.0.0.3:9299" {
		t.Errorf("/sd/leaves ams-1: %+v, want the real leaf's 127.0.0.3:9299", g)
	}
	if got := rs.origins(t, real, "ams-1"); !slices.Equal(got, euView) {
		t.Errorf("ams-1 is served %v, want %v", got, euView)
	}

	// Identity mode: the squatter may hold only its own name, right after
	// a restart too; the scrape user nothing at all.
	t.Run("identity mode", func(t *testing.T) {
		rs := startRegServer(t, attackConfig, regServerOptions{web: usersYAML(t, "ams-1", "mallory", "prometheus"), identities: "prometheus: []\n"})
		squatter, real := clientFrom(t, "127.0.0.2", nil, nil), clientFrom(t, "127.0.0.3", nil, nil)
		wantCode(t, "PUT ams-1 as mallory", rs.put(t, squatter, "ams-1", `{"address":":9299"}`, as("mallory")...), http.StatusForbidden, `identity "mallory" may not hold leaf id "ams-1"`)
		wantCode(t, "PUT prometheus as prometheus", rs.put(t, squatter, "prometheus", `{"address":":9299"}`, as("prometheus")...), http.StatusForbidden, "may not hold")
		if r := rs.put(t, squatter, "mallory", `{"address":":9299"}`, as("mallory")...); r.Code != http.StatusOK {
			t.Errorf("PUT mallory as mallory: %d %s, want 200", r.Code, r.Body)
		}
		if r := rs.put(t, real, "ams-1", leaf, as("ams-1")...); r.Code != http.StatusOK {
			t.Errorf("PUT ams-1 as ams-1: %d %s, want 200", r.Code, r.Body)
		}
	})
}

// TestOneSourceFillsRegistry (#7): one address registering 600 ids gets
// --registry.max-leaves-per-source of them; the other leaves still get in.
func TestOneSourceFillsRegistry(t *testing.T) {
	rs := startRegServer(t, attackConfig, regServerOptions{registry: configserver.RegistryOptions{MaxLeaves: 600, MaxLeavesPerSource: configserver.DefaultMaxLeavesPerSource}})
	attacker, real := clientFrom(t, "127.0.0.2", nil, nil), clientFrom(t, "127.0.0.3", nil, nil)
	ok, full := 0, 0
	for i := range 600 {
		r := rs.put(t, attacker, fmt.Sprintf("v%d", i), fmt.Sprintf(`{"address":":%d","refresh_interval":"72h"}`, 1024+i))
		switch {
		case r.Code == http.StatusOK:
			ok++
		case r.Code == http.StatusTooManyRequests && strings.Contains(r.Body, "--registry.max-leaves-per-source"):
			full++
		default:
			t.Fatalf("PUT v%d: %d %s", i, r.Code, r.Body)
		}
	}
	if ok != configserver.DefaultMaxLeavesPerSource || full != 600-ok {
		t.Errorf("one source: %d registered, %d refused, want %d and %d", ok, full, configserver.DefaultMaxLeavesPerSource, 600-configserver.DefaultMaxLeavesPerSource)
	}
	// Its own renewals go on; another address registers.
	if r := rs.put(t, attacker, "v0", `{"address":":1024"}`); r.Code != http.StatusOK {
		t.Errorf("renewal of v0 from the full source: %d %s", r.Code, r.Body)
	}
	for i := range 3 {
		if r := rs.put(t, real, fmt.Sprintf("real-%d", i), `{"address":":9299"}`); r.Code != http.StatusOK {
			t.Errorf("PUT real-%d from another source: %d %s, want 200", i, r.Code, r.Body)
		}
	}
	// Once its ids expire, the source has its slots back.
	rs.clock.Advance(30 * time.Minute)
	if r := rs.put(t, attacker, "v599", `{"address":":9999"}`); r.Code != http.StatusOK {
		t.Errorf("PUT from the source after its ids expired: %d %s", r.Code, r.Body)
	}
}

// TestDNSRebinding (#4): an advertised host name is re-resolved at every
// heartbeat and by the registry's recheck; once it resolves to anything
// but the leaf's own address, the leaf leaves /sd/leaves. One matching
// address among several is not enough.
func TestDNSRebinding(t *testing.T) {
	leafIP, victim := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.66")
	dns := testutil.NewDNSServer(t, map[string][]netip.Addr{
		"leaf.oxcross.test":  {leafIP},
		"multi.oxcross.test": {leafIP, victim},
	})
	rs := startRegServer(t, attackConfig, regServerOptions{registry: configserver.RegistryOptions{Resolver: dns.Resolver(), Now: time.Now, HostRecheckInterval: 20 * time.Millisecond}})
	leaf := clientFrom(t, "127.0.0.2", nil, nil)
	body := `{"address":"leaf.oxcross.test:9299","refresh_interval":"1m"}`

	wantCode(t, "PUT with a name resolving to the source and another address", rs.put(t, leaf, "multi", `{"address":"multi.oxcross.test:9299"}`), http.StatusForbidden, `"multi.oxcross.test" resolves to 127.0.0.66, which is not the request's source address 127.0.0.2`)
	if r := rs.put(t, leaf, "named", body); r.Code != http.StatusOK {
		t.Fatalf("PUT with the leaf's own name: %d %s", r.Code, r.Body)
	}
	if _, ok := rs.sdLeaves(t, leaf)["named"]; !ok {
		t.Fatal("named is not in /sd/leaves")
	}

	// The name is pointed at another host: the next heartbeat is refused
	// and ends the registration at once.
	dns.Set("leaf.oxcross.test", leafIP, victim)
	wantCode(t, "heartbeat after the name gained another address", rs.put(t, leaf, "named", body), http.StatusForbidden, "resolves to 127.0.0.66")
	if _, ok := rs.sdLeaves(t, leaf)["named"]; ok {
		t.Error("named is still in /sd/leaves after a refused heartbeat")
	}

	// Without heartbeats: the recheck drops it.
	dns.Set("leaf.oxcross.test", leafIP)
	if r := rs.put(t, leaf, "named", body); r.Code != http.StatusOK {
		t.Fatalf("PUT again: %d %s", r.Code, r.Body)
	}
	if dropped := rs.s.Registry().RecheckHosts(context.Background()); len(dropped) != 0 {
		t.Errorf("recheck of an unchanged name dropped %v", dropped)
	}
	dns.Set("leaf.oxcross.test", victim)
	if dropped := rs.s.Registry().RecheckHosts(context.Background()); !slices.Equal(dropped, []string{"named"}) {
		t.Errorf("recheck after the name moved dropped %v, want [named]", dropped)
	}
	if _, ok := rs.sdLeaves(t, leaf)["named"]; ok {
		t.Error("named is still in /sd/leaves after the recheck")
	}

	// The same with the registry's own loop, and a name that disappears.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rs.s.Registry().Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	dns.Set("leaf.oxcross.test", leafIP)
	if r := rs.put(t, leaf, "named", body); r.Code != http.StatusOK {
		t.Fatalf("PUT again: %d %s", r.Code, r.Body)
	}
	dns.Delete("leaf.oxcross.test")
	testutil.Eventually(t, 10*time.Second, "named dropped from /sd/leaves by the recheck loop", func() bool {
		_, ok := rs.sdLeaves(t, leaf)["named"]
		return !ok
	})
}

// TestDNSFailureKeepsLeaf: a resolver that fails for now (not a name
// that does not exist) refuses the heartbeat with 503 but neither the
// heartbeat nor the recheck drops the leaf.
func TestDNSFailureKeepsLeaf(t *testing.T) {
	leafIP := netip.MustParseAddr("127.0.0.2")
	dns := testutil.NewDNSServer(t, map[string][]netip.Addr{"leaf.oxcross.test": {leafIP}})
	var failing atomic.Bool
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		if failing.Load() {
			return nil, errors.New("resolver down")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, dns.Addr())
	}}
	rs := startRegServer(t, attackConfig, regServerOptions{registry: configserver.RegistryOptions{Resolver: res, Now: time.Now}})
	leaf := clientFrom(t, "127.0.0.2", nil, nil)
	body := `{"address":"leaf.oxcross.test:9299"}`
	if r := rs.put(t, leaf, "named", body); r.Code != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.Code, r.Body)
	}
	failing.Store(true)
	wantCode(t, "heartbeat while the resolver fails", rs.put(t, leaf, "named", body), http.StatusServiceUnavailable, `cannot resolve the advertised host "leaf.oxcross.test" now`)
	if dropped := rs.s.Registry().RecheckHosts(context.Background()); len(dropped) != 0 {
		t.Errorf("recheck while the resolver fails dropped %v", dropped)
	}
	if _, ok := rs.sdLeaves(t, leaf)["named"]; !ok {
		t.Error("named left /sd/leaves while the resolver failed")
	}
}

// TestRegistrationTrailingData (#11): a registration body with anything
// but white space after its JSON object is refused.
func TestRegistrationTrailingData(t *testing.T) {
	rs := startRegServer(t, attackConfig, regServerOptions{})
	c := clientFrom(t, "127.0.0.2", nil, nil)
	for _, body := range []string{
		`{"address":":9299"} {"address":":1"}`,
		`{"address":":9299"}{"labels":{"region":"us"}}`,
		`{"address":":9299"}x`,
		`{"address":":9299"}]`,
		`{"address":":9299"} null`,
	} {
		wantCode(t, "PUT "+body, rs.put(t, c, "trail", body), http.StatusBadRequest, "trailing data after the JSON object")
	}
	if _, ok := liveIDs(rs.s.Registry())["trail"]; ok {
		t.Error("a body with trailing data registered")
	}
	if r := rs.put(t, c, "trail", "{\"address\":\":9299\"}\r\n\t \n"); r.Code != http.StatusOK {
		t.Errorf("PUT with trailing white space: %d %s, want 200", r.Code, r.Body)
	}
}

// TestIdentityMode: behind exporter-toolkit's web config, an identity (a
// basic-auth user, a verified client certificate's common name or DNS
// name) may hold the id of its name, or what --registry.identities grants
// it; anything else gets 403 with the reason. A name the web config did
// not check is no identity.
func TestIdentityMode(t *testing.T) {
	t.Run("basic auth", func(t *testing.T) {
		rs := startRegServer(t, attackConfig, regServerOptions{
			web:        usersYAML(t, "leaf-1", "fleet", "fleet-8", "prometheus"),
			identities: "fleet: [\"fleet-*\", \"edge-?\"]\nprometheus: []\n",
		})
		a, b := clientFrom(t, "127.0.0.2", nil, nil), clientFrom(t, "127.0.0.3", nil, nil)
		for _, c := range []struct {
			user, id string
			code     int
			reason   string
		}{
			{"leaf-1", "leaf-1", 200, ""},
			{"leaf-1", "leaf-2", 403, `identity "leaf-1" may not hold leaf id "leaf-2"`},
			{"fleet", "fleet-7", 200, ""},
			{"fleet", "fleet", 403, "may not hold"},
			{"fleet", "leaf-1", 403, "may not hold"},
			{"prometheus", "prometheus", 403, "may not hold"},
			{"prometheus", "leaf-9", 403, "may not hold"},
		} {
			r := rs.put(t, a, c.id, `{"address":":9299"}`, as(c.user)...)
			wantCode(t, "PUT "+c.id+" as "+c.user, r, c.code, c.reason)
		}
		// Without credentials the web config answers 401 before the
		// registry sees anything.
		if r := rs.put(t, a, "leaf-1", `{"address":":9299"}`); r.Code != http.StatusUnauthorized {
			t.Errorf("PUT without credentials: %d %s, want 401", r.Code, r.Body)
		}
		// The owner renews from another address (the leaf moved) and
		// removes; another allowed identity may not while it is live.
		if r := rs.put(t, b, "leaf-1", `{"address":":9299"}`, as("leaf-1")...); r.Code != http.StatusOK {
			t.Errorf("renewal of leaf-1 as leaf-1 from 127.0.0.3: %d %s", r.Code, r.Body)
		}
		if g := rs.sdLeaves(t, b, as("prometheus")...)["leaf-1"]; len(g.Targets) != 1 || g.Targets[0] != "127.0.0.3:9299" {
			t.Errorf("/sd/leaves leaf-1 after it moved: %+v", g)
		}
		for _, id := range []string{"fleet-8", "edge-2"} {
			if r := rs.put(t, b, id, `{"address":":9299"}`, as("fleet")...); r.Code != http.StatusOK {
				t.Errorf("PUT %s as fleet: %d %s", id, r.Code, r.Body)
			}
		}
		wantCode(t, "DELETE leaf-1 as fleet", rs.del(t, b, "leaf-1", as("fleet")...), http.StatusForbidden, "may not hold")
		// fleet-8 is also allowed its own name, but fleet holds it now.
		wantCode(t, "PUT fleet-8 as fleet-8", rs.put(t, b, "fleet-8", `{"address":":9299"}`, as("fleet-8")...), http.StatusForbidden, `leaf id "fleet-8" is registered by identity "fleet" until it expires`)
		wantCode(t, "DELETE fleet-8 as fleet-8", rs.del(t, b, "fleet-8", as("fleet-8")...), http.StatusForbidden, `leaf "fleet-8" was registered by identity "fleet", not "fleet-8"`)
		if r := rs.del(t, a, "leaf-1", as("leaf-1")...); r.Code != http.StatusNoContent {
			t.Errorf("DELETE leaf-1 as leaf-1: %d %s", r.Code, r.Body)
		}
		// Open mode's per-source bound does not apply: identities bound
		// what each may hold.
		for i := range configserver.DefaultMaxLeavesPerSource + 4 {
			if r := rs.put(t, a, fmt.Sprintf("fleet-%d", 100+i), fmt.Sprintf(`{"address":":%d"}`, 2000+i), as("fleet")...); r.Code != http.StatusOK {
				t.Fatalf("PUT fleet-%d as fleet: %d %s", 100+i, r.Code, r.Body)
			}
		}

		// The identities file is reread at /-/reload: fleet loses edge-?,
		// prometheus may now hold probe-*.
		testutil.WriteFile(t, filepath.Join(rs.dir, "identities.yml"), "fleet: [\"fleet-*\"]\nprometheus: [\"probe-*\"]\n")
		if r := testutil.Do(t, a, http.MethodPost, rs.base+"/-/reload", "", as("leaf-1")...); r.Code != http.StatusOK {
			t.Fatalf("POST /-/reload: %d %s", r.Code, r.Body)
		}
		if r := rs.put(t, a, "probe-1", `{"address":":9299"}`, as("prometheus")...); r.Code != http.StatusOK {
			t.Errorf("PUT probe-1 as prometheus after the reload: %d %s", r.Code, r.Body)
		}
		wantCode(t, "PUT edge-3 as fleet after the reload", rs.put(t, a, "edge-3", `{"address":":9299"}`, as("fleet")...), http.StatusForbidden, "may not hold")
		// A broken identities file is refused, the previous one kept.
		testutil.WriteFile(t, filepath.Join(rs.dir, "identities.yml"), "fleet: [\"[\"]\n")
		if r := testutil.Do(t, a, http.MethodPost, rs.base+"/-/reload", "", as("leaf-1")...); r.Code != http.StatusInternalServerError || !strings.Contains(r.Body, `identity "fleet": "[" is not a leaf id pattern`) {
			t.Errorf("POST /-/reload with a broken identities file: %d %s, want 500 naming the pattern", r.Code, r.Body)
		}
		if r := rs.put(t, a, "probe-2", `{"address":":9299"}`, as("prometheus")...); r.Code != http.StatusOK {
			t.Errorf("PUT probe-2 as prometheus with the previous identities kept: %d %s", r.Code, r.Body)
		}
	})

	t.Run("client certificates", func(t *testing.T) {
		ca := testutil.NewCA(t, "Oxcross test CA")
		server := ca.Server(t)
		rs := startRegServer(t, attackConfig, regServerOptions{web: fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: %s\n", server.CertFile, server.KeyFile, ca.CertFile)})
		leafCert := ca.Issue(t, testutil.CertOptions{CommonName: "cert-leaf", Hosts: []string{"alias.leaf"}})
		withCert := clientFrom(t, "127.0.0.2", ca, leafCert)
		noCert := clientFrom(t, "127.0.0.2", ca, nil)
		other := testutil.NewCA(t, "Someone else's CA").Client(t, "other-leaf")
		for _, id := range []string{"cert-leaf", "alias.leaf"} {
			if r := rs.put(t, withCert, id, `{"address":":9299"}`); r.Code != http.StatusOK {
				t.Errorf("PUT %s with a certificate naming it: %d %s", id, r.Code, r.Body)
			}
		}
		wantCode(t, "PUT another id with the certificate", rs.put(t, withCert, "leaf-3", `{"address":":9299"}`), http.StatusForbidden, `identities "cert-leaf", "alias.leaf" may not hold leaf id "leaf-3"`)
		// Without a certificate there is no identity, and a basic-auth
		// header nobody checks is none either.
		wantCode(t, "PUT without a certificate", rs.put(t, noCert, "leaf-3", `{"address":":9299"}`), http.StatusForbidden, "proved no identity")
		wantCode(t, "PUT with an unchecked basic-auth user", rs.put(t, noCert, "leaf-3", `{"address":":9299"}`, as("leaf-3")...), http.StatusForbidden, "proved no identity")
		wantCode(t, "DELETE without a certificate", rs.del(t, noCert, "cert-leaf"), http.StatusForbidden, "proved no identity")
		// A certificate of another CA is no identity: Go's client does not
		// send it to a server that asks for this CA's (and the server
		// would refuse the handshake).
		if r, err := testutil.TryDo(clientFrom(t, "127.0.0.2", ca, other), http.MethodPut, rs.base+"/api/v1/leaves/other-leaf", `{"address":":9299"}`); err == nil && (r.Code != http.StatusForbidden || !strings.Contains(r.Body, "proved no identity")) {
			t.Errorf("PUT with another CA's certificate: %d %s, want the handshake refused or 403", r.Code, r.Body)
		}
		if r := rs.del(t, withCert, "cert-leaf"); r.Code != http.StatusNoContent {
			t.Errorf("DELETE cert-leaf with its certificate: %d %s", r.Code, r.Body)
		}
	})
}

// TestIdentityModeLeaf: a leaf's own registrar, with the HTTP client its
// --config.http-client-file makes (CA, client certificate, basic auth),
// against the configserver behind a web config that wants both: it
// registers its id, is listed, fetches its view and deregisters; with
// another id it gets 403 and the reason.
func TestIdentityModeLeaf(t *testing.T) {
	ca := testutil.NewCA(t, "Oxcross test CA")
	server := ca.Server(t)
	leafCert := ca.Client(t, "oxcross-leaf")
	web := fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: %s\n", server.CertFile, server.KeyFile, ca.CertFile) +
		usersYAML(t, "edge-1", "ams-1", "prometheus")
	rs := startRegServer(t, attackConfig, regServerOptions{web: web, identities: "prometheus: []\n", registry: configserver.RegistryOptions{Now: time.Now}})

	clientFile := func(user string) *http.Client {
		dir := t.TempDir()
		pw := filepath.Join(dir, "password")
		testutil.WriteFile(t, pw, user+"-pw\n")
		file := filepath.Join(dir, "http-client.yml")
		testutil.WriteFile(t, file, fmt.Sprintf("tls_config:\n  ca_file: %s\n  cert_file: %s\n  key_file: %s\nbasic_auth:\n  username: %s\n  password_file: %s\n", ca.CertFile, leafCert.CertFile, leafCert.KeyFile, user, pw))
		cfg, _, err := promconfig.LoadHTTPConfigFile(file)
		if err != nil {
			t.Fatal(err)
		}
		c, err := promconfig.NewClientFromConfig(*cfg, "oxcross-leaf")
		if err != nil {
			t.Fatal(err)
		}
		c.Timeout = 10 * time.Second
		return c
	}
	ctx := context.Background()
	leafClient := clientFile("ams-1")
	reg := discovery.Registration{Address: ":9299", Labels: map[string]string{"region": "eu"}, RefreshInterval: "1m"}
	registrar, err := discovery.NewRegistrar(rs.base, leafClient, "oxcross-leaf/test", "ams-1", reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := registrar.Heartbeat(ctx); err != nil {
		t.Fatalf("ams-1's heartbeat as ams-1: %v", err)
	}
	prom := clientFile("prometheus")
	if g := rs.sdLeaves(t, prom)["ams-1"]; len(g.Targets) != 1 || g.Targets[0] != "127.0.0.1:9299" || g.Labels["region"] != "eu" {
		t.Errorf("/sd/leaves ams-1: %+v", g)
	}
	remote, err := discovery.NewRemote(rs.base, "ams-1", leafClient, "oxcross-leaf/test", discoveryParser)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := remote.Fetch(ctx); err != nil || len(l.Config.Origins) != 2 {
		t.Errorf("ams-1's view: %v, want 2 origins", err)
	}
	// The same credentials for another id, and the scrape user's.
	for _, c := range []struct {
		id     string
		client *http.Client
		want   string
	}{
		{"ams-2", leafClient, `403 Forbidden: identities "ams-1", "oxcross-leaf" may not hold leaf id "ams-2"`},
		{"edge-1", leafClient, `may not hold leaf id "edge-1"`},
		{"prometheus", prom, `may not hold leaf id "prometheus"`},
	} {
		r, err := discovery.NewRegistrar(rs.base, c.client, "oxcross-leaf/test", c.id, discovery.Registration{Address: ":9299"})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Heartbeat(ctx); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("heartbeat of %s: %v, want %q", c.id, err, c.want)
		}
	}
	if err := registrar.Deregister(ctx); err != nil {
		t.Errorf("Deregister: %v", err)
	}
	if _, ok := rs.sdLeaves(t, prom)["ams-1"]; ok {
		t.Error("ams-1 still in /sd/leaves after Deregister")
	}
}
