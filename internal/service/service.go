// Package service holds what the three Oxcross binaries share around their
// HTTP servers: the standard Prometheus flags (web listen address and web
// config, log level and format), the landing page, health endpoints and a
// server that shuts down cleanly when its context ends.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/oxcross/oxcross/config"
)

// ShutdownTimeout bounds how long a server waits for in-flight requests
// after SIGTERM before it closes their connections.
const ShutdownTimeout = 10 * time.Second

// DefaultReadHeaderTimeout is how long a client may take to send a
// request's headers unless --web.read-header-timeout says otherwise.
const DefaultReadHeaderTimeout = 10 * time.Second

// Flags are the command-line flags every Oxcross binary has.
type Flags struct {
	Web *web.FlagConfig
	Log *promslog.Config
	// ReadHeaderTimeout is --web.read-header-timeout.
	ReadHeaderTimeout time.Duration
}

// AddFlags registers --web.listen-address, --web.config.file, --log.level,
// --log.format and --version on app, and sends its help and version to
// stdout. The default listen address is ":<port>",
// where port comes from the environment variable portEnv when it is set (the
// original Oxcross' OXCROSS_ORIGIN_PORT and OXCROSS_METRICS_PORT) and from
// defaultPort otherwise.
func AddFlags(app *kingpin.Application, name, portEnv, defaultPort string) *Flags {
	port := defaultPort
	if portEnv != "" {
		if p := os.Getenv(portEnv); p != "" {
			port = p
		}
	}
	f := &Flags{Log: &promslog.Config{}}
	f.Web = kingpinflag.AddFlags(app, ":"+port)
	promslogflag.AddFlags(app, f.Log)
	app.Flag("web.read-header-timeout", "How long a client may take to send a request's headers; slower clients (a slowloris trickling its headers) are disconnected.").
		Default(DefaultReadHeaderTimeout.String()).DurationVar(&f.ReadHeaderTimeout)
	// The program's name as it is invoked (oxcross-leaf), not its metric
	// prefix; help and version on stdout, as Prometheus' programs print
	// them, so that `oxcross-leaf --help | less` works.
	app.Version(version.Print(app.Name))
	app.UsageWriter(os.Stdout)
	app.UsageTemplate(UsageTemplate)
	app.HelpFlag.Short('h')
	app.PreAction(func(c *kingpin.ParseContext) error {
		for _, e := range c.Elements {
			if fc, ok := e.Clause.(*kingpin.FlagClause); ok && fc.Model().Name == "help-man" {
				if err := app.UsageForContextWithTemplate(c, 2, ManPageTemplate(app.Name, app.Help)); err != nil {
					return err
				}
				os.Exit(0)
			}
		}
		return nil
	})
	return f
}

// UsageTemplate is kingpin's default usage template, but a command's help
// (`oxcross-leaf probe --help`) lists the command's own flags first and
// the program's, which every command shares, after them, rather than the
// program's dozens of server flags before the command's two.
var UsageTemplate = strings.Replace(kingpin.DefaultUsageTemplate, `{{if .Context.Flags -}}
Flags:
{{.Context.Flags|FlagsToTwoColumns|FormatTwoColumns}}
{{end -}}`, `{{if .Context.SelectedCommand -}}
{{if .Context.SelectedCommand.Flags -}}
Flags of {{.Context.SelectedCommand.FullCommand}}:
{{.Context.SelectedCommand.Flags|FlagsToTwoColumns|FormatTwoColumns}}
{{end -}}
{{if .App.Flags -}}
Flags of {{.App.Name}}:
{{.App.Flags|FlagsToTwoColumns|FormatTwoColumns}}
{{end -}}
{{else if .Context.Flags -}}
Flags:
{{.Context.Flags|FlagsToTwoColumns|FormatTwoColumns}}
{{end -}}`, 1)

