package config

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteSummary writes what a valid config holds: counts by module, then
// one line per origin, URLs with their userinfo redacted. It is
// --config.check's report.
func WriteSummary(w io.Writer, cfg *Config) error {
	byModule := map[string]int{}
	for _, t := range cfg.Origins {
		byModule[t.Module]++
	}
	modules := make([]string, 0, len(byModule))
	for m, n := range byModule {
		modules = append(modules, fmt.Sprintf("%s %d", m, n))
	}
	sort.Strings(modules)
	own := 0
	for name := range cfg.Modules {
		if cfg.kinds == nil || !cfg.kinds.IsBuiltin(name) {
			own++
		}
	}
	fmt.Fprintf(w, "%d origins (%s), %d modules of its own, %d static leaves; interval %s, timeout %s by default\n",
		len(cfg.Origins), strings.Join(modules, ", "), own, len(cfg.Leaves), cfg.Interval, cfg.Timeout)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORIGIN_ID\tMODE\tTARGET\tINTERVAL\tTIMEOUT")
	for _, t := range cfg.Origins {
		target := RedactURL(t.URL)
		if target == "" {
			target = t.Address
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Module, target, t.Interval, t.Timeout)
	}
	return tw.Flush()
}

// Check is the programs' --config.check: it validates the config file at
// path with parser, as the configserver and a standalone leaf would load
// it, and writes every error with its line to errOut (status 1) or a
// summary of its origins to out (status 0). The warnings of a valid file
// (Config.Warnings) go to errOut, one a line, with its line.
func Check(path string, parser Parser, out, errOut io.Writer) int {
	l, err := NewFile(path, parser).Load(false)
	if err != nil {
		fmt.Fprintf(errOut, "FAILED: %v\n", err)
		return 1
	}
	for _, w := range l.Config.Warnings {
		fmt.Fprintf(errOut, "WARNING: config file %s: %s\n", path, w)
	}
	fmt.Fprintf(out, "SUCCESS: %s is valid\n", path)
	if err := WriteSummary(out, l.Config); err != nil {
		return 1
	}
	return 0
}
