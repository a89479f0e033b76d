package configserver_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/testutil"
)

// BenchmarkPutOpenMode measures a heartbeat in open mode, where the
// per-source limit counts the source's live ids, with 10,000 leaves from
// 1,000 sources registered.
func BenchmarkPutOpenMode(b *testing.B) {
	r := configserver.NewRegistry(configserver.RegistryOptions{MaxLeavesPerSource: configserver.DefaultMaxLeavesPerSource}, prometheus.NewRegistry())
	benchOpenModeHeartbeat(b, r, 10000, 1000)
}

// benchOpenModeHeartbeat registers leaves from sources in r, in open
// mode, then times the heartbeat of the first one.
func benchOpenModeHeartbeat(b *testing.B, r *configserver.Registry, leaves, sources int) {
	b.Helper()
	ctx := context.Background()
	src := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i % 256)}) }
	for i := range leaves {
		reg := discovery.Registration{Address: fmt.Sprintf(":%d", 20000+i), RefreshInterval: "1m"}
		if _, _, err := r.Put(ctx, fmt.Sprintf("leaf-%05d", i), reg, configserver.Caller{Addr: src(i % sources)}, nil); err != nil {
			b.Fatal(err)
		}
	}
	reg := discovery.Registration{Address: ":20000", RefreshInterval: "1m"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.Put(ctx, "leaf-00000", reg, configserver.Caller{Addr: src(0)}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutIdentityMode is the same heartbeat in identity mode.
func BenchmarkPutIdentityMode(b *testing.B) {
	r := configserver.NewRegistry(configserver.RegistryOptions{}, prometheus.NewRegistry())
	ctx := context.Background()
	for i := range 10000 {
		id := fmt.Sprintf("leaf-%05d", i)
		reg := discovery.Registration{Address: fmt.Sprintf(":%d", 20000+i), RefreshInterval: "1m"}
		if _, _, err := r.Put(ctx, id, reg, configserver.Caller{Addr: netip.MustParseAddr("10.0.0.1"), Authenticated: true, Identities: []string{id}}, nil); err != nil {
			b.Fatal(err)
		}
	}
	reg := discovery.Registration{Address: ":20000", RefreshInterval: "1m"}
	c := configserver.Caller{Addr: netip.MustParseAddr("10.0.0.1"), Authenticated: true, Identities: []string{"leaf-00000"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.Put(ctx, "leaf-00000", reg, c, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutEtcd measures a heartbeat (a renewal) with the registry in
// Debian's etcd on loopback, 1,000 leaves registered: a lease grant and a
// transaction, the old lease revoked in the background. Heartbeats through
// one replica are written one at a time, so its time per op bounds the
// heartbeats a replica takes per second.
func BenchmarkPutEtcd(b *testing.B) {
	etcd := testutil.StartEtcd(b)
	r, _ := etcdRegistry(b, etcd.ClientURL, fmt.Sprintf("/oxcross-bench/%d/", time.Now().UnixNano()), configserver.RegistryOptions{MaxLeavesPerSource: configserver.DefaultMaxLeavesPerSource})
	benchOpenModeHeartbeat(b, r, 1000, 100)
}
