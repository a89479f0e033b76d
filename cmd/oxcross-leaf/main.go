// Command oxcross-leaf probes the origins its config lists and exports the
// results as Prometheus metrics.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/service"
	"github.com/oxcross/oxcross/prober"
)

const name = "oxcross_leaf"

func main() {
	hostname, _ := os.Hostname()
	app := kingpin.New("oxcross-leaf", "Oxcross leaf: probes every origin of its config on schedule and exports latency, success and clock drift as Prometheus metrics. OXCROSS_METRICS_PORT sets the port of the default listen address.")
	flags := service.AddFlags(app, name, "OXCROSS_METRICS_PORT", "9299")
	configURL := app.Flag("config.url", "Base URL of the configserver; the config is fetched from <url>/config. Either this or --config.file.").
		Envar("OXCROSS_CONFIG_API_BASE").String()
	configFile := app.Flag("config.file", "Local target config file (YAML or JSON) for a standalone leaf, reloaded when it changes and on SIGHUP. Either this or --config.url.").String()
	refresh := app.Flag("config.refresh-interval", "How often to ask the configserver for a new config (conditional requests: an unchanged config costs a 304).").
		Default("60s").Duration()
	watch := app.Flag("config.watch-interval", "How often to check --config.file for changes.").Default("5s").Duration()
	cacheFile := app.Flag("config.cache-file", "Where the last good config from the configserver is kept, to start from when the configserver cannot be reached. Empty disables the cache.").
		Default("/var/lib/oxcross-leaf/config.json").String()
	maxConcurrency := app.Flag("probe.max-concurrency", "Most probes in flight at once across all origins; a probe that finds no free slot before its next one is skipped and counted in oxcross_leaf_probe_skipped_total.").
		Default(strconv.Itoa(prober.DefaultMaxConcurrency)).Int()
	httpClientFile := app.Flag("config.http-client-file", "prometheus/common HTTP client config (YAML) for talking to the configserver: tls_config (CA, client certificate), basic_auth, authorization (bearer token file), proxy_url.").String()
	register := app.Flag("leaf.register", "Register with the configserver (heartbeat at start and at every refresh, removal on shutdown) so that its /sd/leaves lists this leaf.").Default("true").Bool()
	advertise := app.Flag("leaf.advertise-address", "host:port where Prometheus scrapes this leaf, sent to the configserver. Default: the port of --web.listen-address, at the address the configserver sees the leaf's requests come from.").String()
	leafLabels := app.Flag("leaf.label", "A label of this leaf, key=value, for /sd/leaves and leaf selectors. Repeatable.").Strings()
	pprofOn := app.Flag("web.enable-pprof", "Serve Go's profiles at /debug/pprof/ (behind the web config like every other path).").Default("false").Bool()
	leafID := app.Flag("leaf.id", "This leaf's id, the source_id label of its metrics.").
		Envar("OXCROSS_LEAF_ID").Default(hostname).String()
	kingpin.MustParse(app.Parse(os.Args[1:]))
	logger := flags.Logger()
	if (*configURL == "") == (*configFile == "") {
		logger.Error("Give exactly one of --config.url (or OXCROSS_CONFIG_API_BASE) and --config.file")
		os.Exit(2)
	}
	if *leafID == "" {
		logger.Error("--leaf.id is empty and the hostname is unknown: set --leaf.id or OXCROSS_LEAF_ID")
		os.Exit(2)
	}
	service.LogStart(logger, "oxcross-leaf", "leaf_id", *leafID)
	reg := service.NewRegistry(name)
	agent := version.ComponentUserAgent("oxcross-leaf")
	probes := prober.NewProberWithRegistry(agent, prober.NewRegistry(logger))
	sched := prober.NewSchedulerWithLimit(probes, prober.NewMetrics(reg), *leafID, logger, *maxConcurrency)
	probeHandler := prober.NewHandler(probes, logger)

	opts := discovery.FollowerOptions{
		RefreshInterval: *refresh,
		WatchInterval:   max(*watch, 100*time.Millisecond),
		Apply: func(c *discovery.Config) {
			sched.ApplyConfig(c)
			probeHandler.SetConfig(c)
		},
		Logger:     logger,
		Registerer: reg,
	}
	var registrar *discovery.Registrar
	if *configURL != "" {
		client, err := configClient(*httpClientFile)
		if err != nil {
			logger.Error("Bad --config.http-client-file", "err", err)
			os.Exit(2)
		}
		remote, err := discovery.NewRemote(*configURL, client, agent)
		if err != nil {
			logger.Error("Bad --config.url", "err", err)
			os.Exit(2)
		}
		remote.SetLeafID(*leafID)
		opts.Remote, opts.CacheFile = remote, *cacheFile
		if *register {
			reg := discovery.Registration{Address: *advertise, Labels: map[string]string{}, Version: version.Version, RefreshInterval: refresh.String()}
			if reg.Address == "" {
				reg.Address = advertisedPort((*flags.Web.WebListenAddresses)[0])
			}
			for _, l := range *leafLabels {
				k, v, err := discovery.ParseLabelFlag(l)
				if err != nil {
					logger.Error("Bad --leaf.label", "label", l, "err", err)
					os.Exit(2)
				}
				reg.Labels[k] = v
			}
			registrar, err = discovery.NewRegistrar(*configURL, client, agent, *leafID, reg)
			if err != nil {
				logger.Error("Cannot register with the configserver", "err", err)
				os.Exit(2)
			}
			opts.Heartbeat = registrar.Heartbeat
		}
		logger.Info("Following the configserver", "url", remote.URL(), "refresh_interval", *refresh, "cache_file", *cacheFile)
	} else {
		opts.File = discovery.NewFile(*configFile)
		logger.Info("Standalone: following the config file", "file", *configFile)
	}
	follower, err := discovery.NewFollower(opts)
	if err != nil {
		logger.Error("Cannot follow the config", "err", err)
		os.Exit(2)
	}

	landing, err := service.LandingPage("Oxcross leaf", "Probes origins and exports their latency, success and clock drift.",
		web.LandingLinks{Address: "/metrics", Text: "Metrics", Description: "Probe results and the leaf's own metrics"},
		web.LandingLinks{Address: "/probe?module=simple&target=http://127.0.0.1:9299/-/healthy", Text: "Probe", Description: "A blackbox-style probe now: /probe?target=…&module=simple|advanced|tcp|icmp|<config module>"},
		web.LandingLinks{Address: "/-/ready", Text: "Ready", Description: "Whether the leaf has a config to probe with"})
	if err != nil {
		logger.Error("Cannot create the landing page", "err", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", service.MetricsHandler(reg))
	mux.Handle("GET /probe", probeHandler)
	mux.HandleFunc("GET /-/healthy", service.Healthy)
	mux.HandleFunc("GET /-/ready", service.Ready(follower.Ready))
	mux.Handle("GET /{$}", landing)
	if *pprofOn {
		service.RegisterPprof(mux)
	}

	ctx, stop := service.SignalContext()
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		service.OnSIGHUP(ctx, func() {
			logger.Info("SIGHUP: reloading the config")
			follower.Reload()
		})
	})
	wg.Go(func() { follower.Run(ctx) })

	serveErr := service.Serve(ctx, mux, flags.Web, logger)
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
		os.Exit(1)
	}
	logger.Info("Stopped")
}

// configClient returns the HTTP client for the configserver, configured by
// a prometheus/common HTTP client config file when one is given.
func configClient(file string) (*http.Client, error) {
	if file == "" {
		return &http.Client{Timeout: 30 * time.Second}, nil
	}
	cfg, _, err := promconfig.LoadHTTPConfigFile(file)
	if err != nil {
		return nil, err
	}
	c, err := promconfig.NewClientFromConfig(*cfg, "oxcross-leaf")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	c.Timeout = 30 * time.Second
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
