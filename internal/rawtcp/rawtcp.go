package rawtcp

import (
	"context"
	"errors"
	"net"
	"net/http/httptrace"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Dialer dials TCP connections as net.Dialer{KeepAlive: -1} does: the
// same resolution (net.DefaultResolver, whose DNS hooks an
// httptrace.ClientTrace in the context sees), the same order of addresses
// (for "tcp", the first address's family first and the other family 300
// ms later, RFC 8305's Happy Eyeballs; within a family one address after
// the other, each with its share of the time left), the same
// ConnectStart and ConnectDone hooks, no keep-alive probes, TCP_NODELAY,
// and the same errors (*net.OpError, with net's texts).
//
// The zero Dialer is ready to use. It keeps the descriptors of closed
// connections until a batch is full or a second has passed (see the
// package documentation); Close releases them at once.
type Dialer struct {
	closer closer
}

// fallbackDelay is how long a "tcp" dial waits for the first family
// before it tries the other, as net.Dialer's default.
const fallbackDelay = 300 * time.Millisecond

// DialContext connects to address ("host:port", host a name or an IP
// address) on network "tcp", "tcp4" or "tcp6", within ctx.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if !Supported {
		return netDial(ctx, network, address)
	}
	var family string
	switch network {
	case "tcp":
		family = "ip"
	case "tcp4":
		family = "ip4"
	case "tcp6":
		family = "ip6"
	default:
		return netDial(ctx, network, address)
	}
	host, service, err := net.SplitHostPort(address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	port, err := strconv.ParseUint(service, 10, 16)
	if err != nil {
		// A service name, or a number net reads its own way: net's.
		return netDial(ctx, network, address)
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil && ip.Zone() == "" {
		ip = ip.Unmap()
		if (family == "ip4" && !ip.Is4()) || (family == "ip6" && !ip.Is6()) {
			return nil, &net.OpError{Op: "dial", Net: network, Err: &net.AddrError{Err: "no suitable address found", Addr: host}}
		}
		addrs = []netip.Addr{ip}
	} else if err == nil || host == "" {
		// A zone, or no host (the local system): net's.
		return netDial(ctx, network, address)
	} else {
		addrs, err = lookup(ctx, family, host)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		for i, a := range addrs {
			addrs[i] = a.Unmap()
		}
	}
	ras := make([]netip.AddrPort, len(addrs))
	for i, a := range addrs {
		ras[i] = netip.AddrPortFrom(a, uint16(port))
	}
	if network != "tcp" {
		return d.dialSerial(ctx, network, ras)
	}
	var primaries, fallbacks []netip.AddrPort
	for _, ra := range ras {
		if ra.Addr().Is4() == ras[0].Addr().Is4() {
			primaries = append(primaries, ra)
		} else {
			fallbacks = append(fallbacks, ra)
		}
	}
	return d.dialParallel(ctx, network, primaries, fallbacks)
}

// lookup resolves host with net.DefaultResolver for the addresses of
// family ("ip", "ip4" or "ip6"). As net.Dialer, it calls the DNS hooks of
// ctx's httptrace.ClientTrace but not the connect hooks for the
// resolver's own connections: the lookup's context has ctx's deadline and
// cancellation but not its values.
func lookup(ctx context.Context, family, host string) ([]netip.Addr, error) {
	rctx, cancel := context.WithCancel(context.Background())
	if deadline, ok := ctx.Deadline(); ok {
		rctx, cancel = context.WithDeadline(context.Background(), deadline)
	}
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	trace := httptrace.ContextClientTrace(ctx)
	if trace != nil && trace.DNSStart != nil {
		trace.DNSStart(httptrace.DNSStartInfo{Host: host})
	}
	addrs, err := net.DefaultResolver.LookupNetIP(rctx, family, host)
	if trace != nil && trace.DNSDone != nil {
		ips := make([]net.IPAddr, len(addrs))
		for i, a := range addrs {
			ips[i] = net.IPAddr{IP: a.AsSlice(), Zone: a.Zone()}
		}
		trace.DNSDone(httptrace.DNSDoneInfo{Addrs: ips, Err: err})
	}
	return addrs, err
}

// netDial dials with the net package.
func netDial(ctx context.Context, network, address string) (net.Conn, error) {
	nd := net.Dialer{KeepAlive: -1}
	return nd.DialContext(ctx, network, address)
}

// dialParallel races the primaries against the fallbacks, which start
// fallbackDelay later, or as soon as the primaries fail.
func (d *Dialer) dialParallel(ctx context.Context, network string, primaries, fallbacks []netip.AddrPort) (net.Conn, error) {
	if len(fallbacks) == 0 {
		return d.dialSerial(ctx, network, primaries)
	}
	type result struct {
		c       net.Conn
		err     error
		primary bool
	}
	returned := make(chan struct{})
	defer close(returned)
	results := make(chan result)
	race := func(ctx context.Context, primary bool) {
		ras := primaries
		if !primary {
			ras = fallbacks
		}
		c, err := d.dialSerial(ctx, network, ras)
		select {
		case results <- result{c: c, err: err, primary: primary}:
		case <-returned:
			if c != nil {
				_ = c.Close()
			}
		}
	}
	primaryCtx, cancelPrimary := context.WithCancel(ctx)
	defer cancelPrimary()
	go race(primaryCtx, true)
	timer := time.NewTimer(fallbackDelay)
	defer timer.Stop()
	var primaryErr error
	var primaryDone, fallbackDone bool
	for {
		select {
		case <-timer.C:
			fallbackCtx, cancelFallback := context.WithCancel(ctx)
			defer cancelFallback()
			go race(fallbackCtx, false)
		case r := <-results:
			if r.err == nil {
				return r.c, nil
			}
			if r.primary {
				primaryErr, primaryDone = r.err, true
			} else {
				fallbackDone = true
			}
			if primaryDone && fallbackDone {
				return nil, primaryErr
			}
			if r.primary && timer.Stop() {
				timer.Reset(0)
			}
		}
	}
}

// dialSerial tries each address in turn, each with an equal share of the
// time left (at least 2 s, taken from the last ones), and returns the
// first connection or the first error.
func (d *Dialer) dialSerial(ctx context.Context, network string, ras []netip.AddrPort) (net.Conn, error) {
	var firstErr error
	for i, ra := range ras {
		raddr := net.TCPAddrFromAddrPort(ra)
		if err := ctx.Err(); err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: mapErr(err)}
		}
		dialCtx := ctx
		if deadline, ok := ctx.Deadline(); ok {
			partial, err := partialDeadline(time.Now(), deadline, len(ras)-i)
			if err != nil {
				if firstErr == nil {
					firstErr = &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: err}
				}
				break
			}
			if partial.Before(deadline) {
				var cancel context.CancelFunc
				dialCtx, cancel = context.WithDeadline(ctx, partial)
				defer cancel()
			}
		}
		c, err := d.dialOne(dialCtx, network, raddr)
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = &net.OpError{Op: "dial", Net: network, Err: errors.New("missing address")}
	}
	return nil, firstErr
}