// ManPageTemplate is kingpin's --help-man template with a valid header and
// NAME section: kingpin puts the application's version (here the several
// lines of version.Print) unquoted into .TH, and only the name under NAME.
// The header here is .TH NAME 1 "build date" "name version", and NAME reads
// "name \- the first sentence of help", as whatis and lexgrog want it.
func ManPageTemplate(name, help string) string {
	date := ""
	if t, err := time.Parse("20060102-15:04:05", version.BuildDate); err == nil {
		date = t.Format("2006-01-02")
	}
	summary, _, _ := strings.Cut(help, ". ")
	summary = strings.TrimSuffix(summary, ".")
	if _, after, ok := strings.Cut(summary, ": "); ok {
		summary = after
	}
	summary = strings.ReplaceAll(summary, `\`, `\e`)
	t := strings.Replace(kingpin.ManPageTemplate,
		`.TH {{.App.Name}} 1 {{.App.Version}} "{{.App.Author}}"`,
		fmt.Sprintf(".TH %s 1 %q %q %q", strings.ToUpper(name), date, name+" "+version.Version, "User Commands"), 1)
	return strings.Replace(t, ".SH \"NAME\"\n{{.App.Name}}\n", ".SH \"NAME\"\n{{.App.Name}} \\- "+summary+"\n", 1)
}

// Logger returns the logger the log flags ask for.
func (f *Flags) Logger() *slog.Logger {
	return promslog.New(f.Log)
}

// NewRegistry returns a registry with the Go runtime, process and
// <name>_build_info metrics.
func NewRegistry(name string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector(name),
	)
	return reg
}

// MetricsHandler serves reg's metrics, negotiating OpenMetrics (and so
// native histograms' exemplars and created timestamps) with scrapers that ask.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true})
}

// LogStart logs the program's version and build context, as Prometheus
// programs do when they start.
func LogStart(logger *slog.Logger, program string, args ...any) {
	logger.Info("Starting "+program, append([]any{"version", version.Info()}, args...)...)
	logger.Info("Build context", "build_context", version.BuildContext())
}

// OnSIGHUP calls fn on every SIGHUP until ctx ends.
func OnSIGHUP(ctx context.Context, fn func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			fn()
		}
	}
}

// LandingPage returns the landing page at "/" linking to links.
func LandingPage(name, description string, links ...web.LandingLinks) (http.Handler, error) {
	lp, err := web.NewLandingPage(web.LandingConfig{
		Name:        name,
		Description: description,
		Version:     version.Info(),
		Links:       links,
		Profiling:   "false",
	})
	if err != nil {
		return nil, fmt.Errorf("creating landing page: %w", err)
	}
	return lp, nil
}

// Healthy answers 200 "Healthy." for /-/healthy and /healthz.
func Healthy(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("Healthy.\n"))
}

// Ready returns a handler for /-/ready that answers 200 while ready reports
// nil and 503 with the reason otherwise.
func Ready(ready func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "Not ready: %v\n", err)
			return
		}
		_, _ = w.Write([]byte("Ready.\n"))
	}
}

// SignalContext returns a context that ends on SIGTERM or SIGINT.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// AddConfigLimitFlags registers --config.max-origins and
// --config.min-interval, the limits a target config must keep, on app.
func AddConfigLimitFlags(app *kingpin.Application) *config.Limits {
	lim := &config.Limits{}
	app.Flag("config.max-origins", "Most origins a config may list; a config with more is refused, and so is one of more than 160 YAML nodes per origin allowed plus 100,000, before it is parsed (0: neither limit).").
		Default(strconv.Itoa(config.DefaultLimits.MaxOrigins)).IntVar(&lim.MaxOrigins)
	app.Flag("config.min-interval", "Shortest probe interval a config may set; a config with a shorter one is refused (0s: no limit).").
		Default(config.DefaultLimits.MinInterval.String()).DurationVar(&lim.MinInterval)
	return lim
}

// Serve serves h on the listeners and with the TLS and authentication of
// the flags' web config, until ctx ends; then it stops accepting, waits up
// to ShutdownTimeout for in-flight requests and returns nil. A listener or
// web config error is returned at once. Clients get
// --web.read-header-timeout (DefaultReadHeaderTimeout if not positive) to
// send their headers.
func (f *Flags) Serve(ctx context.Context, h http.Handler, logger *slog.Logger) error {
	readHeaderTimeout := f.ReadHeaderTimeout
	if readHeaderTimeout <= 0 {
		readHeaderTimeout = DefaultReadHeaderTimeout
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- web.ListenAndServe(srv, f.Web, logger) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down HTTP server: %w", err)
	}
	<-errc
	return nil
}

// RegisterPprof serves net/http/pprof's profiles under /debug/pprof/ on mux.
func RegisterPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
