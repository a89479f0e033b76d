package configserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/testutil"
)

const metricRegistrations = "oxcross_configserver_registrations_total"

// Addresses from the documentation ranges (RFC 5737): registrations name
// them, nothing ever connects to them.
var (
	srcA    = netip.MustParseAddr("198.51.100.7")
	srcB    = netip.MustParseAddr("198.51.100.8")
	foreign = netip.MustParseAddr("203.0.113.5")
	proxied = netip.MustParsePrefix("192.0.2.0/24")
)

// regConfig has origins with and without a leaf selector and one static
// leaf.
const regConfig = `interval: 30
origins:
  - name: everywhere
    url: http://127.0.0.1:9/
    mode: simple
    labels: {tier: edge}
  - name: eu-only
    url: http://127.0.0.1:10/
    leaf_selector: {region: eu}
  - name: tcp-origin
    address: 127.0.0.1:11
    mode: tcp
leaves:
  - id: static-1
    address: 127.0.0.1:9999
    labels: {region: eu, rack: r1}
`

// put sends a registration of leaf id, PUT /api/v1/leaves/{id}.
func (f *fixture) put(t testing.TB, id, body string) testutil.Response {
	t.Helper()
	return f.do(t, http.MethodPut, "/api/v1/leaves/"+id, body, "Content-Type", "application/json")
}

// del deregisters leaf id, DELETE /api/v1/leaves/{id}.
func (f *fixture) del(t testing.TB, id string) testutil.Response {
	t.Helper()
	return f.do(t, http.MethodDelete, "/api/v1/leaves/"+id, "")
}

func liveIDs(r *configserver.Registry) map[string]discovery.Leaf {
	leaves, _, _ := r.Live()
	out := map[string]discovery.Leaf{}
	for _, l := range leaves {
		out[l.ID] = l
	}
	return out
}

func wantCode(t testing.TB, what string, r testutil.Response, code int, reason string) {
	t.Helper()
	if r.Code != code || !strings.Contains(r.Body, reason) {
		t.Errorf("%s: %d %q, want %d with %q", what, r.Code, r.Body, code, reason)
	}
}

func TestRegisterOK(t *testing.T) {
	f := newRegFixture(t, regConfig, configserver.RegistryOptions{})
	r := f.put(t, "ams-1", `{"address": ":9299", "labels": {"region": "eu"}, "version": "1.2.3", "refresh_interval": "10s"}`)
	if r.Code != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.Code, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("PUT Content-Type %q", ct)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(r.Body), &got); err != nil {
		t.Fatalf("PUT answer %q: %v", r.Body, err)
	}
	// ":port" is filled in with the address the request came from.
	want := map[string]string{"id": "ams-1", "address": "127.0.0.1:9299", "expires_in": "30s"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("PUT answer %s = %q, want %q (answer %s)", k, got[k], v, r.Body)
		}
	}
	leaf, ok := liveIDs(f.s.Registry())["ams-1"]
	if !ok || leaf.Address != "127.0.0.1:9299" || leaf.Labels["region"] != "eu" || leaf.Version != "1.2.3" || !leaf.LastSeen.Equal(f.clock.Now()) {
		t.Errorf("Live: %+v (present %v)", leaf, ok)
	}
	if n := f.s.Registry().Count(); n != 1 {
		t.Errorf("Count = %d, want 1", n)
	}
	if v := testutil.MetricValue(t, f.reg, metricRegistrations, "result", "ok"); v != 1 {
		t.Errorf("registrations ok = %v, want 1", v)
	}
	if v := testutil.MetricValue(t, f.reg, "oxcross_configserver_leaves", "kind", "dynamic"); v != 1 {
		t.Errorf("leaves{kind=dynamic} = %v, want 1", v)
	}
	if v := testutil.MetricValue(t, f.reg, "oxcross_configserver_leaves", "kind", "static"); v != 1 {
		t.Errorf("leaves{kind=static} = %v, want 1", v)
	}
	// An explicit address that is the source's own is fine too, and
	// without refresh_interval the default applies.
	r = f.put(t, "ams-2", `{"address": "127.0.0.1:9300"}`)
	if r.Code != http.StatusOK || !strings.Contains(r.Body, `"expires_in":"3m0s"`) {
		t.Errorf("PUT with the source's own address: %d %s, want 200 expiring in 3m0s", r.Code, r.Body)
	}
	// Refresh intervals outside 1s-10m are clamped, not refused: the
	// leaf's --config.refresh-interval takes any duration. The answer
	// says what was taken.
	for interval, want := range map[string][2]string{"300ms": {"1s", "3s"}, "10m": {"10m0s", "30m0s"}, "48h": {"10m0s", "30m0s"}} {
		r = f.put(t, "ams-3", `{"address": ":9299", "refresh_interval": "`+interval+`"}`)
		if r.Code != http.StatusOK || !strings.Contains(r.Body, `"refresh_interval":"`+want[0]+`"`) || !strings.Contains(r.Body, `"expires_in":"`+want[1]+`"`) {
			t.Errorf("PUT with refresh_interval %s: %d %s, want 200 taking %s, expiring in %s", interval, r.Code, r.Body, want[0], want[1])
		}
	}
}

