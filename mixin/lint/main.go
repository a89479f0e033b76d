// Command lint applies mixtool's lint rules to the rendered mixin
// (mixin/out): the alert rules of mixtool's lint and the dashboard rules of
// Grafana's dashboard linter that mixtool runs, those that can be checked
// from the JSON alone. It prints one line per finding and exits 1 when there
// is any.
//
// With -runbooks FILE it also checks that each alert's section of the
// runbooks (## AlertName) names the panel that shows the alert, in a line
//
//	**Panel:** <dashboard title> › [<panel title>](<path>/<uid>.json), at `/d/<uid>?viewPanel=<id>` on your Grafana.
//
// whose dashboard and panel are in the render under those titles.
//
// It also checks that every aggregation and vector matching of the rules,
// alerts and dashboards keeps the cluster label (-cluster-label, the
// mixin's _config.clusterLabel), and that every dashboard has a
// single-select cluster variable that every query selects.
//
//	go run ./mixin/lint [-runbooks docs/runbooks.md] [-cluster-label cluster] [mixin/out]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// maxAlertNameLength is mixtool's limit on alert names.
const maxAlertNameLength = 40

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type dashboard struct {
	Title      string  `json:"title"`
	Editable   *bool   `json:"editable"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Multi      bool   `json:"multi"`
			IncludeAll bool   `json:"includeAll"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

var (
	// A rate over a range: rate(...[range]) or irate(...[range]).
	rateRange = regexp.MustCompile(`\b(?:i?rate)\(`)
	rangeSel  = regexp.MustCompile(`\[([^\]:]+)(?::[^\]]*)?\]`)
	template  = regexp.MustCompile(`\{\{.*?\}\}`)
	camelCase = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
)

func main() {
	runbooks := flag.String("runbooks", "", "the runbooks (Markdown) whose alert sections must link to a panel")
	clusterLabel := flag.String("cluster-label", "cluster", "the mixin's _config.clusterLabel, which every aggregation must keep")
	flag.Parse()
	dir := "mixin/out"
	if flag.NArg() > 0 {
		dir = flag.Arg(0)
	}
	var findings []string
	add := func(format string, a ...any) { findings = append(findings, fmt.Sprintf(format, a...)) }

	alerts := lintAlerts(filepath.Join(dir, "prometheus_alerts.yaml"), add)
	dashboards, err := filepath.Glob(filepath.Join(dir, "dashboards", "*.json"))
	if err != nil || len(dashboards) == 0 {
		add("%s: no dashboards", filepath.Join(dir, "dashboards"))
	}
	for _, d := range dashboards {
		lintDashboard(d, add)
	}

	lintClusterLabel(dir, *clusterLabel, add)

	if *runbooks != "" {
		lintRunbookPanels(*runbooks, dir, alerts, add)
	}

	sort.Strings(findings)
	for _, f := range findings {
		fmt.Println(f)
	}
	if len(findings) > 0 {
		fmt.Printf("mixin lint: %d findings\n", len(findings))
		os.Exit(1)
	}
	fmt.Printf("mixin lint: no findings (%d dashboards)\n", len(dashboards))
}

func lintAlerts(path string, add func(string, ...any)) (names []string) {
	b, err := os.ReadFile(path)
	if err != nil {
		add("%s: %v", path, err)
		return
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		add("%s: %v", path, err)
		return
	}
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			a := r.Alert
			names = append(names, a)
			if !camelCase.MatchString(a) {
				add("alert %s: name is not in CamelCase", a)
			}
			if len(a) > maxAlertNameLength {
				add("alert %s: name has %d characters, more than %d", a, len(a), maxAlertNameLength)
			}
			if r.Labels["severity"] == "" {
				add("alert %s: no severity label", a)
			}
			s := r.Annotations["summary"]
			switch {
			case s == "":
				add("alert %s: no summary", a)
			default:
				if template.MatchString(s) {
					add("alert %s: summary has a template: %q", a, s)
				}
				if first := []rune(s)[0]; !unicode.IsUpper(first) {
					add("alert %s: summary does not start with a capital letter: %q", a, s)
				}
				if !strings.HasSuffix(s, ".") {
					add("alert %s: summary does not end with a period: %q", a, s)
				}
			}
			d := r.Annotations["description"]
			switch {
			case d == "":
				add("alert %s: no description", a)
			case !template.MatchString(d):
				add("alert %s: description has no template", a)
			}
			if r.Annotations["runbook_url"] == "" {
				add("alert %s: no runbook_url", a)
			}
		}
	}
	if n == 0 {
		add("%s: no alert", path)
	}
	return names
}

var panelLine = regexp.MustCompile("^\\*\\*Panel:\\*\\* (.+) › \\[(.+)\\]\\([^)]*/([a-z0-9-]+)\\.json\\), at `/d/([a-z0-9-]+)\\?viewPanel=([0-9]+)` on your Grafana\\.$")

