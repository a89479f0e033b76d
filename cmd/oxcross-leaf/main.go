// Command oxcross-leaf probes the origins its config lists and exports the
// results as Prometheus metrics; `oxcross-leaf probe TARGET` runs one probe
// and prints it; `--config.check FILE` validates a config.
package main

import (
	"os"
	"strconv"

	"github.com/alecthomas/kingpin/v2"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/service"
	"github.com/oxcross/oxcross/prober"
	"github.com/oxcross/oxcross/push"
)

const name = "oxcross_leaf"

// options are the leaf's command line.
type options struct {
	web            *service.Flags
	configURLs     []string
	configFile     string
	refresh        durationFlag
	watch          durationFlag
	cacheFile      string
	httpClientFile string
	maxConcurrency int
	maxConcurrent  int
	register       bool
	advertise      string
	labels         []string
	pprof          bool
	leafID         string
	check          string
	probeModule    string
	probeTarget    string
	probeTimeout   durationFlag
	fetchTimeout   durationFlag
	limits         *config.Limits
	push           pushOptions
}

// pushOptions are the --push.* flags.
type pushOptions struct {
	urls           []string
	interval       durationFlag
	httpClientFile string
	labels         []string
	queueMax       int
	protocol       string
}

func main() {
	hostname, _ := os.Hostname()
	var o options
	app := kingpin.New("oxcross-leaf", "Oxcross leaf: probes every origin of its config on schedule and exports latency, success and clock drift as Prometheus metrics. OXCROSS_METRICS_PORT sets the port of the default listen address. Shell completion: eval \"$(oxcross-leaf --completion-script-bash)\" (or --completion-script-zsh).")
	o.web = service.AddFlags(app, name, "OXCROSS_METRICS_PORT", "9299")
	app.Flag("config.url", "Base URL of the configserver; the config is fetched from <url>/config. Repeat it for configserver replicas (sharing a registry in etcd): the heartbeat and the config fetch go to the current one and fail over to the next when it does not answer or answers 5xx. Either this or --config.file. A user:password@ in it is sent as basic auth and shown as user:xxxxx@ in logs and on pages; --config.http-client-file with a password_file keeps the password out of the command line.").
		Envar("OXCROSS_CONFIG_API_BASE").PlaceHolder("URL").StringsVar(&o.configURLs)
	app.Flag("config.file", "Local target config file (YAML or JSON) for a standalone leaf, reloaded when it changes, on SIGHUP and on POST /-/reload. Either this or --config.url. With the probe command: where to find the config's own modules.").
		PlaceHolder("FILE").StringVar(&o.configFile)
	app.Flag("config.check", "Validate this config file offline, print every error with its line (exit 1) or a summary of its origins (exit 0) and, on stderr, a warning with its line for each thing the original Oxcross ignored or skipped in its JSON, and exit.").
		PlaceHolder("FILE").StringVar(&o.check)
	app.Flag("config.refresh-interval", "How often to ask the configserver for a new config (conditional requests: an unchanged config costs a 304) and to renew this leaf's registration.").
		Default("60s").SetValue(&o.refresh)
	app.Flag("config.fetch-timeout", "How long each request to the configserver (the heartbeat, then the config) may take; at most --config.refresh-interval (or 1s, when that is shorter), so that a configserver that accepts and never answers holds up no more than one refresh.").
		Default(discovery.DefaultFetchTimeout.String()).SetValue(&o.fetchTimeout)
	o.limits = service.AddConfigLimitFlags(app)
	app.Flag("config.watch-interval", "How often to check --config.file for changes.").Default("5s").SetValue(&o.watch)
	app.Flag("config.cache-file", "Where the last good config from the configserver is kept, to start from when the configserver cannot be reached. Empty disables the cache.").
		Default("/var/lib/oxcross-leaf/config.json").StringVar(&o.cacheFile)
	app.Flag("config.http-client-file", "prometheus/common HTTP client config (YAML) for talking to the configserver: tls_config (CA, client certificate), basic_auth, authorization (bearer token file), proxy_url.").
		PlaceHolder("FILE").StringVar(&o.httpClientFile)
	app.Flag("probe.max-concurrency", "Most probes in flight at once across all origins; a probe that finds no free slot before its next one is skipped and counted in oxcross_leaf_probe_skipped_total.").
		Default(strconv.Itoa(prober.DefaultMaxConcurrency)).IntVar(&o.maxConcurrency)
	app.Flag("probe.max-concurrent", "Most /probe requests (blackbox-style probes for Prometheus) probing at once, apart from the scheduled probes of --probe.max-concurrency; a request that finds no free slot within its probe timeout is answered 503.").
		Default(strconv.Itoa(prober.DefaultMaxConcurrentProbes)).IntVar(&o.maxConcurrent)
	app.Flag("leaf.id", "This leaf's id, the source_id label of its metrics.").
		Envar("OXCROSS_LEAF_ID").Default(hostname).StringVar(&o.leafID)
	app.Flag("leaf.register", "Register with the configserver (heartbeat at start and at every refresh, removal on shutdown) so that its /sd/leaves lists this leaf.").
		Default("true").BoolVar(&o.register)
	app.Flag("leaf.advertise-address", "host:port where Prometheus scrapes this leaf, sent to the configserver. Default: the port of --web.listen-address, at the address the configserver sees the leaf's requests come from.").
		PlaceHolder("HOST:PORT").StringVar(&o.advertise)
	app.Flag("leaf.label", "A label of this leaf, key=value, for /sd/leaves and leaf selectors. Repeatable.").
		PlaceHolder("KEY=VALUE").StringsVar(&o.labels)
	app.Flag("push.url", "Also push this leaf's metrics by Prometheus remote write to this URL (the full endpoint, e.g. http://prometheus:9090/api/v1/write), for leaves Prometheus cannot scrape. Repeatable: each URL has its own queue. See docs/push.md.").
		PlaceHolder("URL").StringsVar(&o.push.urls)
	app.Flag("push.interval", "How often to gather and push the metrics.").
		Default(push.DefaultInterval.String()).SetValue(&o.push.interval)
	app.Flag("push.http-client-file", "prometheus/common HTTP client config (YAML) for the remote-write endpoints: tls_config, basic_auth, authorization (bearer token file), oauth2, proxy_url.").
		PlaceHolder("FILE").StringVar(&o.push.httpClientFile)
	app.Flag("push.label", "An external label added to every pushed series, NAME=VALUE; overrides the default job=\"oxcross-leaf\" and the --leaf.label ones, which are added too; leaf_id is always the leaf's id. Repeatable.").
		PlaceHolder("NAME=VALUE").StringsVar(&o.push.labels)
	app.Flag("push.queue-max-samples", "Most samples queued per URL while it cannot be reached (a native histogram counts as one); beyond it the oldest are dropped and counted in oxcross_leaf_push_samples_dropped_total{reason=\"queue_full\"}.").
		Default(strconv.Itoa(push.DefaultQueueMaxSamples)).IntVar(&o.push.queueMax)
	app.Flag("push.protocol", "Remote write protocol: 1.0 (Prometheus 2.x, VictoriaMetrics, Mimir, Thanos) or 2.0 (Prometheus 3 with --web.remote-write-receiver.accepted-protobuf-messages).").
		Default(push.Protocol1).EnumVar(&o.push.protocol, push.Protocol1, push.Protocol2)
	app.Flag("web.enable-pprof", "Serve Go's profiles at /debug/pprof/ (behind the web config like every other path).").
		Default("false").BoolVar(&o.pprof)

	run := app.Command("run", "Probe the config's origins and serve /metrics, /probe and the status page (the default).").Default()
	probe := app.Command("probe", "Probe TARGET once now and print the measurements; exit 0 on success, 1 on failure.")
	probe.Flag("module", "Module to probe with: simple, advanced, tcp, icmp, or one defined in --config.file.").
		Short('m').Default(prober.DefaultProbeModule).StringVar(&o.probeModule)
	probe.Flag("timeout", "The probe's timeout.").Default("10s").SetValue(&o.probeTimeout)
	probe.Arg("target", "URL (simple, advanced), host:port (tcp, dns; dns defaults to port 53) or host (icmp).").Required().StringVar(&o.probeTarget)

	cmd := kingpin.MustParse(app.Parse(os.Args[1:]))
	if o.check != "" {
		parser := prober.DefaultKinds(o.web.Logger()).Parser(*o.limits)
		os.Exit(config.Check(o.check, parser, os.Stdout, os.Stderr))
	}
	switch cmd {
	case probe.FullCommand():
		os.Exit(probeOnce(&o))
	case run.FullCommand():
		os.Exit(runLeaf(&o))
	}
}