func TestRegisterForeignAddress(t *testing.T) {
	f := newRegFixture(t, regConfig, configserver.RegistryOptions{})
	r := f.put(t, "evil", `{"address": "192.0.2.1:9299"}`)
	wantCode(t, "PUT for a foreign address", r, http.StatusForbidden, "not the request's source address 127.0.0.1")
	if len(liveIDs(f.s.Registry())) != 0 {
		t.Errorf("a refused registration is live")
	}
	if _, ok := f.sdLeaves(t)["evil"]; ok {
		t.Errorf("a refused registration is in /sd/leaves")
	}
	if v := testutil.MetricValue(t, f.reg, metricRegistrations, "result", "forbidden"); v != 1 {
		t.Errorf("registrations forbidden = %v, want 1", v)
	}
}

// TestPutSourceRules calls Registry.Put with source addresses a test
// server cannot receive requests from.
func TestPutSourceRules(t *testing.T) {
	clock := newClock()
	r := configserver.NewRegistry(configserver.RegistryOptions{Now: clock.Now, AllowedCIDRs: []netip.Prefix{proxied}}, prometheus.NewRegistry())
	ctx := context.Background()
	put := func(id, addr string, src netip.Addr) error {
		_, _, err := r.Put(ctx, id, discovery.Registration{Address: addr, RefreshInterval: "10s"}, configserver.Caller{Addr: src}, nil)
		return err
	}
	if err := put("own", "198.51.100.7:9299", srcA); err != nil {
		t.Errorf("own address: %v", err)
	}
	if err := put("port-only", ":9299", srcA); err != nil {
		t.Errorf(":port: %v", err)
	}
	if got := liveIDs(r)["port-only"].Address; got != "198.51.100.7:9299" {
		t.Errorf(":port registered as %q", got)
	}
	// An IPv4-mapped source is the IPv4 address.
	if err := put("mapped", "198.51.100.7:9300", netip.MustParseAddr("::ffff:198.51.100.7")); err != nil {
		t.Errorf("IPv4-mapped source: %v", err)
	}
	err := put("foreign", "203.0.113.5:9299", srcA)
	if err == nil || !strings.Contains(err.Error(), "203.0.113.5:9299 is not the request's source address 198.51.100.7") {
		t.Errorf("foreign address: %v, want a refusal naming both", err)
	}
	// Behind a reverse proxy: any source may advertise an address in an
	// allowed network.
	if err := put("behind-proxy", "192.0.2.44:9299", srcA); err != nil {
		t.Errorf("address in --registry.allow-address-cidr: %v", err)
	}
	// IPv6.
	v6 := netip.MustParseAddr("2001:db8::7")
	if err := put("v6", ":9299", v6); err != nil {
		t.Errorf("IPv6 :port: %v", err)
	}
	if got := liveIDs(r)["v6"].Address; got != "[2001:db8::7]:9299" {
		t.Errorf("IPv6 :port registered as %q", got)
	}
	if err := put("v6-foreign", "[2001:db8::8]:9299", v6); err == nil {
		t.Errorf("foreign IPv6 address accepted")
	}

	// The same id from another source while it is live is refused...
	err = put("own", "198.51.100.8:9299", srcB)
	if err == nil || !strings.Contains(err.Error(), "is registered from 198.51.100.7") {
		t.Errorf("same id from another source while live: %v", err)
	}
	if got := liveIDs(r)["own"].Address; got != "198.51.100.7:9299" {
		t.Errorf("a refused takeover changed the address to %s", got)
	}
	// ...but not from an allowed network (the proxy's own case)...
	if err := put("own", "192.0.2.45:9299", netip.MustParseAddr("192.0.2.1")); err != nil {
		t.Errorf("same id from an allowed network: %v", err)
	}
	// ...and once it has expired, a new source may take the id.
	if err := put("taken", "198.51.100.7:9299", srcA); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Second)
	if err := put("taken", "198.51.100.8:9299", srcB); err != nil {
		t.Errorf("expired id from a new source: %v", err)
	}

	// Delete from another source is refused, from the same one removes.
	if err := put("gone", "198.51.100.7:9299", srcA); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete("gone", configserver.Caller{Addr: srcB}); err == nil || !strings.Contains(err.Error(), "registered from 198.51.100.7, not 198.51.100.8") {
		t.Errorf("DELETE from another source: %v", err)
	}
	if _, ok := liveIDs(r)["gone"]; !ok {
		t.Errorf("a refused DELETE removed the leaf")
	}
	if err := r.Delete("gone", configserver.Caller{Addr: srcA}); err != nil {
		t.Errorf("DELETE from the same source: %v", err)
	}
	if _, ok := liveIDs(r)["gone"]; ok {
		t.Errorf("deleted leaf still live")
	}
	if err := r.Delete("gone", configserver.Caller{Addr: srcA}); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("DELETE of an unknown leaf: %v", err)
	}
}

