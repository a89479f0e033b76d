package testutil

import (
	"strings"
	"testing"
)

func TestDebianBinary(t *testing.T) {
	if got := DebianBinary(t, "/bin/sh", "dash"); got != "/bin/sh" {
		t.Errorf("DebianBinary(/bin/sh) = %q", got)
	}
	t.Setenv("CI", "")
	ft := run(t, func(tb testing.TB) { DebianBinary(tb, "/nonexistent/oxcross-no-such-binary", "no-such-package") })
	if !ft.skipped || ft.failed {
		t.Errorf("outside CI a missing binary skips: skipped %v, failed %v", ft.skipped, ft.failed)
	}
	t.Setenv("CI", "true")
	ft = run(t, func(tb testing.TB) { DebianBinary(tb, "/nonexistent/oxcross-no-such-binary", "no-such-package") })
	if !ft.failed || !strings.Contains(strings.Join(ft.msgs, ""), "no-such-package") {
		t.Errorf("in CI a missing binary fails the test")
	}
}
