package tracer

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// answer is what came back for one probe.
type answer struct {
	// seq names the probe; -1 when the answer does not say.
	seq  int
	from netip.Addr
	// final is "" for a router's time exceeded, "reached" for the
	// destination, or why a router refused the probe.
	final string
	// mtu, when set, is a packet-too-big answer: the probe must go again,
	// smaller.
	mtu int
}

// seqOf numbers probe i of hop ttl.
func seqOf(ttl, i int) int { return ttl<<4 | i }

// session is an open trace: its socket (or, for tcp, its flow) and the
// path MTU found so far.
type session struct {
	o  *Options
	v6 bool
	// fd is the udp or icmp socket; for tcp, a socket that holds the
	// trace's local port.
	fd  int
	src netip.AddrPort
	// mtu is the size of the packets sent (udp, icmp); hdr the size of
	// their IP and transport headers.
	mtu, hdr int
	// icmp: ping is set for an unprivileged ICMP socket; id is the echo
	// identifier of a raw one.
	ping bool
	id   uint16
	buf  []byte
	oob  []byte
}

func run(ctx context.Context, o *Options, tr *Trace) error {
	s := &session{o: o, v6: o.Dst.Addr().Is6(), fd: -1, buf: make([]byte, 65536), oob: make([]byte, 512)}
	defer s.close()
	if err := s.open(); err != nil {
		return err
	}
	tr.Src = s.src
	for ttl := o.FirstHop; ttl <= o.MaxHops; ttl++ {
		hop := Hop{TTL: ttl}
		var err error
		if o.Method == TCP {
			err = s.tcpHop(ctx, &hop)
		} else {
			err = s.datagramHop(ctx, &hop)
		}
		tr.Hops = append(tr.Hops, hop)
		if s.mtu > 0 && hop.Answered() {
			tr.MTU = s.mtu
		}
		if err != nil {
			return err
		}
		if hop.Final != "" {
			tr.Reached = hop.Final == "reached"
			break
		}
	}
	return nil
}

func (s *session) close() {
	if s.fd >= 0 {
		_ = unix.Close(s.fd)
		s.fd = -1
	}
}

func (s *session) family() int {
	if s.v6 {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

func (s *session) sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if s.v6 {
		return &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
	}
	return &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
}

// setup sets the options every probe socket has: the error queue, no
// automatic IPv6 flow label (a label per socket would split a tcp trace's
// flow), and, for udp and icmp, fragmentation forbidden whatever the
// kernel learnt of the path MTU.
func (s *session) setup(fd int) error {
	var err error
	if s.v6 {
		err = errors.Join(
			unix.SetsockoptInt(fd, unix.SOL_IPV6, unix.IPV6_RECVERR, 1),
			unix.SetsockoptInt(fd, unix.SOL_IPV6, unix.IPV6_AUTOFLOWLABEL, 0),
		)
		if s.o.Method != TCP {
			err = errors.Join(err, unix.SetsockoptInt(fd, unix.SOL_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE))
		}
	} else {
		err = unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_RECVERR, 1)
		if s.o.Method != TCP {
			err = errors.Join(err, unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE))
		}
	}
	if err != nil {
		return fmt.Errorf("setting socket options: %w", err)
	}
	return nil
}

func (s *session) setTTL(fd, ttl int) error {
	if s.v6 {
		return unix.SetsockoptInt(fd, unix.SOL_IPV6, unix.IPV6_UNICAST_HOPS, ttl)
	}
	return unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_TTL, ttl)
}