// TestPutHostName: an advertised host name must resolve to the source.
func TestPutHostName(t *testing.T) {
	res := testutil.NewDNSServer(t, map[string][]netip.Addr{
		"leaf.oxcross.test":  {srcA},
		"other.oxcross.test": {foreign},
		"proxy.oxcross.test": {netip.MustParseAddr("192.0.2.9")},
	}).Resolver()
	r := configserver.NewRegistry(configserver.RegistryOptions{Resolver: res, AllowedCIDRs: []netip.Prefix{proxied}}, prometheus.NewRegistry())
	put := func(addr string) error {
		_, _, err := r.Put(context.Background(), "named", discovery.Registration{Address: addr}, configserver.Caller{Addr: srcA}, nil)
		return err
	}
	if err := put("leaf.oxcross.test:9299"); err != nil {
		t.Errorf("a name of the source: %v", err)
	}
	if got := liveIDs(r)["named"].Address; got != "leaf.oxcross.test:9299" {
		t.Errorf("registered as %q, want the name kept", got)
	}
	if err := put("other.oxcross.test:9299"); err == nil || !strings.Contains(err.Error(), "not the request's source") {
		t.Errorf("a name of another address: %v", err)
	}
	if err := put("nowhere.oxcross.test:9299"); err == nil || !strings.Contains(err.Error(), "does not resolve") {
		t.Errorf("a name that does not resolve: %v", err)
	}
	if err := put("proxy.oxcross.test:9299"); err != nil {
		t.Errorf("a name in an allowed network: %v", err)
	}
}

