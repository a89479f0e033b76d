package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/common/version"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/prober"
)

// probeOnce is the probe command.
func probeOnce(o *options) int {
	kinds := prober.DefaultKinds(o.web.Logger())
	cfg := kinds.Base()
	if o.configFile != "" {
		l, err := config.NewFile(o.configFile, kinds.Parser(*o.limits)).Load(false)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%v\n", err)
			return 2
		}
		cfg = l.Config
	}
	timeout := o.probeTimeout.get()
	t, m, err := cfg.ProbeTarget(o.probeTarget, o.probeModule, timeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		return 2
	}
	p := prober.NewProber(version.ComponentUserAgent("oxcross-leaf"), kinds)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r := p.Probe(ctx, &t, &m, nil)
	shown := t
	shown.URL = config.RedactURL(t.URL)
	if err := prober.WriteReport(os.Stdout, &shown, r, time.Now()); err != nil {
		return 2
	}
	if !r.Success {
		return 1
	}
	return 0
}
