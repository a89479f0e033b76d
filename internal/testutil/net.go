package testutil

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

// FreePort returns a port of 127.0.0.1 that was free a moment ago, for a
// server the test starts on it. It picks one below the kernel's ephemeral
// range (net.ipv4.ip_local_port_range, 32768-60999 by default): a port
// from that range, as listening on port 0 gives, may be taken meanwhile by
// any outgoing connection of a busy machine, which made servers fail with
// "address already in use". Another test may still take it: prefer
// listening on port 0 where the code under test allows it.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		port := freePortLow + rand.IntN(freePortHigh-freePortLow)
		l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // taken
		}
		if err := l.Close(); err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		return port
	}
	t.Fatalf("finding a free port: 100 ports in %d-%d were taken", freePortLow, freePortHigh)
	return 0
}

// The ports FreePort picks from: below the kernel's ephemeral range, above
// the ports of common services.
const freePortLow, freePortHigh = 20000, 32000

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

// ClosedUDPAddr returns a UDP address on 127.0.0.1, host:port, where
// nothing listens: a datagram sent to it is answered with ICMP port
// unreachable, which a connected socket reads as connection refused
// (unless another process has taken the port meanwhile).
func ClosedUDPAddr(t testing.TB) string {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a closed UDP port: %v", err)
	}
	addr := c.LocalAddr().String()
	if err := c.Close(); err != nil {
		t.Fatalf("closing %s: %v", addr, err)
	}
	return addr
}

// ClosedURL returns an http:// URL of ClosedAddr.
func ClosedURL(t testing.TB) string {
	t.Helper()
	return "http://" + ClosedAddr(t)
}

// ServeConns accepts connections on l until l is closed and hands each to
// serve on a goroutine of its own; a connection is closed when serve
// returns. At the end of the test it closes l and every connection still
// open, and waits until every serve has returned: serve should return
// once its connection is closed.
func ServeConns(t testing.TB, l net.Listener, serve func(net.Conn)) {
	t.Helper()
	s := startConnServer(l, serve)
	t.Cleanup(s.close)
}

// ServeTCP listens on a free port of 127.0.0.1 and serves the connections
// there as ServeConns does. It returns the address, host:port. It must be
// called from the test's goroutine.
func ServeTCP(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	ServeConns(t, l, serve)
	return l.Addr().String()
}

// connServer accepts connections on a listener and serves each on a
// goroutine of its own until it is closed. It needs no test.
type connServer struct {
	l     net.Listener
	serve func(net.Conn)

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // those being served
	closed bool

	wg sync.WaitGroup
}

func startConnServer(l net.Listener, serve func(net.Conn)) *connServer {
	s := &connServer{l: l, serve: serve, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.accept()
	return s
}

func (s *connServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			// Accepted as close closed the others: it would be missed.
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			_ = c.Close()
		}()
	}
}

// close closes the listener and every connection being served, and waits
// until the accept loop and every serve have returned.
func (s *connServer) close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	_ = s.l.Close()
	s.wg.Wait()
}
