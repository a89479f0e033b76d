package testutil

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
)

func TestFreePort(t *testing.T) {
	port := FreePort(t)
	l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listening on the free port %d: %v", port, err)
	}
	_ = l.Close()
}

func TestClosedAddr(t *testing.T) {
	if c, err := net.Dial("tcp4", ClosedAddr(t)); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			_ = c.Close()
		}
		t.Errorf("dialing a closed address: %v, want connection refused", err)
	}
	if _, err := TryDo(nil, http.MethodGet, ClosedURL(t), ""); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("GET of a closed URL: %v, want connection refused", err)
	}
}
