package config_test

import (
	"strings"
	"testing"

	"github.com/oxcross/oxcross/config"
)

// badPorts are ports that a dialer or a lax parser would take but that
// are not 1-65535 in plain digits (issue 13, #11): "127.0.0.1:+29299"
// used to be accepted as 127.0.0.1:29299.
var badPorts = []string{"+29299", " 80", "80 ", "0x50", "080", "-1", "8e1", "٨٠"}

// TestPortsInPlainDigits replays #11 on every way a config names a port:
// static leaves, host:port origins, URL origins and the port field, and
// the addresses leaves register (ValidateAddress).
func TestPortsInPlainDigits(t *testing.T) {
	const origin = "origins: [{url: 'http://h'}]\n"
	want := "is not 1-65535 in plain digits (no sign, spaces or leading zeros)"
	for _, port := range badPorts {
		if err := config.ValidateAddress("127.0.0.1:" + port); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateAddress(127.0.0.1:%s) = %v, want %q", port, err, want)
		}
		for what, text := range map[string]string{
			"static leaf":   "leaves:\n  - {id: a, address: '127.0.0.1:" + port + "'}\n" + origin,
			"tcp address":   "origins:\n  - {address: '127.0.0.1:" + port + "', mode: tcp}\n",
			"tcp port":      "origins:\n  - {hostname: h, port: '" + port + "', mode: tcp}\n",
			"url port":      "origins:\n  - {scheme: http, hostname: h, port: '" + port + "'}\n",
			"url in a url":  "origins:\n  - {url: 'http://127.0.0.1:" + port + "/'}\n",
			"bare yaml int": "origins:\n  - {hostname: h, port: " + port + ", mode: tcp}\n",
		} {
			if what == "bare yaml int" && strings.TrimSpace(port) != port {
				continue // spaces around a bare value are YAML's, not the port's
			}
			_, err := parser.Parse([]byte(text))
			if err == nil {
				t.Errorf("%s with port %q: accepted", what, port)
				continue
			}
			// url.Parse refuses most of them itself, naming the port.
			if !strings.Contains(err.Error(), want) && !strings.Contains(err.Error(), "invalid port") {
				t.Errorf("%s with port %q: %v", what, port, err)
			}
		}
	}
	for _, port := range []string{"1", "80", "65535"} {
		if err := config.ValidateAddress("127.0.0.1:" + port); err != nil {
			t.Errorf("ValidateAddress(127.0.0.1:%s): %v", port, err)
		}
		if _, err := parser.Parse([]byte("origins:\n  - {hostname: h, port: " + port + ", mode: tcp}\n  - {hostname: h, port: '" + port + "', scheme: http}\n")); err != nil {
			t.Errorf("port %s: %v", port, err)
		}
	}
}

// TestReservedLabelNames replays #11's labels: le, quantile and exported_*
// given to a target clash with the labels of the series scraped from it
// (Prometheus renames those to exported_le and so on), and __* are
// Prometheus' own. They are refused wherever labels are given, with why.
func TestReservedLabelNames(t *testing.T) {
	const origin = "origins: [{url: 'http://h'}]\n"
	for name, want := range map[string]string{
		"le":                `"le" is reserved: Prometheus' histograms and summaries use it`,
		"quantile":          `"quantile" is reserved: Prometheus' histograms and summaries use it`,
		"exported_instance": `"exported_instance" is reserved: Prometheus gives exported_ names to scraped labels that clash with target labels`,
		"exported_":         `"exported_" is reserved`,
		"__address__":       `"__address__" is not a valid label name: names starting with __ are reserved for Prometheus`,
		"__x":               `"__x" is not a valid label name: names starting with __ are reserved`,
	} {
		if err := config.ValidateLabels(map[string]string{name: "x"}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateLabels(%s) = %v, want %q", name, err, want)
		}
		if _, _, err := config.ParseLabelFlag(name + "=x"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseLabelFlag(%s=x) = %v, want %q", name, err, want)
		}
		for what, text := range map[string]string{
			"origin label": "origins:\n  - url: http://h\n    labels: {" + name + ": x}\n",
			"leaf label":   "leaves:\n  - {id: a, address: 'h:1', labels: {" + name + ": x}}\n" + origin,
		} {
			if _, err := parser.Parse([]byte(text)); err == nil || !containsAll(err.Error(), "labels: "+want) {
				t.Errorf("%s %s: %v, want %q", what, name, err, want)
			}
		}
	}
	// Names that only look alike are fine, and a leaf selector may match
	// on anything a leaf could have been given.
	for _, name := range []string{"lee", "le_", "quantiles", "export_x", "_exported", "x__"} {
		if err := config.ValidateLabels(map[string]string{name: "x"}); err != nil {
			t.Errorf("ValidateLabels(%s): %v", name, err)
		}
	}
	if _, err := parser.Parse([]byte("origins:\n  - url: http://h\n    leaf_selector: {le: x, quantile: y}\n")); err != nil {
		t.Errorf("leaf_selector on le and quantile: %v", err)
	}
}