// lintRunbookPanels checks that the runbook section of every alert names,
// and links to, a panel of the render.
func lintRunbookPanels(path, dir string, alerts []string, add func(string, ...any)) {
	b, err := os.ReadFile(path)
	if err != nil {
		add("%s: %v", path, err)
		return
	}
	lines := map[string][]string{} // alert section -> its Panel lines
	section := ""
	for _, l := range strings.Split(string(b), "\n") {
		if h, ok := strings.CutPrefix(l, "## "); ok {
			section = strings.TrimSpace(h)
			continue
		}
		if strings.HasPrefix(l, "**Panel:**") && section != "" {
			lines[section] = append(lines[section], l)
		}
	}
	for _, a := range alerts {
		ls := lines[a]
		if len(ls) != 1 {
			add("runbook %s: %d **Panel:** lines, want 1", a, len(ls))
			continue
		}
		m := panelLine.FindStringSubmatch(ls[0])
		if m == nil {
			add("runbook %s: the **Panel:** line is not of the form \"**Panel:** Dashboard › [Panel](…/<uid>.json), at `/d/<uid>?viewPanel=<id>` on your Grafana.\"", a)
			continue
		}
		dashTitle, panelTitle, fileUID, uid, id := m[1], m[2], m[3], m[4], m[5]
		if fileUID != uid {
			add("runbook %s: links to %s.json but to /d/%s", a, fileUID, uid)
			continue
		}
		db, err := os.ReadFile(filepath.Join(dir, "dashboards", uid+".json"))
		if err != nil {
			add("runbook %s: no dashboard %s in the render", a, uid)
			continue
		}
		var d struct {
			UID    string `json:"uid"`
			Title  string `json:"title"`
			Panels []struct {
				ID    int    `json:"id"`
				Title string `json:"title"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(db, &d); err != nil {
			add("runbook %s: %s.json: %v", a, uid, err)
			continue
		}
		if d.UID != uid || d.Title != dashTitle {
			add("runbook %s: dashboard %s is %q (uid %s), not %q", a, uid, d.Title, d.UID, dashTitle)
		}
		found := false
		for _, p := range d.Panels {
			if fmt.Sprint(p.ID) == id {
				found = true
				if p.Title != panelTitle {
					add("runbook %s: panel %s of %s is %q, not %q", a, id, uid, p.Title, panelTitle)
				}
			}
		}
		if !found {
			add("runbook %s: %s has no panel %s", a, uid, id)
		}
	}
}

func lintDashboard(path string, add func(string, ...any)) {
	name := filepath.Base(path)
	b, err := os.ReadFile(path)
	if err != nil {
		add("%s: %v", name, err)
		return
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		add("%s: %v", name, err)
		return
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		// The query variables ask the selected data source, and allow
		// several values and All; but cluster (lintClusterLabel).
		if v.Type == "query" && v.Name != "cluster" {
			if v.Datasource == nil || !strings.HasPrefix(v.Datasource.UID, "$") {
				add("dashboard %s: variable %s: datasource is not a template variable", name, v.Name)
			}
			if !v.Multi || !v.IncludeAll {
				add("dashboard %s: variable %s: not multi-select with All", name, v.Name)
			}
		}
	}
	// template-datasource-rule, template-job-rule, template-instance-rule.
	if vars["datasource"] != "datasource" {
		add("dashboard %s: no datasource variable of type datasource", name)
	}
	for _, v := range []string{"job", "instance"} {
		if _, ok := vars[v]; !ok {
			add("dashboard %s: no %s variable", name, v)
		}
	}
	if d.Editable == nil || *d.Editable {
		add("dashboard %s: editable is not false", name)
	}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			// panel-datasource-rule: the data source is the variable.
			if p.Datasource == nil || !strings.HasPrefix(p.Datasource.UID, "$") {
				add("dashboard %s: panel %q: datasource is not a template variable", name, p.Title)
			}
			for _, t := range p.Targets {
				lintRate(name, p.Title, t.Expr, add)
			}
		}
	}
	walk(d.Panels)
}

// lintRate applies target-rate-interval-rule: every rate() and irate() over
// a range vector uses $__rate_interval.
func lintRate(name, title, expr string, add func(string, ...any)) {
	for _, loc := range rateRange.FindAllStringIndex(expr, -1) {
		// The argument of this call: up to its closing parenthesis.
		depth, end := 1, len(expr)
		for i := loc[1]; i < len(expr); i++ {
			switch expr[i] {
			case '(':
				depth++
			case ')':
				depth--
			}
			if depth == 0 {
				end = i
				break
			}
		}
		for _, m := range rangeSel.FindAllStringSubmatch(expr[loc[1]:end], -1) {
			if strings.TrimSpace(m[1]) != "$__rate_interval" {
				add("dashboard %s: panel %q: rate over [%s], not [$__rate_interval]", name, title, m[1])
			}
		}
	}
}
