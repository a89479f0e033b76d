//go:build linux

package rawtcp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptrace"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oxcross/oxcross/internal/testutil"
)

// listen returns a listener on loopback address addr ("127.0.0.1:0",
// "[::1]:0"), skipping the test when that family is missing.
func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if strings.HasPrefix(addr, "[") {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// closedPort returns an address of family addr's that nothing listens on.
func closedPort(t *testing.T, addr string) string {
	t.Helper()
	l := listen(t, addr)
	a := l.Addr().String()
	_ = l.Close()
	return a
}

// fullListener returns the address of a listener whose accept queue is
// full, so that the kernel drops further SYNs and a connect waits.
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	// Fill the queue: connections the listener never accepts, until one
	// does not complete in time.
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	t.Skip("the kernel accepted every connection: its accept queue did not fill")
	return ""
}

// dialCase is one dial TestDialErrorsAsNet makes both ways.
type dialCase struct {
	name, network, addr string
	// timeout, when set, is the dial's; cancel cancels it after 100 ms.
	timeout time.Duration
	cancel  bool
	// is, when set, is an error the dial's must be (errors.Is).
	is error
}

// TestDialErrorsAsNet dials the same addresses with a Dialer and with
// net.Dialer{KeepAlive: -1}, and wants the same outcome and the same
// error text: addresses, names (from a DNS server of the test's), both
// families.
func TestDialErrorsAsNet(t *testing.T) {
	up4 := listen(t, "127.0.0.1:0").Addr().String()
	refused4 := closedPort(t, "127.0.0.1:0")
	full := fullListener(t)
	dns := testutil.NewDNSServer(t, map[string][]netip.Addr{
		"v4.oxcross.test":    {netip.MustParseAddr("127.0.0.1")},
		"v6.oxcross.test":    {netip.MustParseAddr("::1")},
		"dual.oxcross.test":  {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
		"twice.oxcross.test": {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")},
	})
	old := net.DefaultResolver
	net.DefaultResolver = dns.Resolver()
	t.Cleanup(func() { net.DefaultResolver = old })
	port := portOf(up4)
	cases := []dialCase{
		{name: "connects", network: "tcp", addr: up4},
		{name: "connects tcp4", network: "tcp4", addr: up4},
		{name: "refused", network: "tcp", addr: refused4, is: syscall.ECONNREFUSED},
		{name: "refused tcp4", network: "tcp4", addr: refused4, is: syscall.ECONNREFUSED},
		{name: "IPv4 address, tcp6", network: "tcp6", addr: up4},
		{name: "no port", network: "tcp", addr: "127.0.0.1"},
		{name: "timeout", network: "tcp", addr: full, timeout: 100 * time.Millisecond, is: context.DeadlineExceeded},
		{name: "canceled", network: "tcp", addr: full, cancel: true, is: context.Canceled},
		{name: "localhost", network: "tcp4", addr: net.JoinHostPort("localhost", port)},
		{name: "name", network: "tcp", addr: net.JoinHostPort("v4.oxcross.test", port)},
		{name: "no such name", network: "tcp", addr: net.JoinHostPort("none.oxcross.test", port)},
		{name: "IPv6-only name, tcp4", network: "tcp4", addr: net.JoinHostPort("v6.oxcross.test", port)},
		{name: "name, second address refused", network: "tcp4", addr: net.JoinHostPort("twice.oxcross.test", portOf(refused4)), is: syscall.ECONNREFUSED},
	}
	if l, err := net.Listen("tcp", "[::1]:0"); err == nil {
		_ = l.Close()
		up6 := listen(t, "[::1]:0")
		cases = append(cases,
			dialCase{name: "connects IPv6", network: "tcp6", addr: up6.Addr().String()},
			dialCase{name: "refused IPv6", network: "tcp", addr: closedPort(t, "[::1]:0"), is: syscall.ECONNREFUSED},
			// Happy Eyeballs: 127.0.0.1 first, refused; then ::1.
			dialCase{name: "both families, server on IPv6", network: "tcp", addr: net.JoinHostPort("dual.oxcross.test", portOf(up6.Addr().String()))},
			dialCase{name: "both families, tcp6", network: "tcp6", addr: net.JoinHostPort("dual.oxcross.test", portOf(up6.Addr().String()))},
		)
	}
	var d Dialer
	t.Cleanup(func() { _ = d.Close() })
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dial := func(f func(context.Context, string, string) (net.Conn, error)) (net.Conn, error) {
				ctx := context.Background()
				var cancel context.CancelFunc
				switch {
				case tc.timeout > 0:
					ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				case tc.cancel:
					ctx, cancel = context.WithCancel(ctx)
					time.AfterFunc(100*time.Millisecond, cancel)
				default:
					ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
				}
				defer cancel()
				return f(ctx, tc.network, tc.addr)
			}
			nd := net.Dialer{KeepAlive: -1}
			wantConn, wantErr := dial(nd.DialContext)
			gotConn, gotErr := dial(d.DialContext)
			if wantConn != nil {
				_ = wantConn.Close()
			}
			if gotConn != nil {
				defer gotConn.Close()
			}
			if (wantErr == nil) != (gotErr == nil) {
				t.Fatalf("net: %v; Dialer: %v", wantErr, gotErr)
			}
			if wantErr == nil {
				if _, ok := gotConn.(*conn); !ok && tc.addr != "127.0.0.1" {
					t.Errorf("Dialer returned a %T, not its own connection", gotConn)
				}
				if got, want := gotConn.RemoteAddr().String(), wantConn.RemoteAddr().String(); got != want {
					t.Errorf("RemoteAddr %s, net's %s", got, want)
				}
				if gotConn.LocalAddr() == nil || !strings.Contains(gotConn.LocalAddr().String(), ":") {
					t.Errorf("LocalAddr %v", gotConn.LocalAddr())
				}
				return
			}
			if gotErr.Error() != wantErr.Error() {
				t.Errorf("error %q, net's %q", gotErr, wantErr)
			}
			var opErr *net.OpError
			if !errors.As(gotErr, &opErr) {
				t.Errorf("error %T, want *net.OpError", gotErr)
			}
			if tc.is != nil && !errors.Is(gotErr, tc.is) {
				t.Errorf("errors.Is(%v, %v) is false", gotErr, tc.is)
			}
			var te interface{ Timeout() bool }
			if errors.As(wantErr, &te) && te.Timeout() {
				if !errors.As(gotErr, &te) || !te.Timeout() {
					t.Errorf("net's error is a timeout, the Dialer's (%v) is not", gotErr)
				}
			}
		})
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// TestTraceHooks: the connect hooks once per connection, with the
// network and address; DNS hooks for a name, and no connect hooks for
// the resolver's own connections.
func TestTraceHooks(t *testing.T) {
	up := listen(t, "127.0.0.1:0").Addr().String()
	// A name the resolver asks a DNS server for, over a connection of
	// its own whose hooks the trace must not see.
	dns := testutil.NewDNSServer(t, map[string][]netip.Addr{"v4.oxcross.test": {netip.MustParseAddr("127.0.0.1")}})
	old := net.DefaultResolver
	net.DefaultResolver = dns.Resolver()
	t.Cleanup(func() { net.DefaultResolver = old })
	var mu sync.Mutex
	var events []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		DNSStart: func(i httptrace.DNSStartInfo) { mu.Lock(); events = append(events, "dns "+i.Host); mu.Unlock() },
		DNSDone: func(i httptrace.DNSDoneInfo) {
			mu.Lock()
			events = append(events, "dns done")
			mu.Unlock()
			if i.Err != nil {
				t.Errorf("DNSDone: %v", i.Err)
			}
		},
		ConnectStart: func(n, a string) { mu.Lock(); events = append(events, "connect "+n+" "+a); mu.Unlock() },
		ConnectDone: func(n, a string, err error) {
			mu.Lock()
			events = append(events, "connected "+n+" "+a)
			mu.Unlock()
			if err != nil {
				t.Errorf("ConnectDone: %v", err)
			}
		},
	})
	var d Dialer
	defer d.Close()
	for _, addr := range []string{up, net.JoinHostPort("v4.oxcross.test", portOf(up))} {
		events = nil
		c, err := d.DialContext(ctx, "tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		want := "connect tcp4 " + up + "|connected tcp4 " + up
		if strings.HasPrefix(addr, "v4.") {
			want = "dns v4.oxcross.test|dns done|" + want
			if dns.Queries() == 0 {
				t.Error("the DNS server was not asked")
			}
		}
		if got := strings.Join(events, "|"); got != want {
			t.Errorf("%s: hooks %q, want %q", addr, got, want)
		}
	}
}

