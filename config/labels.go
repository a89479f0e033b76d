package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// MaxLeafIDLength bounds a leaf id, which becomes the source_id label.
const MaxLeafIDLength = 128

var (
	leafIDRE = regexp.MustCompile(`^[A-Za-z0-9._\-]+$`)
	labelRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	// reservedLabels are the labels Oxcross sets itself.
	reservedLabels = map[string]bool{"origin_id": true, "source_id": true, "leaf_id": true, "result": true, "reason": true, "phase": true, "mode": true, "instance": true, "job": true}
	leafKeys       = []string{"id", "address", "labels"}
)

// maxLabelNameLength bounds a label name.
const maxLabelNameLength = 128

// leaves parses the config's static leaves.
func (p *parser) leaves(n *yaml.Node) []StaticLeaf {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "leaves: want a list, got %s", kindName(n))
		return nil
	}
	var out []StaticLeaf
	seen := map[string]int{}
	for i, ln := range n.Content {
		where := fmt.Sprintf("leaves[%d]", i)
		f := p.fields(ln, where, leafKeys)
		if f == nil {
			continue
		}
		var l StaticLeaf
		if v := f["id"]; v != nil {
			l.ID = p.str(v, where+": id")
		}
		if err := ValidateLeafID(l.ID); err != nil {
			p.errorf(ln, "%s: id: %v", where, err)
		} else if j, dup := seen[l.ID]; dup {
			p.errorf(ln, "%s: id %q is already used by leaves[%d]", where, l.ID, j)
		}
		seen[l.ID] = i
		if v := f["address"]; v != nil {
			l.Address = p.str(v, where+": address")
		}
		if err := ValidateAddress(l.Address); err != nil {
			p.errorf(ln, "%s: address: %v", where, err)
		}
		if v := f["labels"]; v != nil {
			l.Labels = p.labels(v, where+": labels", true)
			if err := checkLabelBytes(l.Labels); err != nil {
				p.errorf(v, "%s: labels: %v", where, err)
			}
		}
		out = append(out, l)
	}
	return out
}

// labels parses a mapping of label names to values; with reserved, the
// names Oxcross sets itself are refused.
func (p *parser) labels(n *yaml.Node, where string, reserved bool) map[string]string {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: want a mapping, got %s", where, kindName(n))
		return nil
	}
	if len(n.Content)/2 > MaxLabels {
		p.errorf(n, "%s: %d labels, at most %d are allowed", where, len(n.Content)/2, MaxLabels)
		return nil
	}
	out := make(map[string]string, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if problem := labelNameProblem(k.Value, reserved); problem != "" {
			p.errorf(k, "%s: %s", where, problem)
			continue
		}
		if _, dup := out[k.Value]; dup {
			p.errorf(k, "%s: %q given twice", where, k.Value)
			continue
		}
		val := p.str(v, where+": "+k.Value)
		if problem := labelValueProblem(k.Value, val); problem != "" {
			p.errorf(v, "%s: %s", where, problem)
			continue
		}
		out[k.Value] = val
	}
	if len(out) == 0 {
		return nil // as without labels, so that the config round-trips
	}
	return out
}

// ValidateLeafID checks a leaf id: 1-128 letters, digits, '.', '_', '-',
// and not "." or "..".
func ValidateLeafID(id string) error {
	// "." and ".." would be path segments of /api/v1/leaves/{id}.
	if id == "" || id == "." || id == ".." || len(id) > MaxLeafIDLength || !leafIDRE.MatchString(id) {
		return fmt.Errorf("leaf id %q must be 1-%d letters, digits, '.', '_' or '-'", truncate(id, 64), MaxLeafIDLength)
	}
	return nil
}

// ValidateAddress checks a scrape address: host:port with a port in
// 1-65535 and a host name or IP address.
func ValidateAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", RedactURL(truncate(addr, 64)))
	}
	if _, problem := parsePort(port); problem != "" {
		return fmt.Errorf("port %q %s", RedactURL(truncate(port, 16)), problem)
	}
	if host == "" || len(host) > 253 || !printableASCII(host) || strings.ContainsAny(host, "/?#@ \t") || !validHost(host) {
		return fmt.Errorf("host %q is not a host name or IP address", RedactURL(truncate(host, 64)))
	}
	return nil
}

// ValidateLabels checks labels given by a leaf: at most MaxLabels valid
// Prometheus label names, not reserved, values at most
// MaxLabelValueLength long, and MaxLeafLabelBytes in all.
func ValidateLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return fmt.Errorf("%d labels, at most %d are allowed", len(labels), MaxLabels)
	}
	for k, v := range labels {
		if problem := labelNameProblem(k, true); problem != "" {
			return fmt.Errorf("label %s", problem)
		}
		if problem := labelValueProblem(k, v); problem != "" {
			return fmt.Errorf("label %s", problem)
		}
	}
	return checkLabelBytes(labels)
}

// checkLabelBytes refuses a leaf's labels whose names and values together
// are longer than MaxLeafLabelBytes.
func checkLabelBytes(labels map[string]string) error {
	n := 0
	for k, v := range labels {
		n += len(k) + len(v)
	}
	if n > MaxLeafLabelBytes {
		return fmt.Errorf("%d bytes of names and values, at most %d are allowed per leaf", n, MaxLeafLabelBytes)
	}
	return nil
}

// ParseLabelFlag parses a key=value label flag.
func ParseLabelFlag(s string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", errors.New("want key=value")
	}
	if err := ValidateLabels(map[string]string{k: v}); err != nil {
		return "", "", err
	}
	return k, v, nil
}

// printableASCII reports whether s is all printable ASCII: scrape
// addresses are host names (international ones in their xn-- form) or IP
// addresses.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// labelNameProblem says what is wrong with a label name, by the rules that
// config labels and leaf labels share, or "" when nothing is. Names
// starting with __ are always refused; with reserved, so are the names
// Oxcross sets itself and those that would clash with scraped labels (le,
// quantile, exported_*).
func labelNameProblem(name string, reserved bool) string {
	switch {
	case !labelRE.MatchString(name) || len(name) > maxLabelNameLength:
		return fmt.Sprintf("%q is not a valid label name", truncate(name, 64))
	case strings.HasPrefix(name, "__"):
		return fmt.Sprintf("%q is not a valid label name: names starting with __ are reserved for Prometheus", name)
	case !reserved:
	case reservedLabels[name]:
		return fmt.Sprintf("%q is set by Oxcross and cannot be configured", name)
	case name == "le" || name == "quantile":
		// As a target label it would clash with the scraped series' own:
		// Prometheus would rename theirs to exported_le and break every
		// histogram (or summary) of the target.
		return fmt.Sprintf("%q is reserved: Prometheus' histograms and summaries use it", name)
	case strings.HasPrefix(name, "exported_"):
		return fmt.Sprintf("%q is reserved: Prometheus gives exported_ names to scraped labels that clash with target labels", name)
	}
	return ""
}

// labelValueProblem says what is wrong with the value of label name, or "".
func labelValueProblem(name, value string) string {
	switch {
	case len(value) > MaxLabelValueLength:
		return fmt.Sprintf("%s: value longer than %d characters", name, MaxLabelValueLength)
	case !utf8.ValidString(value):
		return fmt.Sprintf("%s: value is not UTF-8", name)
	}
	return ""
}
