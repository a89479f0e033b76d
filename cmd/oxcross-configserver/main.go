// Command oxcross-configserver serves the Oxcross target config to leaves.
package main

import (
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/internal/service"
)

const name = "oxcross_configserver"

func main() {
	app := kingpin.New("oxcross-configserver", "Oxcross configserver: serves the target config to every leaf at /config and reloads it when the file changes.")
	flags := service.AddFlags(app, name, "", "9300")
	configFile := app.Flag("config.file", "Target config file (YAML or JSON). Reloaded on SIGHUP, POST /-/reload, and when its content changes.").
		Envar("OXCROSS_CONF").Default("/etc/oxcross/config.yaml").String()
	watchInterval := app.Flag("config.watch-interval", "How often to check the config file for changes (it is read anew, so a Kubernetes ConfigMap's symlink swap is seen).").
		Default("5s").Duration()
	maxLeaves := app.Flag("registry.max-leaves", "Most leaves the registry holds; registrations beyond it are refused with 429.").
		Default(strconv.Itoa(configserver.DefaultMaxLeaves)).Int()
	allowCIDRs := app.Flag("registry.allow-address-cidr", "A network (CIDR) whose addresses leaves may advertise whatever address their registration comes from, e.g. when a reverse proxy fronts the configserver. Repeatable. Outside these, a leaf may only advertise the address its request comes from.").
		Strings()
	kingpin.MustParse(app.Parse(os.Args[1:]))
	logger := flags.Logger()
	ropts := configserver.RegistryOptions{MaxLeaves: *maxLeaves}
	for _, c := range *allowCIDRs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			logger.Error("Bad --registry.allow-address-cidr", "cidr", c, "err", err)
			os.Exit(2)
		}
		ropts.AllowedCIDRs = append(ropts.AllowedCIDRs, p.Masked())
	}
	service.LogStart(logger, "oxcross-configserver")
	reg := service.NewRegistry(name)
	srv, err := configserver.NewWithRegistry(*configFile, ropts, reg, logger)
	if err != nil {
		logger.Error("Cannot load the config", "err", err)
		os.Exit(1)
	}
	landing, err := service.LandingPage("Oxcross configserver", "Serves the Oxcross target config to leaves.",
		web.LandingLinks{Address: "/config", Text: "Config", Description: "The config served to leaves"},
		web.LandingLinks{Address: "/sd/leaves", Text: "Leaves", Description: "http_sd list of the live leaves, for Prometheus"},
		web.LandingLinks{Address: "/sd/origins", Text: "Origins", Description: "http_sd list of the origins"},
		web.LandingLinks{Address: "/metrics", Text: "Metrics", Description: "The configserver's own metrics"})
	if err != nil {
		logger.Error("Cannot create the landing page", "err", err)
		os.Exit(1)
	}
	mux := configserver.NewMux(srv)
	mux.Handle("GET /metrics", service.MetricsHandler(reg))
	mux.HandleFunc("GET /-/healthy", service.Healthy)
	mux.HandleFunc("GET /-/ready", service.Ready(func() error { return nil }))
	mux.Handle("GET /{$}", landing)

	ctx, stop := service.SignalContext()
	defer stop()
	go service.OnSIGHUP(ctx, func() {
		if err := srv.Reload(); err == nil {
			logger.Info("Reloaded config on SIGHUP")
		}
	})
	go srv.Watch(ctx, max(*watchInterval, 100*time.Millisecond))

	if err := service.Serve(ctx, mux, flags.Web, logger); err != nil {
		logger.Error("Server failed", "err", err)
		os.Exit(1)
	}
	logger.Info("Stopped")
}
