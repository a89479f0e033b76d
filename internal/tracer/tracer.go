// Package tracer traces the path of packets to a destination,
// Paris-traceroute style: every probe of a trace belongs to one flow (the
// same addresses, ports and protocol, and for ICMP the same checksum), so
// that routers balancing load per flow send them all the same way.
//
// On Linux the udp and tcp methods need no privileges: they read the
// routers' ICMP answers from the socket's error queue (IP_RECVERR,
// IPV6_RECVERR). The icmp method needs an unprivileged ICMP socket
// (net.ipv4.ping_group_range) or CAP_NET_RAW. The udp and icmp methods
// also find the path MTU, as tracepath does: their probes are as large as
// the path lets through, with fragmentation forbidden.
package tracer

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Method is how a trace probes.
type Method string

// The methods.
const (
	// UDP sends datagrams to a port nobody should listen on; the
	// destination answers with ICMP port unreachable.
	UDP Method = "udp"
	// TCP sends SYNs (a connect) to a port; the destination answers with
	// SYN-ACK or RST.
	TCP Method = "tcp"
	// ICMP sends echo requests; the destination answers with echo replies.
	ICMP Method = "icmp"
)

// Limits of a trace's settings.
const (
	MaxHops         = 255
	MaxProbesPerHop = 10
)

// MaxMTU bounds the probes' size: the path MTU a trace finds is at most
// this (jumbo frames), so that a loopback or a virtual interface's MTU of
// 64 KiB does not make each probe that large.
const MaxMTU = 9000

// ErrNoICMPSocket is the icmp method's error when the process may open
// neither kind of ICMP socket.
var ErrNoICMPSocket = errors.New("the icmp method needs an unprivileged ICMP socket (sysctl net.ipv4.ping_group_range must include the process's group) or CAP_NET_RAW for a raw one")

// Options configure one trace.
type Options struct {
	Method Method
	// Dst is the destination; its port is the udp and tcp methods'
	// destination port (ignored by icmp).
	Dst netip.AddrPort
	// FirstHop and MaxHops bound the TTLs (hop limits) probed.
	FirstHop, MaxHops int
	// ProbesPerHop is how many probes each hop gets.
	ProbesPerHop int
	// HopTimeout is how long a probe waits for its answer.
	HopTimeout time.Duration
}

func (o *Options) validate() error {
	var errs []error
	switch o.Method {
	case UDP, TCP, ICMP:
	default:
		errs = append(errs, fmt.Errorf("method %q: want udp, tcp or icmp", o.Method))
	}
	if !o.Dst.Addr().IsValid() {
		errs = append(errs, errors.New("no destination address"))
	}
	if o.FirstHop < 1 || o.MaxHops > MaxHops || o.FirstHop > o.MaxHops {
		errs = append(errs, fmt.Errorf("hops %d to %d: want 1 <= first <= max <= %d", o.FirstHop, o.MaxHops, MaxHops))
	}
	if o.ProbesPerHop < 1 || o.ProbesPerHop > MaxProbesPerHop {
		errs = append(errs, fmt.Errorf("probes per hop %d: want 1 to %d", o.ProbesPerHop, MaxProbesPerHop))
	}
	if o.HopTimeout <= 0 {
		errs = append(errs, fmt.Errorf("hop timeout %s: want > 0", o.HopTimeout))
	}
	return errors.Join(errs...)
}

// Hop is what one TTL's probes found.
type Hop struct {
	// TTL is the hop's number: the TTL (hop limit) of its probes.
	TTL int
	// Addr is the address that answered (the most frequent, if several
	// did); invalid when none did.
	Addr netip.Addr
	// Sent is how many probes went out; RTTs holds one round-trip time per
	// answer, in the order they came.
	Sent int
	RTTs []time.Duration
	// Final is set when the hop ended the trace: "reached" (the
	// destination answered), or why a router refused the probe ("host
	// unreachable", "administratively prohibited", ...).
	Final string

	addrs []netip.Addr // every answer's source
}

// Answered reports whether any probe of the hop was answered.
func (h *Hop) Answered() bool { return len(h.RTTs) > 0 }

// Loss is the share of the hop's probes that got no answer.
func (h *Hop) Loss() float64 {
	if h.Sent == 0 {
		return 0
	}
	return 1 - float64(min(len(h.RTTs), h.Sent))/float64(h.Sent)
}

// MinRTT and MedianRTT are of the hop's answers; 0 without any.
func (h *Hop) MinRTT() time.Duration {
	if len(h.RTTs) == 0 {
		return 0
	}
	return slices.Min(h.RTTs)
}

// MedianRTT is the median of the hop's answers' RTTs (the mean of the
// middle two for an even count); 0 without any.
func (h *Hop) MedianRTT() time.Duration {
	n := len(h.RTTs)
	if n == 0 {
		return 0
	}
	s := slices.Clone(h.RTTs)
	slices.Sort(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Trace is one trace's outcome.
type Trace struct {
	Method Method
	Dst    netip.AddrPort
	// Src is the local end of the flow (port 0 for icmp).
	Src netip.AddrPort
	// Hops are the TTLs probed, from the first hop on.
	Hops []Hop
	// Reached reports whether the destination answered; it did at the
	// last hop.
	Reached bool
	// MTU is the path MTU found (udp and icmp methods): the size of the
	// largest packet that got through to the last hop that answered. 0
	// when not measured.
	MTU int
	// Duration is how long the trace took.
	Duration time.Duration
}

// LastAnswered returns the number of the last hop that answered, 0 if
// none did.
func (t *Trace) LastAnswered() int {
	for i := len(t.Hops) - 1; i >= 0; i-- {
		if t.Hops[i].Answered() {
			return t.Hops[i].TTL
		}
	}
	return 0
}

// Run traces the path to o.Dst. It returns what it found when ctx ends
// before the trace does, with ctx's error.
func Run(ctx context.Context, o Options) (*Trace, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.Dst = netip.AddrPortFrom(o.Dst.Addr().Unmap(), o.Dst.Port())
	start := time.Now()
	tr := &Trace{Method: o.Method, Dst: o.Dst}
	err := run(ctx, &o, tr)
	tr.Duration = time.Since(start)
	for i := range tr.Hops {
		tr.Hops[i].Addr = mostFrequent(tr.Hops[i].addrs)
		tr.Hops[i].addrs = nil
	}
	return tr, err
}

func mostFrequent(addrs []netip.Addr) netip.Addr {
	var best netip.Addr
	n := 0
	for _, a := range addrs {
		c := 0
		for _, b := range addrs {
			if a == b {
				c++
			}
		}
		if c > n {
			best, n = a, c
		}
	}
	return best
}
