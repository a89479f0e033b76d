package testutil

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
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

func TestClosedUDPAddr(t *testing.T) {
	c, err := net.Dial("udp4", ClosedUDPAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 16)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("reading from a closed UDP address: %v, want connection refused", err)
	}
}

func TestServeTCP(t *testing.T) {
	addr := ServeTCP(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	// Two clients at once, each served on its own.
	var clients [2]net.Conn
	for i := range clients {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	for i := len(clients) - 1; i >= 0; i-- {
		msg := fmt.Sprintf("client %d", i)
		got := make([]byte, len(msg))
		_ = clients[i].SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(clients[i], msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(clients[i], got); err != nil || string(got) != msg {
			t.Errorf("echo to %s: %q, %v", msg, got, err)
		}
	}

	// The connection is closed once serve returns.
	addr = ServeTCP(t, func(c net.Conn) { _, _ = io.WriteString(c, "bye") })
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); err != nil || string(b) != "bye" {
		t.Errorf("read %q, %v; want bye, then the end", b, err)
	}
}

// TestServeConnsCleanup: at the end of the test the listener and the open
// connections are closed, and every serve has returned.
func TestServeConnsCleanup(t *testing.T) {
	var (
		addr     string
		client   net.Conn
		returned atomic.Bool
	)
	started := make(chan struct{})
	t.Run("serving", func(t *testing.T) {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = l.Addr().String()
		ServeConns(t, l, func(c net.Conn) {
			close(started)
			_, _ = io.Copy(io.Discard, c) // until the connection is closed
			returned.Store(true)
		})
		client, err = net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		<-started
	})
	if client == nil {
		t.FailNow()
	}
	defer client.Close()
	if !returned.Load() {
		t.Errorf("serve had not returned when the test ended")
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the client's connection after the test: read %d bytes, %v; want EOF", n, err)
	}
	if c, err := net.Dial("tcp4", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			_ = c.Close()
		}
		t.Errorf("dialing after the test: %v, want connection refused", err)
	}
}
