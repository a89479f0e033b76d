package discovery

import (
	"net"
	"net/url"
	"sort"
	"time"

	"github.com/oxcross/oxcross/config"
)

// TargetGroup is one entry of Prometheus' http_sd format.
type TargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Leaf is a leaf as service discovery lists it.
type Leaf struct {
	ID      string
	Address string
	Labels  map[string]string
	Version string
	// Static leaves come from the config, the others registered.
	Static   bool
	LastSeen time.Time
}

// The __meta_ label prefix of Oxcross' service discovery.
const metaPrefix = "__meta_oxcross_"

// LeafGroups returns one target group per leaf, sorted by id: its address,
// the leaf_id label and the leaf's own labels, and __meta_oxcross_leaf_*
// labels for relabelling.
func LeafGroups(leaves []Leaf) []TargetGroup {
	out := make([]TargetGroup, 0, len(leaves))
	for _, l := range leaves {
		labels := make(map[string]string, 2*len(l.Labels)+5)
		for k, v := range l.Labels {
			labels[k] = v
			labels[metaPrefix+"leaf_label_"+k] = v
		}
		labels["leaf_id"] = l.ID
		labels[metaPrefix+"leaf_id"] = l.ID
		listing := "dynamic"
		if l.Static {
			listing = "static"
		}
		labels[metaPrefix+"leaf_source"] = listing
		if l.Version != "" {
			labels[metaPrefix+"leaf_version"] = l.Version
		}
		out = append(out, TargetGroup{Targets: []string{l.Address}, Labels: labels})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Labels["leaf_id"] < out[j].Labels["leaf_id"] })
	return out
}

// OriginGroups returns one target group per origin, in config order: the
// origin's host:port as target, origin_id, mode and the config's labels,
// and __meta_oxcross_origin_* labels (the full URL or address among them,
// for driving /probe through relabelling; a URL's userinfo redacted).
func OriginGroups(cfg *config.Config) []TargetGroup {
	out := make([]TargetGroup, 0, len(cfg.Origins))
	for _, t := range cfg.Origins {
		labels := make(map[string]string, 2*len(t.Labels)+8)
		for k, v := range t.Labels {
			labels[k] = v
			labels[metaPrefix+"origin_label_"+k] = v
		}
		labels["origin_id"] = t.ID
		labels["mode"] = t.Module
		labels[metaPrefix+"origin_id"] = t.ID
		labels[metaPrefix+"origin_mode"] = t.Module
		labels[metaPrefix+"origin_kind"] = cfg.Modules[t.Module].Kind
		target := t.Address
		if t.URL != "" {
			// A password in the URL is for the leaves that probe it,
			// never for Prometheus' labels.
			labels[metaPrefix+"origin_url"] = config.RedactURL(t.URL)
			target = hostPort(t.URL)
		} else {
			labels[metaPrefix+"origin_address"] = t.Address
		}
		labels[metaPrefix+"origin_interval"] = t.Interval.String()
		out = append(out, TargetGroup{Targets: []string{target}, Labels: labels})
	}
	return out
}

// hostPort returns a URL's host:port, with the scheme's default port.
func hostPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}
