package testutil

import (
	"net"
	"testing"
)

// FreePort returns a port of 127.0.0.1 that was free a moment ago, for a
// server the test starts on it. Another process may take it meanwhile:
// prefer listening on port 0 where the code under test allows it.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ClosedAddr returns an address on 127.0.0.1, host:port, where nothing
// listens: a connection to it is refused (unless another process has
// taken the port meanwhile).
func ClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a closed port: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("closing %s: %v", addr, err)
	}
	return addr
}

// ClosedURL returns an http:// URL of ClosedAddr.
func ClosedURL(t testing.TB) string {
	t.Helper()
	return "http://" + ClosedAddr(t)
}
