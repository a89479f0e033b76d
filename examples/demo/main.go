// Command demo runs Oxcross end to end on loopback: it builds the three
// binaries, starts an origin, a configserver serving examples/demo.yaml and
// a leaf following it, and prints what the leaf measures until Ctrl-C.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/leafview"
	"github.com/oxcross/oxcross/prober"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	config := flag.String("config", "examples/demo.yaml", "config the configserver serves")
	duration := flag.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
	every := flag.Duration("every", 2*time.Second, "how often to print the table")
	logs := flag.String("logs", "", "directory for the three programs' logs (default: a temporary directory)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, port := range []string{"19299", "19300", "19301"} {
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			return fmt.Errorf("the demo needs 127.0.0.1:%s free: %w", port, err)
		}
		l.Close()
	}
	tmp, err := os.MkdirTemp("", "oxcross-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	logDir := *logs
	if logDir == "" {
		logDir = tmp
	}
	bin := filepath.Join(tmp, "bin")
	fmt.Println("Building oxcross-origin, oxcross-configserver and oxcross-leaf ...")
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/oxcross-origin", "./cmd/oxcross-configserver", "./cmd/oxcross-leaf")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building: %w", err)
	}
	procs := []struct {
		name string
		args []string
	}{
		{"oxcross-origin", []string{"--web.listen-address=127.0.0.1:19301"}},
		{"oxcross-configserver", []string{"--web.listen-address=127.0.0.1:19300", "--config.file=" + *config}},
		{"oxcross-leaf", []string{"--web.listen-address=127.0.0.1:19299", "--config.url=http://127.0.0.1:19300",
			"--config.refresh-interval=10s", "--config.cache-file=" + filepath.Join(tmp, "leaf-cache.json"), "--leaf.id=demo-leaf"}},
	}
	var cmds []*exec.Cmd
	defer func() {
		for i := len(cmds) - 1; i >= 0; i-- {
			_ = cmds[i].Process.Signal(syscall.SIGTERM)
			_ = cmds[i].Wait()
		}
	}()
	for _, p := range procs {
		logFile, err := os.Create(filepath.Join(logDir, p.name+".log"))
		if err != nil {
			return err
		}
		defer logFile.Close()
		c := exec.Command(filepath.Join(bin, p.name), p.args...)
		c.Stdout, c.Stderr = logFile, logFile
		if err := c.Start(); err != nil {
			return fmt.Errorf("starting %s: %w", p.name, err)
		}
		cmds = append(cmds, c)
		fmt.Printf("Started %-21s pid %-7d %v\n", p.name, c.Process.Pid, p.args)
		// The configserver must be up before the leaf asks it for a config.
		if err := waitHealthy(ctx, p.args[0][len("--web.listen-address="):]); err != nil {
			return fmt.Errorf("%s did not come up (log: %s): %w", p.name, logFile.Name(), err)
		}
	}
	fmt.Printf("Logs in %s. Ctrl-C stops the demo.\n\n", logDir)
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	client := &http.Client{Timeout: 2 * time.Second}
	modes := map[string]string{}
	if cfg, err := fetchConfig(ctx, client); err == nil {
		for _, o := range cfg.Origins {
			modes[o.ID] = o.Module
		}
	}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Println("\nStopping.")
			return nil
		case <-tick.C:
		}
		fams, err := leafview.Scrape(ctx, client, "http://127.0.0.1:19299/metrics")
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			fmt.Println("leaf:", err)
			continue
		}
		fmt.Printf("%s  leaf demo-leaf, as measured from 127.0.0.1:\n", time.Now().Format(time.TimeOnly))
		if err := leafview.Table(os.Stdout, fams.Origins(), modes); err != nil {
			return err
		}
		printPaths(ctx, client)
		fmt.Println()
	}
}

func waitHealthy(ctx context.Context, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/-/healthy")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("no answer on /-/healthy within 10s")
}

func fetchConfig(ctx context.Context, client *http.Client) (*config.Config, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:19300/config", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return prober.DefaultKinds(slog.New(slog.DiscardHandler)).Parser(config.Limits{}).ParseView(body)
}

// printPaths prints the leaf's last trace of each path origin, one line
// per hop, from /api/v1/paths.
func printPaths(ctx context.Context, client *http.Client) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:19299/api/v1/paths", nil)
	if err != nil {
		return
	}
	resp, err := client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	var body struct{ Paths []prober.PathView }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return
	}
	for _, p := range body.Paths {
		if !p.Probed {
			fmt.Printf("\npath to %s: not traced yet\n", p.OriginID)
			continue
		}
		mtu := "not measured"
		if p.MTU > 0 {
			mtu = fmt.Sprint(p.MTU)
		}
		fmt.Printf("\npath to %s (%s, %s): reached %v, path MTU %s\n", p.OriginID, p.Method, p.Target, p.Reached, mtu)
		for _, h := range p.Hops {
			addr := h.Address
			if addr == "" {
				addr = "*"
			}
			fmt.Printf("  %2d  %-39s loss %3.0f%%  min %.3fms  median %.3fms  %s\n", h.Hop, addr, 100*h.Loss, 1000*h.RTTMinSeconds, 1000*h.RTTMedianSeconds, h.Final)
		}
	}
}
