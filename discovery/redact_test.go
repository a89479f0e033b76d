package discovery_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/oxcross/oxcross/discovery"
)

// TestOriginGroupsRedactURL: /sd/origins gives Prometheus an origin's
// host:port as target and its URL for relabelling, without the password
// of its userinfo (issue 13, #6): labels end up in Prometheus' storage
// and on its pages.
func TestOriginGroupsRedactURL(t *testing.T) {
	cfg := snapshot(t, "origins:\n  - {name: a, url: 'https://user:S3CRET@a.example:8443/health?x=1', mode: simple}\n  - {name: b, url: 'http://TOKEN@b.example/'}\n")
	groups := discovery.OriginGroups(cfg.Config)
	for i, want := range []struct{ target, url string }{
		{"a.example:8443", "https://user:xxxxx@a.example:8443/health?x=1"},
		{"b.example:80", "http://xxxxx@b.example/oxcross"},
	} {
		g := groups[i]
		if len(g.Targets) != 1 || g.Targets[0] != want.target || g.Labels["__meta_oxcross_origin_url"] != want.url {
			t.Errorf("group %d: targets %v, origin_url %q; want %s and %s", i, g.Targets, g.Labels["__meta_oxcross_origin_url"], want.target, want.url)
		}
		for k, v := range g.Labels {
			if strings.Contains(v, "S3CRET") || strings.Contains(v, "TOKEN") {
				t.Errorf("group %d: label %s=%q shows the credentials", i, k, v)
			}
		}
	}
	if !strings.Contains(cfg.Config.Origins[0].URL, "S3CRET") {
		t.Errorf("the config lost the password the probe needs: %s", cfg.Config.Origins[0].URL)
	}
}

// TestConfigURLErrorsRedacted: a --config.url the leaf cannot use is named
// in the error without its password.
func TestConfigURLErrorsRedacted(t *testing.T) {
	for _, base := range []string{"leaf:S3CRET@cs.example:9300", "ftp://leaf:S3CRET@cs.example/", "http://leaf:S3CRET@cs.example:x/", "http://leaf:S3CRET@"} {
		_, err := discovery.NewRemote(base, "a", http.DefaultClient, "test", parser)
		if err == nil || strings.Contains(err.Error(), "S3CRET") || !strings.Contains(err.Error(), "xxxxx") {
			t.Errorf("NewRemote(%q): %v", base, err)
		}
		_, err = discovery.NewRegistrar(base, http.DefaultClient, "test", "a", discovery.Registration{Address: ":9299"})
		if err == nil || strings.Contains(err.Error(), "S3CRET") {
			t.Errorf("NewRegistrar(%q): %v", base, err)
		}
	}
}
