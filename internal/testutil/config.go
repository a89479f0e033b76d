package testutil

import (
	"fmt"
	"strings"
)

// OriginsConfig returns the text of an Oxcross config file (YAML) with n
// origins of mode simple probed every interval (as a config writes it:
// "10s"): o0, o1, … at http://127.0.0.1:9/0, /1, …, where nothing
// answers. It is for tests of the limits on a config's size and interval.
func OriginsConfig(n int, interval string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "interval: %s\norigins:\n", interval)
	for i := range n {
		fmt.Fprintf(&b, "  - {name: o%d, url: 'http://127.0.0.1:9/%d', mode: simple}\n", i, i)
	}
	return b.String()
}
