package configserver_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/internal/testutil"
)

// TestWebConfigAuthentication: identity mode follows what the web config
// verifies, read anew at every call.
func TestWebConfigAuthentication(t *testing.T) {
	ca := testutil.NewCA(t, "Oxcross test CA")
	server := ca.Server(t)
	tlsWith := func(clientAuth string) string {
		return "tls_server_config:\n  cert_file: " + server.CertFile + "\n  key_file: " + server.KeyFile + "\n  client_auth_type: " + clientAuth + "\n  client_ca_file: " + ca.CertFile + "\n"
	}
	path := filepath.Join(t.TempDir(), "web.yml")
	auth := configserver.WebConfigAuthentication(path)
	for _, c := range []struct {
		name, text string
		want       configserver.Authentication
	}{
		{"empty", "", configserver.Authentication{}},
		{"comments only", "# basic_auth_users:\n#   a: b\n", configserver.Authentication{}},
		{"TLS only", "tls_server_config:\n  cert_file: " + server.CertFile + "\n  key_file: " + server.KeyFile + "\n", configserver.Authentication{}},
		{"basic auth", usersYAML(t, "leaf-1"), configserver.Authentication{BasicAuth: true}},
		{"verified client certificates", tlsWith("RequireAndVerifyClientCert"), configserver.Authentication{ClientCerts: true}},
		{"verified client certificates if given", tlsWith("VerifyClientCertIfGiven"), configserver.Authentication{ClientCerts: true}},
		{"unverified client certificates", tlsWith("RequireAnyClientCert"), configserver.Authentication{}},
		{"requested client certificates", tlsWith("RequestClientCert"), configserver.Authentication{}},
		{"both", tlsWith("RequireAndVerifyClientCert") + usersYAML(t, "leaf-1"), configserver.Authentication{BasicAuth: true, ClientCerts: true}},
		{"users removed again", "", configserver.Authentication{}},
	} {
		testutil.WriteFile(t, path, c.text)
		if err := web.Validate(path); err != nil {
			t.Fatalf("%s: exporter-toolkit refuses the web config: %v", c.name, err)
		}
		got, err := auth()
		if err != nil || got != c.want {
			t.Errorf("%s: %+v %v, want %+v (identity mode %v)", c.name, got, err, c.want, c.want.Enabled())
		}
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := auth(); err == nil || !strings.Contains(err.Error(), "web.yml") {
		t.Errorf("a web config that is gone: %v, want an error naming it", err)
	}
	if a, err := configserver.WebConfigAuthentication("")(); err != nil || a.Enabled() {
		t.Errorf("no web config: %+v %v, want open mode", a, err)
	}
}

func TestParseIdentities(t *testing.T) {
	ids, err := configserver.ParseIdentities([]byte("fleet: [\"leaf-*\", \"edge-[0-9]\"]\nprometheus: []\nnobody:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || len(ids["fleet"]) != 2 || ids["prometheus"] == nil || ids["nobody"] == nil {
		t.Errorf("parsed %#v", ids)
	}
	if ids, err := configserver.ParseIdentities(nil); err != nil || len(ids) != 0 {
		t.Errorf("an empty file: %v %v, want no identities", ids, err)
	}
	for text, want := range map[string]string{
		"fleet: [\"[\"]\n":      `identity "fleet": "[" is not a leaf id pattern`,
		"fleet: [\"\"]\n":       `identity "fleet": "" is not a leaf id pattern`,
		"fleet: leaf-*\n":       "want a map of identity names to lists of leaf id patterns",
		"- fleet\n":             "want a map",
		"fleet: {a: b}\n":       "want a map",
		"\"\": [\"leaf-*\"]\n":  "an empty identity name",
		"fleet: [a]\nfleet: []": "want a map",
	} {
		if _, err := configserver.ParseIdentities([]byte(text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseIdentities(%q): %v, want %q", text, err, want)
		}
	}
}

// TestPackagedRegistryFiles: the packages' web config and identities file
// load, and leave the registry in open mode until users are added.
func TestPackagedRegistryFiles(t *testing.T) {
	webConfig := filepath.Join("..", "packaging", "config", "configserver-web.yml")
	if err := web.Validate(webConfig); err != nil {
		t.Errorf("%s: %v", webConfig, err)
	}
	if a, err := configserver.WebConfigAuthentication(webConfig)(); err != nil || a.Enabled() {
		t.Errorf("%s: %+v %v, want open mode until users are added", webConfig, a, err)
	}
	data, err := os.ReadFile(filepath.Join("..", "packaging", "config", "registry-identities.yml"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := configserver.ParseIdentities(data)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := ids["prometheus"]; !ok || len(p) != 0 {
		t.Errorf("packaged identities %v: want prometheus: []", ids)
	}
}
