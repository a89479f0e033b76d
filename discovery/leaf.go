package discovery

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxLeafIDLength bounds a leaf id, which becomes the source_id label.
const MaxLeafIDLength = 128

var leafIDRE = regexp.MustCompile(`^[A-Za-z0-9._\-]+$`)

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
		return fmt.Errorf("%q is not host:port", truncate(addr, 64))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is outside 1-65535", truncate(port, 16))
	}
	if host == "" || len(host) > 253 || !printableASCII(host) || strings.ContainsAny(host, "/?#@ \t") || !validHost(host) {
		return fmt.Errorf("host %q is not a host name or IP address", truncate(host, 64))
	}
	return nil
}

// ValidateLabels checks labels given by a leaf: at most MaxLabels valid
// Prometheus label names, not reserved, values at most
// MaxLabelValueLength long.
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

// maxLabelNameLength bounds a label name.
const maxLabelNameLength = 128

// labelNameProblem says what is wrong with a label name, by the rules that
// config labels and leaf labels share, or "" when nothing is; with
// reserved, the names Oxcross sets itself are refused.
func labelNameProblem(name string, reserved bool) string {
	switch {
	case !labelRE.MatchString(name) || strings.HasPrefix(name, "__") || len(name) > maxLabelNameLength:
		return fmt.Sprintf("%q is not a valid label name", truncate(name, 64))
	case reserved && reservedLabels[name]:
		return fmt.Sprintf("%q is set by Oxcross and cannot be configured", name)
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
