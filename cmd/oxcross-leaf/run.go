package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/version"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/service"
	"github.com/oxcross/oxcross/internal/statuspage"
	"github.com/oxcross/oxcross/prober"
	"github.com/oxcross/oxcross/push"
)

// runLeaf wires the leaf together and serves until SIGTERM; it returns the
// exit status.
func runLeaf(o *options) int {
	logger := o.web.Logger()
	if (len(o.configURLs) == 0) == (o.configFile == "") {
		logger.Error("Give exactly one of --config.url (or OXCROSS_CONFIG_API_BASE) and --config.file")
		return 2
	}
	if o.maxConcurrency < 1 {
		logger.Error("Bad --probe.max-concurrency: it must be at least 1", "value", o.maxConcurrency)
		return 2
	}
	if o.maxConcurrent < 1 {
		logger.Error("Bad --probe.max-concurrent: it must be at least 1", "value", o.maxConcurrent)
		return 2
	}
	if err := config.ValidateLeafID(o.leafID); err != nil {
		logger.Error("Bad --leaf.id (or OXCROSS_LEAF_ID; the default is the hostname)", "err", err)
		return 2
	}
	service.LogStart(logger, "oxcross-leaf", "leaf_id", o.leafID)
	reg := service.NewRegistry(name)
	agent := version.ComponentUserAgent("oxcross-leaf")
	kinds := prober.DefaultKinds(logger)
	parser := kinds.Parser(*o.limits)
	probes := prober.NewProber(agent, kinds)
	history := prober.NewHistory()
	// The leaf's own clock, read from the kernel at each scrape.
	reg.MustRegister(prober.NewClockCollector())
	// The probe metrics have a registry of their own: /metrics writes
	// their per-origin families itself and gathers only reg. Whatever
	// needs every family gathers prometheus.Gatherers{reg, probeReg}.
	probeReg := prometheus.NewRegistry()
	metrics := prober.NewMetrics(probeReg)
	sched := prober.NewScheduler(prober.SchedulerOptions{
		Prober: probes, Metrics: metrics, LeafID: o.leafID,
		MaxConcurrency: o.maxConcurrency, History: history, Logger: logger,
	})

	// The follower holds the leaf's one copy of its config: the scheduler
	// is given each new one, /probe and the status page read it.
	opts := discovery.FollowerOptions{
		RefreshInterval: o.refresh.get(),
		WatchInterval:   max(o.watch.get(), 100*time.Millisecond),
		FetchTimeout:    o.fetchTimeout.get(),
		Apply:           sched.Apply,
		Logger:          logger,
		Registerer:      reg,
	}
	configSource := func() string { return o.configFile }
	var registrar *discovery.Registrar
	if len(o.configURLs) > 0 {
		var err error
		if registrar, err = followConfigserver(o, &opts, agent, parser, logger); err != nil {
			logger.Error("Cannot follow the configserver", "err", err)
			return 2
		}
		configSource = opts.Remote.URL
	} else {
		opts.File = config.NewFile(o.configFile, parser)
		logger.Info("Standalone: following the config file", "file", o.configFile)
	}
	follower, err := discovery.NewFollower(opts)
	if err != nil {
		logger.Error("Cannot follow the config", "err", err)
		return 2
	}
	var pusher *push.Pusher
	if len(o.push.urls) > 0 {
		// The gatherer must hold every family /metrics serves.
		if pusher, err = newPusher(o, prometheus.Gatherers{reg, probeReg}, reg, agent, logger); err != nil {
			logger.Error("Cannot push", "err", err)
			return 2
		}
	}
	probeHandler := prober.NewHandler(probes, follower.Config, o.maxConcurrent, logger)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg, reg, logger))
	mux.Handle("GET /probe", probeHandler)
	reverseNames := prober.NewReverseNames(nil)
	mux.Handle("GET /api/v1/paths", prober.NewPathsHandler(history, follower.Config, reverseNames))
	mux.HandleFunc("GET /-/healthy", service.Healthy)
	mux.HandleFunc("GET /-/ready", service.Ready(follower.Ready))
	mux.HandleFunc("POST /-/reload", follower.ServeReload)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		cfg := follower.Config()
		page := statuspage.Leaf{ID: o.leafID, Version: version.Info(), ConfigSource: configSource(), Ready: follower.Ready(), Origins: history.Statuses(cfg), Now: time.Now(), Refresh: 15}
		if cfg != nil {
			page.Paths, _ = history.Paths(r.Context(), cfg, reverseNames, "")
		}
		if pusher != nil {
			page.Push = pusher.Status()
		}
		if lc, ok := prober.ReadLeafClock(); ok {
			page.Clock = &lc
		}
		if err := statuspage.RenderLeaf(w, page); err != nil {
			logger.Error("Rendering the status page", "err", err)
		}
	})
	if o.pprof {
		service.RegisterPprof(mux)
	}

	ctx, stop := service.SignalContext()
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		service.OnSIGHUP(ctx, func() {
			logger.Info("SIGHUP: reloading the config")
			_ = follower.Reload(ctx) // a failure is logged by the follower
		})
	})
	wg.Go(func() { follower.Run(ctx) })
	if pusher != nil {
		// Run ends after pushing every series' stale marker.
		wg.Go(func() { pusher.Run(ctx) })
	}

	serveErr := o.web.Serve(ctx, mux, logger)
	stop()
	wg.Wait()
	sched.Stop()
	if registrar != nil {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := registrar.Deregister(dctx); err != nil {
			logger.Warn("Could not deregister from the configserver", "err", err)
		}
		cancel()
	}
	if serveErr != nil {
		logger.Error("Server failed", "err", serveErr)
		return 1
	}
	logger.Info("Stopped")
	return 0
}

