package discovery

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteSummary writes what a valid config holds: counts by mode, then one
// line per origin. It is --config.check's report.
func WriteSummary(w io.Writer, cfg *Config) error {
	byMode := map[Mode]int{}
	for _, t := range cfg.Origins {
		byMode[t.Mode]++
	}
	modes := make([]string, 0, len(byMode))
	for m, n := range byMode {
		modes = append(modes, fmt.Sprintf("%s %d", m, n))
	}
	sort.Strings(modes)
	custom := len(cfg.Modules) - len(BuiltinModules())
	fmt.Fprintf(w, "%d origins (%s), %d modules of its own, %d static leaves; interval %s, timeout %s by default\n",
		len(cfg.Origins), strings.Join(modes, ", "), custom, len(cfg.Leaves), cfg.Interval, cfg.Timeout)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORIGIN_ID\tMODE\tTARGET\tINTERVAL\tTIMEOUT")
	for _, t := range cfg.Origins {
		target := t.URL
		if target == "" {
			target = t.Address
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Mode, target, t.Interval, t.Timeout)
	}
	return tw.Flush()
}

// CheckFile validates the config file at path, as the configserver and a
// standalone leaf would load it with limits lim, and returns the config.
func CheckFile(path string, lim Limits) (*Config, error) {
	f := NewFile(path)
	f.SetLimits(lim)
	l, err := f.Load(false)
	if err != nil {
		return nil, err
	}
	return l.Config, nil
}

// CheckCommand is the programs' --config.check: it validates the config
// file at path within limits lim and writes every error with its line to
// errOut (status 1) or a summary of its origins to out (status 0).
func CheckCommand(path string, lim Limits, out, errOut io.Writer) int {
	cfg, err := CheckFile(path, lim)
	if err != nil {
		fmt.Fprintf(errOut, "FAILED: %v\n", err)
		return 1
	}
	fmt.Fprintf(out, "SUCCESS: %s is valid\n", path)
	if err := WriteSummary(out, cfg); err != nil {
		return 1
	}
	return 0
}
