package config_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/oxcross/oxcross/config"
)

// benchConfig returns a config of n origins in the original Oxcross style
// (scheme, hostname, port) and the URL style, half each, with labels on
// every tenth origin: what a large fleet's file looks like.
func benchConfig(n int, json bool) []byte {
	var b strings.Builder
	if json {
		b.WriteString(`{"interval": 10, "timeout": 5, "origins": [`)
		for i := range n {
			if i > 0 {
				b.WriteString(",\n")
			}
			if i%2 == 0 {
				fmt.Fprintf(&b, `{"scheme": "https", "hostname": "edge%d.example.com", "port": 443, "mode": "advanced"}`, i)
			} else {
				fmt.Fprintf(&b, `{"name": "api-%d", "url": "https://api%d.example.com/healthz", "mode": "simple"}`, i, i)
			}
		}
		b.WriteString("]}\n")
		return []byte(b.String())
	}
	b.WriteString("interval: 10s\ntimeout: 5s\norigins:\n")
	for i := range n {
		if i%2 == 0 {
			fmt.Fprintf(&b, "  - scheme: https\n    hostname: edge%d.example.com\n    port: 443\n    mode: advanced\n", i)
		} else {
			fmt.Fprintf(&b, "  - name: api-%d\n    url: https://api%d.example.com/healthz\n    mode: simple\n", i, i)
		}
		if i%10 == 0 {
			fmt.Fprintf(&b, "    labels:\n      region: r%d\n      tier: edge\n", i%7)
		}
	}
	return []byte(b.String())
}

// BenchmarkParse10k parses and validates a 10,000-origin config, YAML and
// JSON, as a configserver does on every reload and a leaf on every new
// config.
func BenchmarkParse10k(b *testing.B) {
	for _, format := range []string{"yaml", "json"} {
		data := benchConfig(10_000, format == "json")
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				cfg, err := parser.Parse(data)
				if err != nil {
					b.Fatal(err)
				}
				if len(cfg.Origins) != 10_000 {
					b.Fatalf("%d origins", len(cfg.Origins))
				}
			}
		})
	}
}

// BenchmarkNewSnapshot10k normalizes a parsed 10,000-origin config to the
// JSON the configserver serves, with its ETag.
func BenchmarkNewSnapshot10k(b *testing.B) {
	cfg, err := parser.Parse(benchConfig(10_000, false))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := config.NewSnapshot(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseView10k parses what the configserver serves for 10,000
// origins: what a leaf does when the config changed.
func BenchmarkParseView10k(b *testing.B) {
	cfg, err := parser.Parse(benchConfig(10_000, false))
	if err != nil {
		b.Fatal(err)
	}
	l, err := config.NewSnapshot(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(l.Body)))
	for b.Loop() {
		if _, err := parser.ParseView(l.Body); err != nil {
			b.Fatal(err)
		}
	}
}