// open opens the udp or icmp socket, connected to the destination, and
// sets the first packet size: the MTU of the interface towards it. A tcp
// trace opens a socket per probe.
func (s *session) open() error {
	s.hdr = 20
	if s.v6 {
		s.hdr = 40
	}
	if s.o.Method == TCP {
		return s.openTCP()
	}
	var fd int
	var err error
	if s.o.Method == UDP {
		fd, err = unix.Socket(s.family(), unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening a UDP socket: %w", err)
		}
	} else {
		proto := unix.IPPROTO_ICMP
		if s.v6 {
			proto = unix.IPPROTO_ICMPV6
		}
		var perr error
		fd, perr = unix.Socket(s.family(), unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		s.ping = perr == nil
		if perr != nil {
			fd, err = unix.Socket(s.family(), unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
			if err != nil {
				return fmt.Errorf("%w: ICMP socket: %v; raw socket: %v", ErrNoICMPSocket, perr, err)
			}
			var b [2]byte
			if _, err := rand.Read(b[:]); err == nil {
				s.id = binary.BigEndian.Uint16(b[:])
			}
		}
	}
	s.fd = fd
	s.hdr += 8
	if err := s.setup(fd); err != nil {
		return err
	}
	if err := unix.Connect(fd, s.sockaddr(s.o.Dst)); err != nil {
		return fmt.Errorf("connecting to %s: %w", s.o.Dst, err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fmt.Errorf("reading the local address: %w", err)
	}
	s.src = addrPort(sa)
	if s.o.Method == ICMP {
		// The "port" of an ICMP socket is its echo id or protocol.
		s.src = netip.AddrPortFrom(s.src.Addr(), 0)
	}
	s.mtu = interfaceMTU(s.src.Addr())
	return nil
}

// openTCP picks the trace's local address and port, and holds them with a
// bound socket for the trace's length, so that no other connection takes
// the port between two probes.
func (s *session) openTCP() error {
	// The local address towards the destination, as a connected UDP
	// socket sees it (connecting one sends nothing).
	fd, err := unix.Socket(s.family(), unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening a UDP socket: %w", err)
	}
	err = unix.Connect(fd, s.sockaddr(s.o.Dst))
	var sa unix.Sockaddr
	if err == nil {
		sa, err = unix.Getsockname(fd)
	}
	_ = unix.Close(fd)
	if err != nil {
		return fmt.Errorf("finding the local address towards %s: %w", s.o.Dst, err)
	}
	local := netip.AddrPortFrom(addrPort(sa).Addr(), 0)
	fd, err = unix.Socket(s.family(), unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening a TCP socket: %w", err)
	}
	s.fd = fd
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("setting SO_REUSEADDR: %w", err)
	}
	if err := unix.Bind(fd, s.sockaddr(local)); err != nil {
		return fmt.Errorf("binding a local port on %s: %w", local.Addr(), err)
	}
	if sa, err = unix.Getsockname(fd); err != nil {
		return fmt.Errorf("reading the local address: %w", err)
	}
	s.src = addrPort(sa)
	return nil
}

// interfaceMTU is the MTU of the interface that has a (at most MaxMTU);
// 1500 when none does.
func interfaceMTU(a netip.Addr) int {
	ifs, err := net.Interfaces()
	if err != nil {
		return 1500
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			if n, ok := ad.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a && ifc.MTU > 0 {
					return min(ifc.MTU, MaxMTU)
				}
			}
		}
	}
	return 1500
}

func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// minMTU is the smallest packet a trace sends.
func (s *session) minMTU() int {
	if s.v6 {
		return 1280
	}
	return 68
}

// packet builds probe seq, s.mtu bytes with its headers. The payload
// holds the sequence number (udp; icmp has it in its header) and its ones'
// complement, so that the packet's checksum does not change from probe to
// probe: load balancers may hash an ICMP probe's checksum as part of the
// flow.
func (s *session) packet(seq int) []byte {
	n := max(s.mtu-s.hdr, 4)
	if s.o.Method == ICMP {
		n += 8
	}
	b := s.buf[:n]
	clear(b)
	p := b
	if s.o.Method == ICMP {
		b[0] = 8
		if s.v6 {
			b[0] = 128
		}
		binary.BigEndian.PutUint16(b[4:], s.id)
		binary.BigEndian.PutUint16(b[6:], uint16(seq))
		p = b[8:]
	}
	if s.o.Method == ICMP {
		// The header holds the sequence number; the payload compensates.
		binary.BigEndian.PutUint16(p[0:], 0xffff-uint16(seq))
	} else {
		binary.BigEndian.PutUint16(p[0:], uint16(seq))
		binary.BigEndian.PutUint16(p[2:], 0xffff-uint16(seq))
	}
	if s.o.Method == ICMP && !s.v6 && !s.ping {
		binary.BigEndian.PutUint16(b[2:], checksum(b))
	}
	return b
}