// TestRegisterLocalhost: over HTTP, "localhost" resolves to the source
// 127.0.0.1 with the system resolver.
func TestRegisterLocalhost(t *testing.T) {
	ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", "localhost")
	found := false
	for _, ip := range ips {
		found = found || ip.Unmap() == netip.MustParseAddr("127.0.0.1")
	}
	if err != nil || !found {
		t.Skipf("localhost does not resolve to 127.0.0.1 here (%v, %v)", ips, err)
	}
	f := newRegFixture(t, regConfig, configserver.RegistryOptions{})
	if r := f.put(t, "local", `{"address": "localhost:9299"}`); r.Code != http.StatusOK {
		t.Errorf("PUT localhost:9299 from 127.0.0.1: %d %s", r.Code, r.Body)
	}
	if g := f.sdLeaves(t)["local"]; len(g.Targets) != 1 || g.Targets[0] != "localhost:9299" {
		t.Errorf("/sd/leaves target %v, want localhost:9299", g.Targets)
	}
}

func TestRegisterInvalid(t *testing.T) {
	f := newRegFixture(t, regConfig, configserver.RegistryOptions{})
	many := map[string]string{}
	for i := range config.MaxLabels + 1 {
		many[fmt.Sprintf("l%d", i)] = "v"
	}
	manyJSON, _ := json.Marshal(map[string]any{"address": ":9299", "labels": many})
	for _, c := range []struct {
		name, id, body, reason string
	}{
		{"id with a space", "bad%20id", `{"address": ":9299"}`, "leaf id"},
		{"id with a slash", "a%2Fb", `{"address": ":9299"}`, "leaf id"},
		{"id too long", strings.Repeat("x", config.MaxLeafIDLength+1), `{"address": ":9299"}`, "leaf id"},
		{"too many labels", "ok", string(manyJSON), "at most 32"},
		{"label name with a dash", "ok", `{"address": ":9299", "labels": {"a-b": "x"}}`, `"a-b" is not a valid label name`},
		{"label name with a digit first", "ok", `{"address": ":9299", "labels": {"1a": "x"}}`, "not a valid label name"},
		{"label name with __", "ok", `{"address": ":9299", "labels": {"__address__": "x"}}`, "not a valid label name"},
		{"empty label name", "ok", `{"address": ":9299", "labels": {"": "x"}}`, "not a valid label name"},
		{"reserved leaf_id", "ok", `{"address": ":9299", "labels": {"leaf_id": "x"}}`, `"leaf_id" is set by Oxcross`},
		{"reserved origin_id", "ok", `{"address": ":9299", "labels": {"origin_id": "x"}}`, `"origin_id" is set by Oxcross`},
		{"reserved instance", "ok", `{"address": ":9299", "labels": {"instance": "x"}}`, "set by Oxcross"},
		{"long label value", "ok", `{"address": ":9299", "labels": {"a": "` + strings.Repeat("v", config.MaxLabelValueLength+1) + `"}}`, "value longer than 256"},
		{"long version", "ok", `{"address": ":9299", "version": "` + strings.Repeat("1", 129) + `"}`, "version longer"},
		{"bad refresh interval", "ok", `{"address": ":9299", "refresh_interval": "soon"}`, "refresh_interval"},
		{"negative refresh interval", "ok", `{"address": ":9299", "refresh_interval": "-10s"}`, "refresh_interval"},
		{"no port", "ok", `{"address": "127.0.0.1"}`, "not host:port"},
		{"port out of range", "ok", `{"address": ":65536"}`, "outside 1-65535"},
		{"no address", "ok", `{}`, "address"},
		{"host with a path", "ok", `{"address": "a/b:80"}`, "not a host name"},
		{"unknown field", "ok", `{"address": ":9299", "scheme": "https"}`, `unknown field "scheme"`},
		{"not JSON", "ok", `address: ":9299"`, "registration body"},
		{"empty body", "ok", ``, "registration body"},
		{"labels not a map", "ok", `{"address": ":9299", "labels": ["a"]}`, "registration body"},
	} {
		r := f.put(t, c.id, c.body)
		wantCode(t, c.name, r, http.StatusBadRequest, c.reason)
	}
	if n := len(liveIDs(f.s.Registry())); n != 0 {
		t.Errorf("%d invalid registrations are live", n)
	}
	if v := testutil.MetricValue(t, f.reg, metricRegistrations, "result", "invalid"); v < 20 {
		t.Errorf("registrations invalid = %v", v)
	}
	// The limits themselves are fine: 32 labels, one value of 256
	// characters, 1,024 bytes in all.
	okJSON, _ := json.Marshal(map[string]any{"address": ":9299", "labels": budgetLabels(config.MaxLeafLabelBytes, false)})
	if r := f.put(t, strings.Repeat("x", config.MaxLeafIDLength), string(okJSON)); r.Code != http.StatusOK {
		t.Errorf("PUT at the limits: %d %s", r.Code, r.Body)
	}
}