// partialDeadline is the deadline of one of addrsRemaining addresses.
func partialDeadline(now, deadline time.Time, addrsRemaining int) (time.Time, error) {
	left := deadline.Sub(now)
	if left <= 0 {
		return time.Time{}, errTimeout
	}
	timeout := left / time.Duration(addrsRemaining)
	const saneMinimum = 2 * time.Second
	if timeout < saneMinimum {
		timeout = min(left, saneMinimum)
	}
	return now.Add(timeout), nil
}

// mapErr gives a context's error in net's words.
func mapErr(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return errTimeout
	case errors.Is(err, context.Canceled):
		return errCanceled
	}
	return err
}

// errTimeout is net's error of a dial out of time.
var errTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
func (timeoutError) Is(err error) bool {
	return err == context.DeadlineExceeded
}

// errCanceled is net's error of a dial whose context was canceled.
var errCanceled error = canceledError{}

type canceledError struct{}

func (canceledError) Error() string { return "operation was canceled" }
func (canceledError) Is(err error) bool {
	return err == context.Canceled
}

// closer holds descriptors of closed connections and releases them in
// batches.
type closer struct {
	mu    sync.Mutex
	held  []interface{ Close() error }
	timer *time.Timer
}

// closeBatch is how many descriptors the closer holds at most, and
// closeDelay how long.
const (
	closeBatch = 32
	closeDelay = time.Second
)

// add holds f; it releases the batch when it is full, and arms a timer to
// release it within closeDelay otherwise.
func (cl *closer) add(f interface{ Close() error }) {
	cl.mu.Lock()
	cl.held = append(cl.held, f)
	var batch []interface{ Close() error }
	if len(cl.held) >= closeBatch {
		batch, cl.held = cl.held, nil
		if cl.timer != nil {
			cl.timer.Stop()
			cl.timer = nil
		}
	} else if cl.timer == nil {
		cl.timer = time.AfterFunc(closeDelay, cl.flush)
	}
	cl.mu.Unlock()
	for _, f := range batch {
		_ = f.Close()
	}
}

// flush releases every descriptor held.
func (cl *closer) flush() {
	cl.mu.Lock()
	batch := cl.held
	cl.held = nil
	if cl.timer != nil {
		cl.timer.Stop()
		cl.timer = nil
	}
	cl.mu.Unlock()
	for _, f := range batch {
		_ = f.Close()
	}
}

// Close releases the descriptors of the connections closed so far. The
// Dialer stays usable.
func (d *Dialer) Close() error {
	d.closer.flush()
	return nil
}
