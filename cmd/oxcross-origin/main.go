// Command oxcross-origin answers Oxcross leaves' GET /oxcross probes with
// its clock and a unique token, and serves /healthz and /metrics.
package main

import (
	"log/slog"
	"net/http"
	"os"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/oxcross/oxcross/internal/service"
	"github.com/oxcross/oxcross/origin"
)

const (
	name        = "oxcross_origin"
	description = "Oxcross origin: answers leaves' /oxcross probes with timestamps and a unique token."
)

func main() {
	app := kingpin.New("oxcross-origin", description+" OXCROSS_ORIGIN_PORT sets the port of the default listen address.")
	flags := service.AddFlags(app, name, "OXCROSS_ORIGIN_PORT", "9301")
	kingpin.MustParse(app.Parse(os.Args[1:]))

	logger := flags.Logger()
	if err := run(flags, logger); err != nil {
		logger.Error("oxcross-origin failed", "err", err)
		os.Exit(1)
	}
}

func run(flags *service.Flags, logger *slog.Logger) error {
	service.LogStart(logger, "oxcross-origin")
	reg := service.NewRegistry(name)

	h, err := origin.NewHandler(origin.Options{Registerer: reg})
	if err != nil {
		return err
	}
	landing, err := service.LandingPage("Oxcross origin", description,
		web.LandingLinks{Address: origin.Path, Text: "Probe", Description: "what a leaf's advanced probe receives"},
		web.LandingLinks{Address: "/metrics", Text: "Metrics"},
		web.LandingLinks{Address: "/healthz", Text: "Health"},
	)
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	// The handler answers 405 itself for other methods, so that they are counted.
	mux.Handle(origin.Path, h)
	mux.Handle("GET /metrics", service.MetricsHandler(reg))
	mux.HandleFunc("GET /healthz", service.Healthy)
	mux.HandleFunc("GET /-/healthy", service.Healthy)
	mux.Handle("GET /-/ready", service.Ready(func() error { return nil }))
	mux.Handle("GET /{$}", landing)

	ctx, stop := service.SignalContext()
	defer stop()
	if err := flags.Serve(ctx, mux, logger); err != nil {
		return err
	}
	logger.Info("Stopped oxcross-origin")
	return nil
}