func TestRegisterBodyTooLarge(t *testing.T) {
	f := newRegFixture(t, regConfig, configserver.RegistryOptions{})
	// A JSON value larger than the limit...
	big := `{"address": ":9299", "version": "` + strings.Repeat("1", configserver.MaxRegistrationBytes) + `"}`
	wantCode(t, "PUT of a large value", f.put(t, "big", big), http.StatusRequestEntityTooLarge, "larger than 65536 bytes")
	// ...and a small one followed by more than the limit.
	padded := `{"address": ":9299"}` + strings.Repeat(" ", configserver.MaxRegistrationBytes)
	wantCode(t, "PUT with trailing padding", f.put(t, "big", padded), http.StatusRequestEntityTooLarge, "larger than")
	if _, ok := liveIDs(f.s.Registry())["big"]; ok {
		t.Errorf("an oversized registration is live")
	}
	// Just under the limit is fine.
	under := `{"address": ":9299"}` + strings.Repeat(" ", configserver.MaxRegistrationBytes-30)
	if r := f.put(t, "big", under); r.Code != http.StatusOK {
		t.Errorf("PUT just under the limit: %d %s", r.Code, r.Body)
	}
}

func TestRegistryFull(t *testing.T) {
	f := newRegFixture(t, regConfig, configserver.RegistryOptions{MaxLeaves: 2})
	body := `{"address": ":9299", "refresh_interval": "10s"}`
	for _, id := range []string{"a", "b"} {
		if r := f.put(t, id, body); r.Code != http.StatusOK {
			t.Fatalf("PUT %s: %d %s", id, r.Code, r.Body)
		}
	}
	wantCode(t, "PUT beyond --registry.max-leaves", f.put(t, "c", body), http.StatusTooManyRequests, "--registry.max-leaves")
	if v := testutil.MetricValue(t, f.reg, metricRegistrations, "result", "full"); v != 1 {
		t.Errorf("registrations full = %v, want 1", v)
	}
	// Leaves already registered keep their heartbeat.
	if r := f.put(t, "a", body); r.Code != http.StatusOK {
		t.Errorf("heartbeat of a registered leaf when full: %d %s", r.Code, r.Body)
	}
	// Once b has expired, it is pruned to make room for c.
	f.clock.Advance(20 * time.Second)
	if r := f.put(t, "a", body); r.Code != http.StatusOK {
		t.Fatalf("heartbeat: %d %s", r.Code, r.Body)
	}
	f.clock.Advance(10 * time.Second) // b: 30s, its TTL; a: 10s
	if r := f.put(t, "c", body); r.Code != http.StatusOK {
		t.Fatalf("PUT c after b expired: %d %s", r.Code, r.Body)
	}
	live := liveIDs(f.s.Registry())
	if _, ok := live["b"]; ok || len(live) != 2 {
		t.Errorf("live after pruning: %v, want a and c", live)
	}
	// b is gone from the registry, not just hidden: it counts as new.
	wantCode(t, "PUT b back while a and c are live", f.put(t, "b", body), http.StatusTooManyRequests, "limit")
}

