package configserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"slices"
	"sync"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v3"

	"github.com/oxcross/oxcross/config"
)

// Authentication says what the web config in front of the configserver's
// handlers checks before a request reaches them. With either, the
// registry is in identity mode: a leaf id belongs to the identity a
// request proves. With neither, it is in open mode: first come, first
// served, within the per-source and lifetime limits.
type Authentication struct {
	// BasicAuth is set when basic_auth_users are configured: every request
	// that reaches a handler passed basic auth, so its user name is proven.
	BasicAuth bool
	// ClientCerts is set when client certificates are verified against
	// the web config's client CA (client_auth_type VerifyClientCertIfGiven
	// or RequireAndVerifyClientCert).
	ClientCerts bool
}

// Enabled reports whether requests can prove an identity: identity mode.
func (a Authentication) Enabled() bool { return a.BasicAuth || a.ClientCerts }

// WebConfigAuthentication returns a function that says what the
// exporter-toolkit web config file at path authenticates, for
// Options.Authentication. Like exporter-toolkit, which rereads the file for
// every request, it reads the file at every call, so that a user added or
// removed at run time changes the registry's mode at once; it parses it
// only when its content changed. An empty path means no web config: open
// mode.
func WebConfigAuthentication(file string) func() (Authentication, error) {
	if file == "" {
		return func() (Authentication, error) { return Authentication{}, nil }
	}
	var (
		mu      sync.Mutex
		content []byte
		last    Authentication
	)
	return func() (Authentication, error) {
		data, err := os.ReadFile(file)
		if err != nil {
			return Authentication{}, fmt.Errorf("reading the web config: %w", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if content != nil && bytes.Equal(data, content) {
			return last, nil
		}
		var c web.Config
		if err := yaml.Unmarshal(data, &c); err != nil {
			return Authentication{}, fmt.Errorf("web config %s: %w", file, err)
		}
		a := Authentication{BasicAuth: len(c.Users) > 0}
		switch c.TLSConfig.ClientAuth {
		case "VerifyClientCertIfGiven", "RequireAndVerifyClientCert":
			// Without TLS there is no client certificate to verify.
			a.ClientCerts = c.TLSConfig.IsEnabled()
		}
		content, last = data, a
		return a, nil
	}
}

// requestIdentities returns the names request r proved, given what the web
// config checks: its basic-auth user name, then the common name and DNS
// names of its verified client certificate. A name the web config did not
// check (a basic-auth header sent to a server without basic_auth_users, a
// client certificate nobody verified) is not an identity.
func requestIdentities(r *http.Request, auth Authentication) []string {
	var ids []string
	if auth.BasicAuth {
		if user, _, ok := r.BasicAuth(); ok && user != "" {
			ids = append(ids, user)
		}
	}
	if auth.ClientCerts && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		cert := r.TLS.VerifiedChains[0][0]
		for _, name := range append([]string{cert.Subject.CommonName}, cert.DNSNames...) {
			if name != "" && !slices.Contains(ids, name) {
				ids = append(ids, name)
			}
		}
	}
	return ids
}

// Identities say which leaf ids an authenticated identity may register,
// renew and delete: identity name → path.Match patterns of leaf ids. An
// identity listed with no pattern may register none; one not listed may
// register exactly the id that is its own name.
type Identities map[string][]string

// ParseIdentities parses the content of an identities file (YAML,
// identity: [patterns]), refusing anything else and bad patterns.
func ParseIdentities(data []byte) (Identities, error) {
	var raw map[string][]string
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("want a map of identity names to lists of leaf id patterns: %w", err)
	}
	ids := make(Identities, len(raw))
	for name, patterns := range raw {
		if name == "" {
			return nil, fmt.Errorf("an empty identity name")
		}
		for _, p := range patterns {
			if _, err := path.Match(p, ""); err != nil || p == "" {
				return nil, fmt.Errorf("identity %q: %q is not a leaf id pattern (path.Match: *, ?, [a-z])", name, p)
			}
		}
		ids[name] = slices.Clone(patterns)
		if ids[name] == nil {
			ids[name] = []string{}
		}
	}
	return ids, nil
}

// allows reports whether identity may hold leaf id.
func (ids Identities) allows(identity, id string) bool {
	patterns, listed := ids[identity]
	if !listed {
		return identity == id && config.ValidateLeafID(id) == nil
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, id); ok {
			return true
		}
	}
	return false
}

// identitiesFile is the --registry.identities file and the content last
// applied from it.
type identitiesFile struct {
	path string
	mu   sync.Mutex
	// applied is the content in use, failed the last content refused;
	// unreadable is set while the file cannot be read.
	applied, failed []byte
	unreadable      bool
}

// load reads the file and returns its identities when its content changed
// since the last successful load (changed false otherwise). With
// onlyIfChanged, content refused before is not parsed and reported again.
func (f *identitiesFile) load(onlyIfChanged bool) (ids Identities, changed bool, err error) {
	data, err := os.ReadFile(f.path)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		if onlyIfChanged && f.unreadable {
			return nil, false, nil
		}
		f.unreadable = true
		return nil, false, fmt.Errorf("reading the identities file: %w", err)
	}
	f.unreadable = false
	if f.applied != nil && bytes.Equal(data, f.applied) {
		return nil, false, nil
	}
	if onlyIfChanged && f.failed != nil && bytes.Equal(data, f.failed) {
		return nil, false, nil
	}
	ids, err = ParseIdentities(data)
	if err != nil {
		f.failed = data
		return nil, false, fmt.Errorf("identities file %s: %w", f.path, err)
	}
	f.applied, f.failed = data, nil
	return ids, true, nil
}
