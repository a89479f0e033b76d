package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	// An aggregation and its grouping clause, if it has one before its
	// argument (the mixin writes `sum by (...) (...)`, never the trailing
	// form).
	aggregation = regexp.MustCompile(`\b(sum|min|max|avg|count|group|stddev|stdvar|quantile|topk|bottomk|count_values|limitk|limit_ratio)\s*(?:(by|without)\s*\(([^)]*)\)\s*)?\(`)
	// A vector matching clause.
	matching = regexp.MustCompile(`\b(on|ignoring)\s*\(([^)]*)\)`)
)

// labelList splits a grouping clause's labels.
func labelList(s string) []string {
	var out []string
	for _, l := range strings.Split(s, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// clusterFindings returns what in expr loses the cluster label: an
// aggregation without `by` it or with `without` it, a vector matching `on`
// without it or `ignoring` it. `or on () vector(...)`, the fallback of an
// empty result, is allowed.
func clusterFindings(expr, label string) []string {
	var out []string
	for _, m := range aggregation.FindAllStringSubmatch(expr, -1) {
		labels := labelList(m[3])
		switch {
		case m[2] == "":
			out = append(out, m[1]+" without a by clause")
		case m[2] == "by" && !slices.Contains(labels, label):
			out = append(out, m[1]+" by ("+m[3]+") without "+label)
		case m[2] == "without" && slices.Contains(labels, label):
			out = append(out, m[1]+" without ("+m[3]+") drops "+label)
		}
	}
	for _, loc := range matching.FindAllStringSubmatchIndex(expr, -1) {
		kind, labels := expr[loc[2]:loc[3]], labelList(expr[loc[4]:loc[5]])
		rest := strings.TrimSpace(expr[loc[1]:])
		switch {
		case kind == "on" && len(labels) == 0 && strings.HasPrefix(rest, "vector("):
		case kind == "on" && !slices.Contains(labels, label):
			out = append(out, expr[loc[0]:loc[1]]+" without "+label)
		case kind == "ignoring" && slices.Contains(labels, label):
			out = append(out, expr[loc[0]:loc[1]]+" ignores "+label)
		}
	}
	return out
}

// lintClusterLabel checks that every aggregation and vector matching of
// the rules, alerts and dashboard queries in dir keeps the cluster label
// (_config.clusterLabel), that every dashboard query selects the cluster
// variable, and that the cluster variable picks one cluster at a time.
func lintClusterLabel(dir, label string, add func(string, ...any)) {
	for _, f := range []string{"prometheus_rules.yaml", "prometheus_alerts.yaml"} {
		path := filepath.Join(dir, f)
		b, err := os.ReadFile(path)
		if err != nil {
			add("%s: %v", path, err)
			continue
		}
		var rf ruleFile
		if err := yaml.Unmarshal(b, &rf); err != nil {
			add("%s: %v", path, err)
			continue
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				for _, p := range clusterFindings(r.Expr, label) {
					add("%s: %s%s: %s", f, r.Record, r.Alert, p)
				}
			}
		}
	}
	dashboards, _ := filepath.Glob(filepath.Join(dir, "dashboards", "*.json"))
	sel := label + `="$cluster"`
	for _, path := range dashboards {
		name := filepath.Base(path)
		b, err := os.ReadFile(path)
		if err != nil {
			add("%s: %v", name, err)
			continue
		}
		var d struct {
			Templating struct {
				List []struct {
					Name       string `json:"name"`
					Multi      bool   `json:"multi"`
					IncludeAll bool   `json:"includeAll"`
					Definition string `json:"definition"`
				} `json:"list"`
			} `json:"templating"`
			Panels []panel `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			add("%s: %v", name, err)
			continue
		}
		found := false
		for _, v := range d.Templating.List {
			switch {
			case v.Name == "cluster":
				found = true
				if v.Multi || v.IncludeAll {
					add("dashboard %s: variable cluster: multi-select or All (one cluster at a time)", name)
				}
				if !strings.HasSuffix(v.Definition, ", "+label+")") {
					add("dashboard %s: variable cluster: %q does not list the values of %s", name, v.Definition, label)
				}
			case v.Definition != "" && !strings.Contains(v.Definition, sel):
				add("dashboard %s: variable %s: %q does not select %s", name, v.Name, v.Definition, sel)
			}
		}
		if !found {
			add("dashboard %s: no cluster variable", name)
		}
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				walk(p.Panels)
				for _, t := range p.Targets {
					if !strings.Contains(t.Expr, sel) {
						add("dashboard %s: panel %q: a query does not select %s", name, p.Title, sel)
					}
					for _, f := range clusterFindings(t.Expr, label) {
						add("dashboard %s: panel %q: %s", name, p.Title, f)
					}
				}
			}
		}
		walk(d.Panels)
	}
}
