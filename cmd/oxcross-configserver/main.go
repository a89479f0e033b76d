// Command oxcross-configserver serves the Oxcross target config to leaves.
package main

import (
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/internal/service"
	"github.com/oxcross/oxcross/internal/statuspage"
	"github.com/oxcross/oxcross/prober"
)

const name = "oxcross_configserver"

func main() {
	app := kingpin.New("oxcross-configserver", "Oxcross configserver: serves the target config to every leaf at /config, reloads it when the file changes, keeps the registry of live leaves and serves Prometheus http_sd lists at /sd/leaves and /sd/origins. Shell completion: eval \"$(oxcross-configserver --completion-script-bash)\".")
	flags := service.AddFlags(app, name, "", "9300")
	configFile := app.Flag("config.file", "Target config file (YAML or JSON). Reloaded on SIGHUP, POST /-/reload, and when its content changes.").
		Envar("OXCROSS_CONF").Default("/etc/oxcross/config.yaml").String()
	watchInterval := app.Flag("config.watch-interval", "How often to check the config file for changes (it is read anew, so a Kubernetes ConfigMap's symlink swap is seen).").
		Default("5s").Duration()
	maxLeaves := app.Flag("registry.max-leaves", "Most leaves the registry holds; registrations beyond it are refused with 429.").
		Default(strconv.Itoa(configserver.DefaultMaxLeaves)).Int()
	maxPerSource := app.Flag("registry.max-leaves-per-source", "Without authentication (open mode): most live leaf ids registered from one source address; registrations beyond it are refused with 429. 0: no limit (behind a reverse proxy or NAT, where every leaf has the same source; better, authenticate the leaves).").
		Default(strconv.Itoa(configserver.DefaultMaxLeavesPerSource)).Int()
	identities := app.Flag("registry.identities", "YAML file granting authenticated identities (basic-auth users, client certificates' common and DNS names) leaf ids: identity: [glob patterns]; [] grants none. An identity not listed may hold the id of its own name only. Reread on SIGHUP, POST /-/reload and when it changes. Needs basic_auth_users or verified client certificates in --web.config.file.").
		PlaceHolder("FILE").String()
	allowCIDRs := app.Flag("registry.allow-address-cidr", "A network (CIDR) whose addresses leaves may advertise whatever address their registration comes from, e.g. when a reverse proxy fronts the configserver. Repeatable. Outside these, a leaf may only advertise the address its request comes from.").
		Strings()
	etcdFlags := addEtcdFlags(app)
	limits := service.AddConfigLimitFlags(app)
	check := app.Flag("config.check", "Validate this config file offline, print every error with its line (exit 1) or a summary of its origins (exit 0) and, on stderr, a warning with its line for each thing the original Oxcross ignored or skipped in its JSON, and exit.").
		PlaceHolder("FILE").String()
	kingpin.MustParse(app.Parse(os.Args[1:]))
	logger := flags.Logger()
	// The configserver never probes; it knows the kinds to validate their
	// modules.
	parser := prober.DefaultKinds(logger).Parser(*limits)
	if *check != "" {
		os.Exit(config.Check(*check, parser, os.Stdout, os.Stderr))
	}
	if *maxPerSource < 0 {
		logger.Error("Bad --registry.max-leaves-per-source: want 0 (no limit) or more", "value", *maxPerSource)
		os.Exit(2)
	}
	ropts := configserver.RegistryOptions{MaxLeaves: *maxLeaves, MaxLeavesPerSource: *maxPerSource}
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
	store, err := etcdFlags.store(reg, logger)
	if err != nil {
		logger.Error("Cannot use the registry's etcd", "err", err)
		os.Exit(2)
	}
	if store != nil {
		defer store.Close()
		ropts.Store = store
		logger.Info("The leaf registry lives in etcd, shared by every replica", "endpoints", strings.Join(store.Endpoints(), ","), "prefix", *etcdFlags.prefix)
	}
	auth := configserver.WebConfigAuthentication(*flags.Web.WebConfigFile)
	srv, err := configserver.New(*configFile, configserver.Options{Parser: parser, Registry: ropts, Authentication: auth, IdentitiesFile: *identities}, reg, logger)
	if err != nil {
		// One log line per problem, as --config.check prints them, rather
		// than one line with every problem joined by escaped newlines.
		for _, problem := range strings.Split(err.Error(), "\n") {
			logger.Error("Cannot load the config", "err", strings.TrimSpace(problem))
		}
		os.Exit(1)
	}
	switch a, err := auth(); {
	case err != nil:
		logger.Error("Cannot read the web config", "err", err)
		os.Exit(1)
	case a.Enabled():
		logger.Info("The leaf registry is in identity mode: a leaf id belongs to the identity the web config authenticates", "basic_auth", a.BasicAuth, "client_certificates", a.ClientCerts)
	default:
		logger.Warn("The leaf registry is in open mode: without basic_auth_users or verified client certificates in --web.config.file, anyone who reaches the configserver may register leaf ids nobody holds, first come, first served (see docs/security.md)", "max_leaves_per_source", *maxPerSource)
		if *identities != "" {
			logger.Warn("--registry.identities has no effect until the web config authenticates requests", "file", *identities)
		}
	}
	mux := configserver.NewMux(srv)
	mux.Handle("GET /metrics", service.MetricsHandler(reg))
	mux.HandleFunc("GET /-/healthy", service.Healthy)
	mux.HandleFunc("GET /healthz", service.Healthy)
	mux.HandleFunc("GET /-/ready", service.Ready(srv.Ready))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		l := srv.Current()
		page := statuspage.Configserver{
			Version: version.Info(), File: *configFile, ETag: l.ETag, Leaves: srv.Leaves(), Origins: l.Config.Origins,
			Store: statuspage.RegistryStore(srv.Registry().StoreStatus()), Now: time.Now(), Refresh: 15,
		}
		if err := statuspage.RenderConfigserver(w, page); err != nil {
			logger.Error("Rendering the status page", "err", err)
		}
	})

	ctx, stop := service.SignalContext()
	defer stop()
	go service.OnSIGHUP(ctx, func() {
		if err := srv.Reload(); err == nil {
			logger.Info("Reloaded config on SIGHUP")
		}
	})
	go srv.Watch(ctx, max(*watchInterval, 100*time.Millisecond))
	go srv.Registry().Run(ctx)

	if err := flags.Serve(ctx, mux, logger); err != nil {
		logger.Error("Server failed", "err", err)
		os.Exit(1)
	}
	logger.Info("Stopped")
}