func TestStaticLeafConflict(t *testing.T) {
	f := newRegFixture(t, regConfig, configserver.RegistryOptions{})
	r := f.put(t, "static-1", `{"address": ":9298"}`)
	wantCode(t, "PUT of a static id with another address", r, http.StatusConflict, "listed in the config with address 127.0.0.1:9999")
	if v := testutil.MetricValue(t, f.reg, metricRegistrations, "result", "conflict"); v != 1 {
		t.Errorf("registrations conflict = %v, want 1", v)
	}
	// From its own address, with its own address, it may heartbeat.
	if r := f.put(t, "static-1", `{"address": ":9999", "labels": {"region": "eu"}}`); r.Code != http.StatusOK {
		t.Errorf("PUT of a static id with its address: %d %s", r.Code, r.Body)
	}
	// It is listed once, as static.
	leaves := f.sd(t, "/sd/leaves")
	if len(leaves) != 1 || leaves[0].Labels["leaf_id"] != "static-1" || leaves[0].Labels["__meta_oxcross_leaf_source"] != "static" {
		t.Errorf("/sd/leaves: %+v", leaves)
	}
}

func TestRegistrationTTL(t *testing.T) {
	f := newRegFixture(t, regConfig, configserver.RegistryOptions{})
	if r := f.put(t, "ttl", `{"address": ":9299", "refresh_interval": "10s"}`); r.Code != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.Code, r.Body)
	}
	if _, ok := f.sdLeaves(t)["ttl"]; !ok {
		t.Fatalf("registered leaf not in /sd/leaves")
	}
	// Two missed refreshes and a bit: still there.
	f.clock.Advance(29 * time.Second)
	if _, ok := f.sdLeaves(t)["ttl"]; !ok {
		t.Errorf("leaf dropped out after 29s with a 10s refresh interval")
	}
	if _, ok := liveIDs(f.s.Registry())["ttl"]; !ok {
		t.Errorf("leaf not live after 29s")
	}
	// Three missed refreshes: gone, from Live and from the cached /sd/leaves.
	f.clock.Advance(time.Second)
	if _, ok := liveIDs(f.s.Registry())["ttl"]; ok {
		t.Errorf("leaf live after three refresh intervals")
	}
	if _, ok := f.sdLeaves(t)["ttl"]; ok {
		t.Errorf("leaf in /sd/leaves after three refresh intervals")
	}
	if _, ok := f.sdLeaves(t)["static-1"]; !ok {
		t.Errorf("static leaf gone with the dynamic one")
	}
	// The same registration again brings it back at once.
	if r := f.put(t, "ttl", `{"address": ":9299", "refresh_interval": "10s"}`); r.Code != http.StatusOK {
		t.Fatalf("PUT again: %d %s", r.Code, r.Body)
	}
	if _, ok := f.sdLeaves(t)["ttl"]; !ok {
		t.Errorf("re-registered leaf not in /sd/leaves")
	}
	// Heartbeats keep it: 5 × 9s.
	for range 5 {
		f.clock.Advance(9 * time.Second)
		if r := f.put(t, "ttl", `{"address": ":9299", "refresh_interval": "10s"}`); r.Code != http.StatusOK {
			t.Fatalf("heartbeat: %d %s", r.Code, r.Body)
		}
	}
	if _, ok := f.sdLeaves(t)["ttl"]; !ok {
		t.Errorf("leaf with regular heartbeats dropped out")
	}
}

