package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/version"

	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/prober"
)

// probeOnce is the probe command.
func probeOnce(o *options) int {
	modules := discovery.BuiltinModules()
	if o.configFile != "" {
		cfg, err := discovery.CheckFile(o.configFile, *o.limits)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%v\n", err)
			return 2
		}
		modules = cfg.Modules
	}
	timeout := o.probeTimeout.get()
	t, m, err := discovery.ProbeTarget(o.probeTarget, o.probeModule, modules, timeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		return 2
	}
	logger := promslog.New(o.web.Log)
	p := prober.NewProberWithRegistry(version.ComponentUserAgent("oxcross-leaf"), prober.NewRegistry(logger))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r := p.ProbeModule(ctx, t, &m, nil)
	if err := prober.WriteReport(os.Stdout, t, o.probeModule, r, time.Now()); err != nil {
		return 2
	}
	if !r.Success {
		return 1
	}
	return 0
}
