package testutil

import (
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"testing"
)

// OriginalConfig is the config of the original Oxcross
// (chongyangshi/Oxcross, types.Config) with its field names and types:
// what its configserver reads from its file and serves at GET /config, and
// what its leaf decodes from there. Encoded with encoding/json, it is the
// original configserver's exact /config: "origins" (each with "URL", a
// field without a tag), "timeout", "interval".
type OriginalConfig struct {
	Origins  []OriginalOrigin `json:"origins"`
	Timeout  int              `json:"timeout"`
	Interval int              `json:"interval"`
}

// OriginalOrigin is an origin of OriginalConfig (the original's
// types.OriginEntry).
type OriginalOrigin struct {
	Scheme   string `json:"scheme"`
	Hostname string `json:"hostname"`
	Port     int    `json:"port"`
	Mode     string `json:"mode"`
	// URL is what the original probes, composed of the others.
	URL string
}

// ID is the origin_id the original leaf gives the origin.
func (o OriginalOrigin) ID() string {
	return fmt.Sprintf("%s-%d-%s", o.Hostname, o.Port, o.Scheme)
}

// ParseOriginalConfig reads a config as the original Oxcross did, its
// configserver from its file and its leaf from GET /config: decoded with
// encoding/json (unknown keys ignored, keys matched whatever their case, a
// value of another type an error); a timeout of 0 is 10, or else an
// interval of 0 is 10; origins whose scheme is not http or https, or whose
// port is outside 0-32767, or whose URL does not parse, are skipped; each
// URL is composed of scheme, hostname and port, with /oxcross in advanced
// mode, the default. A config left without origins is an error, on which
// the original leaf exits at start.
func ParseOriginalConfig(body []byte) (*OriginalConfig, error) {
	var cfg OriginalConfig
	if err := json.Unmarshal(body, &cfg); err != nil {
		return nil, fmt.Errorf("the original cannot decode the config: %w", err)
	}
	switch {
	case cfg.Timeout == 0:
		cfg.Timeout = 10
	case cfg.Interval == 0:
		cfg.Interval = 10
	}
	kept := []OriginalOrigin{}
	for _, o := range cfg.Origins {
		if o.Scheme != "http" && o.Scheme != "https" {
			continue
		}
		if o.Port < 0 || o.Port > 32767 {
			continue
		}
		if o.Mode == "" {
			o.Mode = "advanced"
		}
		o.URL = fmt.Sprintf("%s://%s:%d", o.Scheme, o.Hostname, o.Port)
		if o.Mode == "advanced" {
			o.URL += "/oxcross"
		}
		if _, err := url.Parse(o.URL); err != nil {
			continue
		}
		kept = append(kept, o)
	}
	cfg.Origins = kept
	if len(cfg.Origins) == 0 {
		return nil, errors.New("the original finds no valid origin in the config")
	}
	return &cfg, nil
}

// OriginalMaxPort is the highest port the original Oxcross probes: it
// skips origins with a higher one, and most systems give listeners on
// port 0 a higher one.
const OriginalMaxPort = 32767

// ListenOriginalPort listens on a free port of 127.0.0.1 at most
// OriginalMaxPort, for an origin the original Oxcross probes; the
// listener is closed at the end of the test.
func ListenOriginalPort(t testing.TB) net.Listener {
	t.Helper()
	var last error
	for range 200 {
		port := 10000 + mrand.IntN(OriginalMaxPort-10000+1)
		l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			t.Cleanup(func() { _ = l.Close() })
			return l
		}
		last = err
	}
	t.Fatalf("no free port up to %d: %v", OriginalMaxPort, last)
	return nil
}