// pending reports how many descriptors cl holds.
func (cl *closer) pending() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return len(cl.held)
}

// echo starts a server that echoes each connection, and reports on done
// when a connection reached its end (the peer's FIN).
func echo(t *testing.T) (addr string, done chan struct{}) {
	t.Helper()
	l := listen(t, "127.0.0.1:0")
	done = make(chan struct{}, 2*closeBatch)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				// Through plain interfaces: net's splice would keep
				// pipes open, which openFDs would count.
				_, _ = io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
				_ = c.Close()
				done <- struct{}{}
			}()
		}
	}()
	return l.Addr().String(), done
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestConn reads, writes, times out and closes a connection as a
// net.TCPConn does; its descriptor is released once the batch is.
func TestConn(t *testing.T) {
	addr, done := echo(t)
	var d Dialer
	before := openFDs(t)
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte(strings.Repeat("oxcross ", 64<<10)) // more than a socket buffer: writes wait
	go func() {
		if _, err := c.Write(msg); err != nil {
			t.Errorf("Write: %v", err)
		}
	}()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("ReadFull: %v", err)
	}
	if string(got) != string(msg) {
		t.Fatal("echo differs")
	}
	// A read deadline ends a read with a timeout.
	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err = c.Read(got)
	var te interface{ Timeout() bool }
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &te) || !te.Timeout() {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	// A read waiting in the poller when Close comes, or one that starts
	// after it: either ends with net.ErrClosed.
	readErr := make(chan error, 1)
	reading := make(chan struct{})
	go func() {
		close(reading)
		_, err := c.Read(got)
		readErr <- err
	}()
	<-reading
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-readErr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("read ended by Close: %v, want net.ErrClosed", err)
	}
	// The peer sees the end at once, before the descriptor is released.
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not see the connection end within 5s of Close")
	}
	if n := d.closer.pending(); n != 1 {
		t.Errorf("%d descriptors held after one Close, want 1", n)
	}
	if _, err := c.Write(msg[:1]); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v, want net.ErrClosed", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	_ = d.Close()
	if n := d.closer.pending(); n != 0 {
		t.Errorf("%d descriptors held after Dialer.Close", n)
	}
	if after := openFDs(t); after > before {
		t.Errorf("%d descriptors open, %d before the dial", after, before)
	}
}

// TestCloserBatches: a full batch is released at once, a partial one
// within closeDelay.
func TestCloserBatches(t *testing.T) {
	addr, done := echo(t)
	var d Dialer
	defer d.Close()
	before := openFDs(t)
	for i := 0; i < closeBatch; i++ {
		c, err := d.DialContext(context.Background(), "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		if want := (i + 1) % closeBatch; d.closer.pending() != want {
			t.Fatalf("after %d closes %d held, want %d", i+1, d.closer.pending(), want)
		}
	}
	for i := 0; i < closeBatch; i++ {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("the server saw %d of %d connections end", i, closeBatch)
		}
	}
	if after := openFDs(t); after > before {
		t.Errorf("a full batch released: %d descriptors open, %d before", after, before)
	}
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	testutil.Eventually(t, closeDelay+5*time.Second, "the closer to release a partial batch", func() bool {
		return d.closer.pending() == 0
	})
}