func TestDeleteLeaf(t *testing.T) {
	f := newRegFixture(t, regConfig, configserver.RegistryOptions{})
	if r := f.put(t, "bye", `{"address": ":9299"}`); r.Code != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.Code, r.Body)
	}
	if _, ok := f.sdLeaves(t)["bye"]; !ok {
		t.Fatalf("registered leaf not in /sd/leaves")
	}
	if r := f.del(t, "bye"); r.Code != http.StatusNoContent {
		t.Errorf("DELETE: %d %s, want 204", r.Code, r.Body)
	}
	if _, ok := f.sdLeaves(t)["bye"]; ok {
		t.Errorf("deleted leaf still in /sd/leaves")
	}
	wantCode(t, "DELETE again", f.del(t, "bye"), http.StatusNotFound, `"bye" is not registered`)
	wantCode(t, "DELETE of a static leaf", f.del(t, "static-1"), http.StatusNotFound, "not registered")
	if r := f.do(t, http.MethodPost, "/api/v1/leaves/bye", "{}"); r.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/v1/leaves/bye: %d, want 405", r.Code)
	}
}

// TestStaticLeafBehindNAT: a leaf listed in the config may heartbeat its
// listed address from elsewhere (behind NAT) only with its identity; in
// open mode only from its configured address. It may not claim another
// address, and an unlisted leaf may not claim a foreign one.
func TestStaticLeafBehindNAT(t *testing.T) {
	r := configserver.NewRegistry(configserver.RegistryOptions{}, prometheus.NewRegistry())
	static := []config.StaticLeaf{{ID: "natted", Address: "203.0.113.7:9299"}}
	nat := netip.MustParseAddr("198.51.100.1")
	ctx := context.Background()
	put := func(id, addr string, c configserver.Caller) error {
		_, _, err := r.Put(ctx, id, discovery.Registration{Address: addr}, c, static)
		return err
	}
	err := put("natted", "203.0.113.7:9299", configserver.Caller{Addr: nat})
	if err == nil || !strings.Contains(err.Error(), "only requests from that address") {
		t.Errorf("open mode, static leaf heartbeat from behind NAT: %v, want refused", err)
	}
	natted := configserver.Caller{Addr: nat, Authenticated: true, Identities: []string{"natted"}}
	if err := put("natted", "203.0.113.7:9299", natted); err != nil {
		t.Errorf("identity mode, static leaf heartbeat from behind NAT with its identity: %v", err)
	}
	if err := put("natted", "203.0.113.8:9299", natted); err == nil {
		t.Errorf("static leaf heartbeat with another address accepted")
	}
	if err := put("other", "203.0.113.7:9299", configserver.Caller{Addr: nat}); err == nil {
		t.Errorf("unlisted leaf claiming a foreign address accepted")
	}
	if err := put("other", "203.0.113.7:9299", configserver.Caller{Addr: nat, Authenticated: true, Identities: []string{"other"}}); err == nil {
		t.Errorf("identity mode: unlisted leaf claiming a foreign address accepted")
	}
}

