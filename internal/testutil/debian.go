package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// DebianBinary returns the path of a program from a Debian package a test
// needs (bin: its name or absolute path). When it is missing the test is
// skipped with a message naming the package, except in CI (CI=true), where
// it fails: there scripts/install-deps.sh installs every package that
// scripts/packages.d lists.
func DebianBinary(t testing.TB, bin, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(bin)
	if err == nil {
		return path
	}
	msg := "needs %s from Debian's %s package (%v): apt-get install %s, or bash scripts/install-deps.sh"
	if os.Getenv("CI") == "true" {
		t.Fatalf(msg, bin, pkg, err, pkg)
	}
	t.Skipf(msg, bin, pkg, err, pkg)
	return ""
}