// followConfigserver sets opts up to follow the configserver at
// --config.url and, unless --no-leaf.register, to register with it.
func followConfigserver(o *options, opts *discovery.FollowerOptions, agent string, parser config.Parser, logger *slog.Logger) (*discovery.Registrar, error) {
	// The client's own timeout backs up the follower's per-request one.
	client, err := configClient(o.httpClientFile, max(o.refresh.get(), time.Second, o.fetchTimeout.get()))
	if err != nil {
		return nil, fmt.Errorf("--config.http-client-file: %w", err)
	}
	servers, err := discovery.NewConfigservers(o.configURLs, logger)
	if err != nil {
		return nil, err
	}
	remote := discovery.NewRemoteFrom(servers, o.leafID, client, agent, parser)
	opts.Remote, opts.CacheFile = remote, o.cacheFile
	if o.cacheFile != "" {
		// systemd's StateDirectory makes it for the packaged unit; without
		// systemd (containers, WSL, a chroot) the leaf makes it itself.
		if err := os.MkdirAll(filepath.Dir(o.cacheFile), 0o750); err != nil {
			logger.Warn("Cannot create the config cache's directory; the cache write is retried at every refresh", "dir", filepath.Dir(o.cacheFile), "err", err)
		}
	}
	logger.Info("Following the configserver", "url", remote.URL(), "replicas", strings.Join(servers.All(), ","), "refresh_interval", o.refresh.get(), "cache_file", o.cacheFile)
	if !o.register {
		return nil, nil
	}
	reg := discovery.Registration{Address: o.advertise, Labels: map[string]string{}, Version: version.Version, RefreshInterval: o.refresh.get().String()}
	if reg.Address == "" {
		reg.Address = advertisedPort((*o.web.Web.WebListenAddresses)[0])
	}
	for _, l := range o.labels {
		k, v, err := config.ParseLabelFlag(l)
		if err != nil {
			return nil, fmt.Errorf("--leaf.label %q: %w", l, err)
		}
		reg.Labels[k] = v
	}
	registrar, err := discovery.NewRegistrarFrom(servers, client, agent, o.leafID, reg)
	if err != nil {
		return nil, err
	}
	opts.Heartbeat = registrar.Heartbeat
	return registrar, nil
}

// newPusher sets up --push.*: the leaf's metrics, from gatherer, pushed
// with its leaf_id, its labels and the --push.label ones; the pusher's own
// metrics registered in reg.
func newPusher(o *options, gatherer prometheus.Gatherer, reg prometheus.Registerer, agent string, logger *slog.Logger) (*push.Pusher, error) {
	leafLabels := map[string]string{}
	for _, l := range o.labels {
		k, v, err := config.ParseLabelFlag(l)
		if err != nil {
			return nil, fmt.Errorf("--leaf.label %q: %w", l, err)
		}
		leafLabels[k] = v
	}
	external, err := push.ExternalLabels(o.leafID, leafLabels, o.push.labels)
	if err != nil {
		return nil, err
	}
	client, err := configClient(o.push.httpClientFile, push.DefaultTimeout)
	if err != nil {
		return nil, fmt.Errorf("--push.http-client-file: %w", err)
	}
	p, err := push.New(push.Options{
		URLs: o.push.urls, Gatherer: gatherer, Interval: o.push.interval.get(), Client: client,
		ExternalLabels: external, QueueMaxSamples: o.push.queueMax, Protocol: o.push.protocol,
		UserAgent: agent, Registerer: reg, Logger: logger.With("component", "push"),
	})
	if err != nil {
		return nil, fmt.Errorf("--push.*: %w", err)
	}
	for _, s := range p.Status() {
		logger.Info("Pushing by remote write", "url", s.URL, "protocol", s.Protocol, "interval", o.push.interval.get(), "queue_max_samples", o.push.queueMax)
	}
	return p, nil
}

// configClient returns the HTTP client for the configserver, configured by
// a prometheus/common HTTP client config file when one is given.
func configClient(file string, timeout time.Duration) (*http.Client, error) {
	if file == "" {
		return &http.Client{Timeout: timeout}, nil
	}
	cfg, _, err := promconfig.LoadHTTPConfigFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	c, err := promconfig.NewClientFromConfig(*cfg, "oxcross-leaf")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	c.Timeout = timeout
	return c, nil
}

// advertisedPort turns a listen address into the address to advertise:
// its host when it names one, else ":port" for the configserver to fill in
// with the address the registration comes from.
func advertisedPort(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return ":" + port
	}
	return listen
}
