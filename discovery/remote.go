package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/oxcross/oxcross/config"
)

// Remote fetches the config from a configserver's /config with conditional
// requests.
type Remote struct {
	url string
	// shown is url with its userinfo redacted, for messages.
	shown  string
	client *http.Client
	agent  string
	parser config.Parser
	etag   string
}

// NewRemote returns a Remote for the configserver at base (the original's
// OXCROSS_CONFIG_API_BASE); it fetches base + "/config", with
// ?leaf_id=leafID unless leafID is empty, so that the configserver answers
// the view of the config meant for that leaf (origins selected by leaf
// labels). It parses what it fetches with parser.
func NewRemote(base, leafID string, client *http.Client, userAgent string, parser config.Parser) (*Remote, error) {
	u, err := parseBase(base)
	if err != nil {
		return nil, err
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/config"
	if leafID != "" {
		q := u.Query()
		q.Set("leaf_id", leafID)
		u.RawQuery = q.Encode()
	}
	return &Remote{url: u.String(), shown: config.RedactURL(u.String()), client: client, agent: userAgent, parser: parser}, nil
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

// URL is the address the config is fetched from, with the password of its
// userinfo redacted (user:xxxxx@): for logs and pages.
func (r *Remote) URL() string { return r.shown }

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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching config from %s: %w", r.shown, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", r.agent)
	if r.etag != "" {
		req.Header.Set("If-None-Match", r.etag)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching config: %w", redactErr(err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, config.ErrNotModified
	case http.StatusOK:
	default:
		return nil, fmt.Errorf("fetching config from %s: status %s", r.shown, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, config.MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading config from %s: %w", r.shown, err)
	}
	if len(data) > config.MaxConfigBytes {
		return nil, fmt.Errorf("config from %s is larger than %d bytes", r.shown, config.MaxConfigBytes)
	}
	cfg, err := r.parser.ParseView(data)
	if err != nil {
		return nil, fmt.Errorf("config from %s: %w", r.shown, err)
	}
	l, err := config.NewSnapshot(cfg)
	if err != nil {
		return nil, err
	}
	if et := resp.Header.Get("ETag"); et != "" {
		l.ETag = et
	}
	r.etag = l.ETag
	return l, nil
}
