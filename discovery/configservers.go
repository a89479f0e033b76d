package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/oxcross/oxcross/config"
)

// Configservers are the configserver replicas a leaf follows
// (--config.url, repeatable) and the one it uses now. The heartbeat and
// the config fetch both go to the current one; when a request to it fails
// (no answer, or a 5xx status) the next is tried at once, and stays the
// current one until it fails in turn.
type Configservers struct {
	bases  []*url.URL
	logger *slog.Logger
	cur    atomic.Int64
}

// NewConfigservers returns the configservers at bases (http(s)://host[:port][/prefix]
// each), the first one current. logger, if not nil, logs each failover.
func NewConfigservers(bases []string, logger *slog.Logger) (*Configservers, error) {
	if len(bases) == 0 {
		return nil, errors.New("no configserver URL")
	}
	c := &Configservers{logger: logger}
	for _, b := range bases {
		u, err := parseBase(b)
		if err != nil {
			return nil, err
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		c.bases = append(c.bases, u)
	}
	return c, nil
}

// Len returns the number of configservers.
func (c *Configservers) Len() int { return len(c.bases) }

// Current returns the base URL of the configserver in use, its userinfo
// redacted: for logs and pages.
func (c *Configservers) Current() string {
	return config.RedactURL(c.bases[c.cur.Load()].String())
}

// All returns every base URL, redacted, in order.
func (c *Configservers) All() []string {
	out := make([]string, len(c.bases))
	for i, u := range c.bases {
		out[i] = config.RedactURL(u.String())
	}
	return out
}

// try calls do with the base URL of each configserver, from the current
// one, until one answers without asking for a failover (do's failover:
// no answer, or a 5xx status); that one becomes the current one. It
// returns the last error. A context that ends stops it.
func (c *Configservers) try(ctx context.Context, do func(base url.URL) (failover bool, err error)) error {
	n := int64(len(c.bases))
	start := c.cur.Load()
	var err error
	for i := range n {
		at := (start + i) % n
		var failover bool
		failover, err = do(*c.bases[at])
		if !failover {
			if at != start && c.cur.CompareAndSwap(start, at) && c.logger != nil {
				c.logger.Warn("Failed over to another configserver", "from", config.RedactURL(c.bases[start].String()), "to", config.RedactURL(c.bases[at].String()))
			}
			return err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if n > 1 {
		// None answered: the next request starts with the one after
		// the current, which may be back first.
		c.cur.CompareAndSwap(start, (start+1)%n)
	}
	return err
}

// String lists the configservers for messages.
func (c *Configservers) String() string {
	return fmt.Sprint(c.All())
}