// seqInPayload reads the probe number from the payload of an error queue
// message: the udp datagram or the icmp echo request that was refused.
func (s *session) seqInPayload(p []byte) int {
	if s.o.Method == ICMP {
		if len(p) < 8 || (!s.ping && binary.BigEndian.Uint16(p[4:]) != s.id) {
			return -1
		}
		return int(binary.BigEndian.Uint16(p[6:]))
	}
	if len(p) < 4 || binary.BigEndian.Uint16(p[0:])+binary.BigEndian.Uint16(p[2:]) != 0xffff {
		return -1
	}
	return int(binary.BigEndian.Uint16(p[0:]))
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// send sends probe seq with ttl, shrinking the packet when the interface
// refuses its size.
func (s *session) send(ttl, seq int) (time.Time, error) {
	if err := s.setTTL(s.fd, ttl); err != nil {
		return time.Time{}, fmt.Errorf("setting the TTL: %w", err)
	}
	for range 8 {
		at := time.Now()
		_, err := unix.Write(s.fd, s.packet(seq))
		switch {
		case err == nil:
			return at, nil
		case errors.Is(err, unix.EMSGSIZE):
			mtu := s.mtu - 1
			if v, gerr := s.pathMTU(); gerr == nil && v < s.mtu {
				mtu = v
			}
			s.mtu = max(mtu, s.minMTU())
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
		default:
			// A connected socket reports an earlier ICMP error at the
			// next send; it is in the error queue too.
			if !pendingICMPError(err) {
				return time.Time{}, fmt.Errorf("sending a probe to %s: %w", s.o.Dst, err)
			}
		}
	}
	return time.Time{}, fmt.Errorf("sending a probe to %s: gave up", s.o.Dst)
}

// pathMTU reads the kernel's MTU of the connected socket's route.
func (s *session) pathMTU() (int, error) {
	if s.v6 {
		return unix.GetsockoptInt(s.fd, unix.SOL_IPV6, unix.IPV6_MTU)
	}
	return unix.GetsockoptInt(s.fd, unix.SOL_IP, unix.IP_MTU)
}

func pendingICMPError(err error) bool {
	for _, e := range []error{unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EACCES, unix.EPROTO, unix.ENOPROTOOPT, unix.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// datagramHop sends a hop's probes (udp, icmp) one after the other and
// waits for their answers.
func (s *session) datagramHop(ctx context.Context, hop *Hop) error {
	pending := make(map[int]time.Time, s.o.ProbesPerHop)
	var last time.Time
	for i := range s.o.ProbesPerHop {
		seq := seqOf(hop.TTL, i)
		at, err := s.send(hop.TTL, seq)
		if err != nil {
			return err
		}
		pending[seq], last = at, at
		hop.Sent++
	}
	deadline := last.Add(s.o.HopTimeout)
	for len(pending) > 0 {
		if err := waitFD(ctx, s.fd, unix.POLLIN, deadline); err != nil {
			if errors.Is(err, errTimeout) {
				return nil
			}
			return err
		}
		now := time.Now()
		for _, a := range s.drain() {
			if a.mtu > 0 && a.mtu < s.mtu {
				s.mtu = max(a.mtu, s.minMTU())
			}
			if a.seq < 0 && len(pending) == 1 && a.mtu == 0 {
				for seq := range pending {
					a.seq = seq
				}
			}
			sent, ok := pending[a.seq]
			if !ok {
				continue // an answer to an earlier hop, or to another socket
			}
			if a.mtu > 0 {
				// Too big for a link on the way: send it again, smaller.
				at, err := s.send(hop.TTL, a.seq)
				if err != nil {
					return err
				}
				pending[a.seq] = at
				deadline = at.Add(s.o.HopTimeout)
				continue
			}
			delete(pending, a.seq)
			hop.RTTs = append(hop.RTTs, now.Sub(sent))
			hop.addrs = append(hop.addrs, a.from)
			if a.final != "" && hop.Final == "" {
				hop.Final = a.final
			}
		}
	}
	return nil
}

// drain reads every answer waiting on the socket: the error queue, and
// the destination's replies (icmp echo replies, or data from a udp port
// that is open).
func (s *session) drain() []answer {
	out := s.readErrQueue(s.fd)
	for {
		n, _, err := unix.Recvfrom(s.fd, s.buf, unix.MSG_DONTWAIT)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return out
		}
		p := s.buf[:n]
		if s.o.Method == UDP {
			out = append(out, answer{seq: -1, from: s.o.Dst.Addr(), final: "reached"})
			continue
		}
		if !s.v6 && !s.ping && n >= 20 {
			p = p[int(p[0]&0x0f)*4:]
		}
		reply := byte(0)
		if s.v6 {
			reply = 129
		}
		if len(p) < 8 || p[0] != reply || (!s.ping && binary.BigEndian.Uint16(p[4:]) != s.id) {
			continue
		}
		out = append(out, answer{seq: int(binary.BigEndian.Uint16(p[6:])), from: s.o.Dst.Addr(), final: "reached"})
	}
}

// readErrQueue reads every message of fd's error queue.
func (s *session) readErrQueue(fd int) []answer {
	var out []answer
	for {
		n, oobn, _, _, err := unix.Recvmsg(fd, s.buf, s.oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return out
		}
		cms, err := unix.ParseSocketControlMessage(s.oob[:oobn])
		if err != nil {
			continue
		}
		for _, cm := range cms {
			if !(cm.Header.Level == unix.SOL_IP && cm.Header.Type == unix.IP_RECVERR) &&
				!(cm.Header.Level == unix.SOL_IPV6 && cm.Header.Type == unix.IPV6_RECVERR) {
				continue
			}
			if a, ok := s.classify(cm.Data, s.buf[:n]); ok {
				out = append(out, a)
			}
		}
	}
}

// classify reads a sock_extended_err and the offender's address after it.
func (s *session) classify(d, payload []byte) (answer, bool) {
	if len(d) < 16 {
		return answer{}, false
	}
	ne := binary.NativeEndian
	errno, origin, typ, code, info := ne.Uint32(d[0:]), d[4], d[5], d[6], ne.Uint32(d[8:])
	a := answer{seq: -1, from: offender(d[16:])}
	if s.o.Method != TCP {
		a.seq = s.seqInPayload(payload)
	}
	switch origin {
	case unix.SO_EE_ORIGIN_LOCAL:
		if unix.Errno(errno) == unix.EMSGSIZE && info > 0 {
			a.mtu, a.seq = int(info), -1
			return a, true
		}
		return a, false
	case unix.SO_EE_ORIGIN_ICMP:
		switch {
		case typ == 11:
			return a, true
		case typ == 3 && code == 4:
			a.mtu = int(info)
			return a, info > 0
		case typ == 3:
			a.final = s.unreachable(a.from, code == 3 || code == 2, map[uint8]string{
				0: "network unreachable", 1: "host unreachable", 2: "protocol unreachable", 3: "port unreachable",
				9: "administratively prohibited", 10: "administratively prohibited", 13: "administratively prohibited",
			}[code])
			return a, true
		}
	case unix.SO_EE_ORIGIN_ICMP6:
		switch {
		case typ == 3:
			return a, true
		case typ == 2:
			a.mtu = int(info)
			return a, info > 0
		case typ == 1:
			a.final = s.unreachable(a.from, code == 4, map[uint8]string{
				0: "no route", 1: "administratively prohibited", 3: "address unreachable", 4: "port unreachable",
				5: "source address failed policy", 6: "reject route",
			}[code])
			return a, true
		}
	}
	return a, false
}

// unreachable names a destination unreachable answer: "reached" when the
// destination itself refused the port (or protocol), else why.
func (s *session) unreachable(from netip.Addr, portOrProto bool, why string) string {
	if portOrProto && from == s.o.Dst.Addr() {
		return "reached"
	}
	if why == "" {
		why = "unreachable"
	}
	return why
}

// offender reads the sockaddr after a sock_extended_err.
func offender(b []byte) netip.Addr {
	if len(b) < 2 {
		return netip.Addr{}
	}
	switch binary.NativeEndian.Uint16(b) {
	case unix.AF_INET:
		if len(b) >= 8 {
			return netip.AddrFrom4([4]byte(b[4:8]))
		}
	case unix.AF_INET6:
		if len(b) >= 24 {
			return netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		}
	}
	return netip.Addr{}
}

// tcpHop sends a hop's probes (tcp) one after the other, each a connect
// from the same local address and port.
func (s *session) tcpHop(ctx context.Context, hop *Hop) error {
	for range s.o.ProbesPerHop {
		hop.Sent++
		a, rtt, err := s.tcpProbe(ctx, hop.TTL)
		if err != nil {
			return err
		}
		if a == nil {
			continue
		}
		hop.RTTs = append(hop.RTTs, rtt)
		hop.addrs = append(hop.addrs, a.from)
		if a.final != "" && hop.Final == "" {
			hop.Final = a.final
		}
	}
	return nil
}

// tcpProbe connects once with ttl and returns the answer, nil after the
// hop timeout.
func (s *session) tcpProbe(ctx context.Context, ttl int) (*answer, time.Duration, error) {
	fd, err := unix.Socket(s.family(), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("opening a TCP socket: %w", err)
	}
	defer unix.Close(fd)
	if err := s.setup(fd); err != nil {
		return nil, 0, err
	}
	// The same local port for every probe of the trace: reuse it, and
	// close with a reset so that no TIME_WAIT holds it.
	err = errors.Join(
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1),
		unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}),
		s.setTTL(fd, ttl),
	)
	if err != nil {
		return nil, 0, fmt.Errorf("setting socket options: %w", err)
	}
	if err := unix.Bind(fd, s.sockaddr(s.src)); err != nil {
		return nil, 0, fmt.Errorf("binding %s for the trace's flow: %w", s.src, err)
	}
	sent := time.Now()
	err = unix.Connect(fd, s.sockaddr(s.o.Dst))
	switch {
	case err == nil:
		return &answer{from: s.o.Dst.Addr(), final: "reached"}, time.Since(sent), nil
	case errors.Is(err, unix.ECONNREFUSED):
		return &answer{from: s.o.Dst.Addr(), final: "reached"}, time.Since(sent), nil
	case !errors.Is(err, unix.EINPROGRESS):
		return nil, 0, fmt.Errorf("connecting to %s: %w", s.o.Dst, err)
	}
	deadline := sent.Add(s.o.HopTimeout)
	for {
		if err := waitFD(ctx, fd, unix.POLLOUT, deadline); err != nil {
			if errors.Is(err, errTimeout) {
				return nil, 0, nil
			}
			return nil, 0, err
		}
		rtt := time.Since(sent)
		for _, a := range s.readErrQueue(fd) {
			if a.mtu == 0 {
				return &a, rtt, nil
			}
		}
		soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return nil, 0, fmt.Errorf("reading the connect's outcome: %w", err)
		}
		switch unix.Errno(soerr) {
		case 0, unix.ECONNREFUSED:
			return &answer{from: s.o.Dst.Addr(), final: "reached"}, rtt, nil
		case unix.EINPROGRESS, unix.EAGAIN:
		default:
			// An error without an ICMP message to say who sent it
			// (the SYN retransmissions ran out): no answer.
			return nil, 0, nil
		}
	}
}

var errTimeout = errors.New("timeout")

// waitFD waits until fd has events, deadline passes (errTimeout) or ctx
// ends (its error). An error in the socket wakes it too.
func waitFD(ctx context.Context, fd int, events int16, deadline time.Time) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		wait := time.Until(deadline)
		if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
			wait = time.Until(dl)
		}
		if wait <= 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			return errTimeout
		}
		// Wake now and then to notice a cancelled ctx.
		ms := int(min(wait, 100*time.Millisecond)/time.Millisecond) + 1
		fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(fds, ms)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("waiting for answers: %w", err)
		}
		if n > 0 && fds[0].Revents != 0 {
			return nil
		}
	}
}
