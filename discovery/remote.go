package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/oxcross/oxcross/config"
)

// Remote fetches the config from a configserver's /config with conditional
// requests.
type Remote struct {
	servers *Configservers
	leafID  string
	client  *http.Client
	agent   string
	parser  config.Parser
	etag    string
}

// NewRemote returns a Remote for the configserver at base (the original's
// OXCROSS_CONFIG_API_BASE); it fetches base + "/config", with
// ?leaf_id=leafID unless leafID is empty, so that the configserver answers
// the view of the config meant for that leaf (origins selected by leaf
// labels). It parses what it fetches with parser.
func NewRemote(base, leafID string, client *http.Client, userAgent string, parser config.Parser) (*Remote, error) {
	servers, err := NewConfigservers([]string{base}, nil)
	if err != nil {
		return nil, err
	}
	return NewRemoteFrom(servers, leafID, client, userAgent, parser), nil
}

// NewRemoteFrom is NewRemote for several configserver replicas: each fetch
// goes to the current one, and fails over to the next when it does not
// answer or answers a 5xx.
func NewRemoteFrom(servers *Configservers, leafID string, client *http.Client, userAgent string, parser config.Parser) *Remote {
	return &Remote{servers: servers, leafID: leafID, client: client, agent: userAgent, parser: parser}
}

// configURL is the URL of the config at the configserver base.
func (r *Remote) configURL(base url.URL) string {
	base.Path += "/config"
	if r.leafID != "" {
		q := base.Query()
		q.Set("leaf_id", r.leafID)
		base.RawQuery = q.Encode()
	}
	return base.String()
}

// parseBase reads the configserver's base URL; its error shows base with
// its userinfo redacted.
func parseBase(base string) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("config URL %q: want http(s)://host[:port][/prefix]", config.RedactURL(base))
	}
	return u, nil
}

// URL is the address the config is fetched from now, with the password of
// its userinfo redacted (user:xxxxx@): for logs and pages.
func (r *Remote) URL() string {
	var base url.URL
	if u, err := url.Parse(r.servers.Current()); err == nil {
		base = *u
	}
	return config.RedactURL(r.configURL(base))
}

// redactErr redacts the URL of the url.Error that the HTTP client returns
// (Go shows the password as ***, and the user).
func redactErr(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		uerr.URL = config.RedactURL(uerr.URL)
	}
	return err
}

// SetETag makes the next Fetch conditional on etag, the tag of a config
// the caller already has (from its cache).
func (r *Remote) SetETag(etag string) { r.etag = etag }

// Fetch GETs the config. It returns ErrNotModified when the configserver
// answers 304 to the ETag of the last config fetched.
func (r *Remote) Fetch(ctx context.Context) (*config.Snapshot, error) {
	var l *config.Snapshot
	err := r.servers.try(ctx, func(base url.URL) (bool, error) {
		var (
			failover bool
			err      error
		)
		l, failover, err = r.fetch(ctx, r.configURL(base))
		return failover, err
	})
	return l, err
}

// fetch GETs the config from u once; failover says the next configserver
// should be asked.
func (r *Remote) fetch(ctx context.Context, u string) (l *config.Snapshot, failover bool, err error) {
	shown := config.RedactURL(u)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, fmt.Errorf("fetching config from %s: %w", shown, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", r.agent)
	if r.etag != "" {
		req.Header.Set("If-None-Match", r.etag)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, true, fmt.Errorf("fetching config: %w", redactErr(err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, false, config.ErrNotModified
	case http.StatusOK:
	default:
		return nil, resp.StatusCode >= 500, fmt.Errorf("fetching config from %s: status %s", shown, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, config.MaxConfigBytes+1))
	if err != nil {
		return nil, true, fmt.Errorf("reading config from %s: %w", shown, err)
	}
	if len(data) > config.MaxConfigBytes {
		return nil, false, fmt.Errorf("config from %s is larger than %d bytes", shown, config.MaxConfigBytes)
	}
	cfg, err := r.parser.ParseView(data)
	if err != nil {
		return nil, false, fmt.Errorf("config from %s: %w", shown, err)
	}
	l, err = config.NewSnapshot(cfg)
	if err != nil {
		return nil, false, err
	}
	if et := resp.Header.Get("ETag"); et != "" {
		l.ETag = et
	}
	r.etag = l.ETag
	return l, false, nil
}
