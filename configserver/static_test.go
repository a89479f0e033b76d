package configserver_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/discovery"
)

// TestStaticLeafBehindNAT: a leaf listed in the config may heartbeat its
// listed address from any source (the config vouches for it), but not
// another address; an unlisted leaf may not claim a foreign address.
func TestStaticLeafBehindNAT(t *testing.T) {
	r := configserver.NewRegistry(configserver.RegistryOptions{}, prometheus.NewRegistry())
	static := []discovery.StaticLeaf{{ID: "natted", Address: "203.0.113.7:9299"}}
	nat := netip.MustParseAddr("198.51.100.1")
	ctx := context.Background()
	if _, _, err := r.Put(ctx, "natted", discovery.Registration{Address: "203.0.113.7:9299"}, nat, static); err != nil {
		t.Errorf("static leaf heartbeat from behind NAT refused: %v", err)
	}
	if _, _, err := r.Put(ctx, "natted", discovery.Registration{Address: "203.0.113.8:9299"}, nat, static); err == nil {
		t.Errorf("static leaf heartbeat with another address accepted")
	}
	if _, _, err := r.Put(ctx, "other", discovery.Registration{Address: "203.0.113.7:9299"}, nat, static); err == nil {
		t.Errorf("unlisted leaf claiming a foreign address accepted")
	}
}