// FuzzRegistration sends any id and body to PUT /api/v1/leaves/{id}: the
// answer is one of the documented codes; an accepted registration holds
// only what the validation allows, /sd/leaves stays valid http_sd, and the
// leaf can be deleted again.
func FuzzRegistration(f *testing.F) {
	for _, seed := range []struct{ id, body string }{
		{"leaf-1", `{"address": ":9299", "labels": {"region": "eu"}, "version": "1.0", "refresh_interval": "30s"}`},
		{"leaf-2", `{"address": "127.0.0.1:9299"}`},
		{"leaf-3", `{"address": "localhost:9299", "refresh_interval": "1ns"}`},
		{"bad id", `{"address": ":9299"}`},
		{"leaf-4", `{"address": ":9299", "labels": {"__x": "y"}}`},
		{"leaf-5", `{"address": ":9299", "labels": {"k": "\ud800"}}`},
		{"leaf-6", `{"address": ":9299"} {"address": ":1"}`},
		{"leaf-7", `{"address": ":9299", "extra": true}`},
		{"static-1", `{"address": ":1"}`},
		{"leaf-8", `{"address": "[::1]:9299"}`},
		{"leaf-9", `null`},
	} {
		f.Add(seed.id, []byte(seed.body))
	}
	path := filepath.Join(f.TempDir(), "config.yaml")
	testutil.WriteFile(f, path, regConfig)
	noDNS := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS while fuzzing")
	}}
	s, err := configserver.New(path, configserver.Options{Parser: parser, Registry: configserver.RegistryOptions{Resolver: noDNS, MaxLeaves: 8}}, prometheus.NewRegistry(), discard)
	if err != nil {
		f.Fatal(err)
	}
	mux := configserver.NewMux(s)
	do := func(method, target string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "http://cs"+target, bytes.NewReader(body))
		req.RemoteAddr = "127.0.0.1:40000"
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec
	}
	codes := map[int]bool{200: true, 400: true, 403: true, 404: true, 405: true, 409: true, 413: true, 429: true, 503: true}
	f.Fuzz(func(t *testing.T, id string, body []byte) {
		target := "/api/v1/leaves/" + url.PathEscape(id)
		rec := do(http.MethodPut, target, body)
		if rec.Code == http.StatusTemporaryRedirect || rec.Code == http.StatusMovedPermanently {
			// The router cleans paths such as /api/v1/leaves/..: only
			// for ids that are invalid anyway.
			if config.ValidateLeafID(id) == nil {
				t.Fatalf("PUT %q: redirected (%d) for a valid id", id, rec.Code)
			}
			return
		}
		if !codes[rec.Code] {
			t.Fatalf("PUT %q %q: status %d %s", id, body, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusOK {
			leaves, _, _ := s.Registry().Live()
			var got *discovery.Leaf
			for i := range leaves {
				if leaves[i].ID == id {
					got = &leaves[i]
				}
			}
			if got == nil {
				t.Fatalf("PUT %q answered 200 but the leaf is not live", id)
			}
			if err := config.ValidateLeafID(got.ID); err != nil {
				t.Errorf("registered id: %v", err)
			}
			if err := config.ValidateAddress(got.Address); err != nil {
				t.Errorf("registered address: %v", err)
			}
			if err := config.ValidateLabels(got.Labels); err != nil {
				t.Errorf("registered labels: %v", err)
			}
		}
		sd := do(http.MethodGet, "/sd/leaves", nil)
		if sd.Code != http.StatusOK {
			t.Fatalf("/sd/leaves: %d", sd.Code)
		}
		if err := sdProblem(sd.Body.Bytes()); err != nil {
			t.Fatalf("/sd/leaves after PUT %q %q: %v\n%s", id, body, err, sd.Body)
		}
		if rec.Code == http.StatusOK {
			if del := do(http.MethodDelete, target, nil); del.Code != http.StatusNoContent {
				t.Errorf("DELETE %q: %d %s", id, del.Code, del.Body)
			}
		}
	})
}

// sdProblem decodes data as Prometheus' http_sd does and says what a
// Prometheus with the classic label name rules would refuse, or nil.
func sdProblem(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var groups []struct {
		Targets []string       `json:"targets"`
		Labels  model.LabelSet `json:"labels"`
	}
	if err := dec.Decode(&groups); err != nil {
		return err
	}
	if groups == nil {
		return errors.New("not a list")
	}
	for _, g := range groups {
		if len(g.Targets) != 1 {
			return errors.New("a leaf group without exactly one target")
		}
		if _, _, err := net.SplitHostPort(g.Targets[0]); err != nil || strings.ContainsAny(g.Targets[0], "/ ") {
			return errors.New("target " + g.Targets[0] + " is not host:port")
		}
		for name, value := range g.Labels {
			if !model.LegacyValidation.IsValidLabelName(string(name)) || !utf8.ValidString(string(value)) {
				return errors.New("label " + string(name) + " is not valid")
			}
		}
		if err := g.Labels.Validate(); err != nil {
			return err
		}
	}
	return nil
}
