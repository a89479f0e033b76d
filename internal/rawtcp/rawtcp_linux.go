//go:build linux

package rawtcp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptrace"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Supported reports whether the Dialer makes its own sockets: on Linux.
const Supported = true

// dialOne connects to raddr, between the trace's ConnectStart and
// ConnectDone hooks.
func (d *Dialer) dialOne(ctx context.Context, network string, raddr *net.TCPAddr) (net.Conn, error) {
	trace := httptrace.ContextClientTrace(ctx)
	if trace != nil && trace.ConnectStart != nil {
		trace.ConnectStart(network, raddr.String())
	}
	c, err := d.connect(ctx, raddr)
	if err != nil {
		err = &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: err}
	}
	if trace != nil && trace.ConnectDone != nil {
		trace.ConnectDone(network, raddr.String(), err)
	}
	if err != nil {
		return nil, err
	}
	c.network = network
	return c, nil
}

// connect makes a non-blocking socket, registers it with the runtime's
// poller and connects it, waiting in the poller.
func (d *Dialer) connect(ctx context.Context, raddr *net.TCPAddr) (*conn, error) {
	family := unix.AF_INET
	if raddr.AddrPort().Addr().Is6() {
		family = unix.AF_INET6
	}
	r, _, errno := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if errno != 0 {
		return nil, os.NewSyscallError("socket", errno)
	}
	fd := int(r)
	one := int32(1)
	if _, _, errno := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, uintptr(unsafe.Pointer(&one)), 4, 0); errno != 0 {
		_ = unix.Close(fd)
		return nil, os.NewSyscallError("setsockopt", errno)
	}
	// os.NewFile sees a non-blocking descriptor and registers it with
	// the poller.
	f := os.NewFile(uintptr(fd), "tcp")
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = f.SetWriteDeadline(deadline)
	}
	// Once ctx is done the wait ends.
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(longAgo) })
	sa, salen := sockaddr(raddr)
	var connErr error
	started := false
	err = rc.Write(func(fd uintptr) bool {
		if !started {
			started = true
			_, _, errno := unix.RawSyscall(unix.SYS_CONNECT, fd, uintptr(sa), salen)
			switch errno {
			case 0, unix.EISCONN:
				return true
			case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
				return false
			}
			connErr = os.NewSyscallError("connect", errno)
			return true
		}
		var soerr int32
		l := uint32(4)
		if _, _, errno := unix.RawSyscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_ERROR, uintptr(unsafe.Pointer(&soerr)), uintptr(unsafe.Pointer(&l)), 0); errno != 0 {
			connErr = os.NewSyscallError("getsockopt", errno)
			return true
		}
		switch e := syscall.Errno(soerr); e {
		case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
			return false
		case unix.EISCONN:
			return true
		case 0:
			// The poller may wake a waiter spuriously: the
			// socket is connected once it has a peer.
			var rsa unix.RawSockaddrAny
			rl := uint32(unix.SizeofSockaddrAny)
			_, _, errno := unix.RawSyscall(unix.SYS_GETPEERNAME, fd, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&rl)))
			return errno == 0
		default:
			connErr = os.NewSyscallError("connect", e)
			return true
		}
	})
	runtime.KeepAlive(sa)
	stop()
	if err == nil {
		err = connErr
	}
	if err != nil {
		_ = f.Close()
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			err = mapErr(ctxErr)
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			err = errTimeout
		}
		return nil, err
	}
	_ = f.SetWriteDeadline(time.Time{})
	return &conn{f: f, rc: rc, raddr: raddr, closer: &d.closer}, nil
}

// longAgo is a deadline in the past: it ends pending reads and writes.
var longAgo = time.Unix(1, 0)

// sockaddr returns a pointer to addr as a kernel socket address, and its
// length.
func sockaddr(addr *net.TCPAddr) (unsafe.Pointer, uintptr) {
	ap := addr.AddrPort()
	port := ap.Port()
	if ap.Addr().Is4() {
		sa := &unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ap.Addr().As4()}
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		return unsafe.Pointer(sa), unix.SizeofSockaddrInet4
	}
	sa := &unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ap.Addr().As16()}
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	if z := ap.Addr().Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			sa.Scope_id = uint32(ifi.Index)
		}
	}
	return unsafe.Pointer(sa), unix.SizeofSockaddrInet6
}

// conn is a connected TCP socket whose reads and writes are the kernel's
// non-blocking calls made directly, waiting in the runtime's poller when
// the kernel has nothing yet.
type conn struct {
	f       *os.File
	rc      syscall.RawConn
	network string
	raddr   *net.TCPAddr
	closer  *closer

	closeOnce sync.Once
	closed    atomic.Bool
	laddrOnce sync.Once
	laddr     net.Addr
}

func (c *conn) opError(op string, err error) error {
	if c.closed.Load() && op != "close" {
		// Ended by Close (its deadline, or its shutdown's end of file).
		err = net.ErrClosed
	} else if err == io.EOF {
		return err
	}
	return &net.OpError{Op: op, Net: c.network, Source: c.LocalAddr(), Addr: c.raddr, Err: err}
}

// Read implements net.Conn.
func (c *conn) Read(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.opError("read", net.ErrClosed)
	}
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			r, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
			switch errno {
			case 0:
				n = int(r)
				if n == 0 {
					rerr = io.EOF
				}
				return true
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			default:
				rerr = os.NewSyscallError("read", errno)
				return true
			}
		}
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return n, c.opError("read", err)
	}
	return n, nil
}

// Write implements net.Conn.
func (c *conn) Write(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.opError("write", net.ErrClosed)
	}
	var n int
	var werr error
	err := c.rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			r, _, errno := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[n])), uintptr(len(b)-n))
			switch errno {
			case 0:
				n += int(r)
			case unix.EINTR:
			case unix.EAGAIN:
				return false
			default:
				werr = os.NewSyscallError("write", errno)
				return true
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return n, c.opError("write", err)
	}
	return n, nil
}

// Close implements net.Conn: it ends pending reads and writes, shuts the
// connection down (the FIN goes out now) and hands the descriptor to the
// Dialer's closer.
func (c *conn) Close() error {
	first := false
	c.closeOnce.Do(func() { first = true })
	if !first {
		return c.opError("close", net.ErrClosed)
	}
	c.closed.Store(true)
	_ = c.f.SetDeadline(longAgo)
	_ = c.rc.Control(func(fd uintptr) {
		_, _, _ = unix.RawSyscall(unix.SYS_SHUTDOWN, fd, unix.SHUT_RDWR, 0)
	})
	c.closer.add(c.f)
	return nil
}

// LocalAddr implements net.Conn; it asks the kernel the first time.
func (c *conn) LocalAddr() net.Addr {
	c.laddrOnce.Do(func() {
		var laddr *net.TCPAddr
		_ = c.rc.Control(func(fd uintptr) {
			sa, err := unix.Getsockname(int(fd))
			if err != nil {
				return
			}
			switch sa := sa.(type) {
			case *unix.SockaddrInet4:
				laddr = &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
			case *unix.SockaddrInet6:
				laddr = &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}
			}
		})
		if laddr != nil {
			c.laddr = laddr
		}
	})
	return c.laddr
}

// RemoteAddr implements net.Conn.
func (c *conn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline implements net.Conn.
func (c *conn) SetDeadline(t time.Time) error { return c.f.SetDeadline(t) }

// SetReadDeadline implements net.Conn.
func (c *conn) SetReadDeadline(t time.Time) error { return c.f.SetReadDeadline(t) }

// SetWriteDeadline implements net.Conn.
func (c *conn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }
