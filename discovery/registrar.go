package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/oxcross/oxcross/config"
)

// Registration is the body of the configserver's PUT /api/v1/leaves/{id}:
// a leaf's heartbeat.
type Registration struct {
	// Address is host:port where Prometheus scrapes the leaf; ":port"
	// means the address the request comes from.
	Address string            `json:"address"`
	Labels  map[string]string `json:"labels,omitempty"`
	Version string            `json:"version,omitempty"`
	// RefreshInterval is the leaf's config refresh interval (a Go
	// duration); the leaf drops out of /sd/leaves after three of them
	// without a heartbeat.
	RefreshInterval string `json:"refresh_interval,omitempty"`
}

// Registrar sends a leaf's heartbeats to the configserver and deregisters
// it on shutdown.
type Registrar struct {
	servers *Configservers
	path    string
	client  *http.Client
	agent   string
	body    []byte
}

// NewRegistrar returns a Registrar for leaf id at the configserver base.
func NewRegistrar(base string, client *http.Client, userAgent, id string, reg Registration) (*Registrar, error) {
	servers, err := NewConfigservers([]string{base}, nil)
	if err != nil {
		return nil, err
	}
	return NewRegistrarFrom(servers, client, userAgent, id, reg)
}

// NewRegistrarFrom is NewRegistrar for several configserver replicas:
// each request goes to the current one, and fails over to the next when
// it does not answer or answers a 5xx.
func NewRegistrarFrom(servers *Configservers, client *http.Client, userAgent, id string, reg Registration) (*Registrar, error) {
	if err := config.ValidateLeafID(id); err != nil {
		return nil, err
	}
	if err := config.ValidateLabels(reg.Labels); err != nil {
		return nil, fmt.Errorf("leaf labels: %w", err)
	}
	body, err := json.Marshal(reg)
	if err != nil {
		return nil, fmt.Errorf("encoding registration: %w", err)
	}
	return &Registrar{servers: servers, path: "/api/v1/leaves/" + url.PathEscape(id), client: client, agent: userAgent, body: body}, nil
}

// Heartbeat registers the leaf, or renews its registration.
func (r *Registrar) Heartbeat(ctx context.Context) error {
	return r.do(ctx, http.MethodPut, r.body)
}

// Deregister removes the leaf from the configserver's registry.
func (r *Registrar) Deregister(ctx context.Context) error {
	return r.do(ctx, http.MethodDelete, nil)
}

func (r *Registrar) do(ctx context.Context, method string, body []byte) error {
	return r.servers.try(ctx, func(base url.URL) (bool, error) {
		base.Path += r.path
		return r.once(ctx, method, base.String(), body)
	})
}

// once sends one request to u; failover says the next configserver should
// be asked.
func (r *Registrar) once(ctx context.Context, method, u string, body []byte) (failover bool, err error) {
	shown := config.RedactURL(u)
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", method, shown, err)
	}
	req.Header.Set("User-Agent", r.agent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		// The client's *url.Error repeats the method and URL: keep its
		// cause only.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return true, fmt.Errorf("%s %s: %w", method, shown, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode >= 500, fmt.Errorf("%s %s: %s: %s", method, shown, resp.Status, strings.TrimSpace(string(msg)))
	}
	return false, nil
}
