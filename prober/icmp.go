package prober

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/oxcross/oxcross/config"
)

// ICMPSettings configure the icmp kind: a module's `icmp:`.
type ICMPSettings struct {
	TrainSettings `yaml:",inline"`
}

// Validate reports every problem of the settings.
func (s *ICMPSettings) Validate() error { return s.validate() }

var _ config.TimeoutChecker = (*ICMPSettings)(nil)

// CheckTimeout refuses a timeout the train does not fit in
// (config.TimeoutChecker).
func (s *ICMPSettings) CheckTimeout(timeout time.Duration) error { return s.checkTimeout(timeout) }

// icmpKind sends a train of ICMP echo requests (one by default) and waits
// for their replies. It uses unprivileged ICMP ("ping") sockets where the
// kernel allows them (net.ipv4.ping_group_range) and raw sockets, which
// need CAP_NET_RAW, otherwise; it logs which once per family.
type icmpKind struct {
	logger *slog.Logger
	seq    atomic.Uint32
	logged [2]sync.Once
}

func newICMPKind(logger *slog.Logger) *icmpKind {
	return &icmpKind{logger: logger}
}

// Spec: kind icmp, the built-in module icmp, host targets, settings under
// `icmp:`.
func (k *icmpKind) Spec() config.Kind {
	return config.Kind{
		Name: "icmp", Builtin: "icmp", Target: config.TargetHost,
		SettingsKey: "icmp", NewSettings: func() config.Settings { return &ICMPSettings{} },
	}
}

// icmpTokenLen is the length of a train's random token at the start of
// every echo payload; the packet's index in the train follows it.
const icmpTokenLen = 14

func (k *icmpKind) Probe(ctx context.Context, p *Params, r *Result) {
	start := time.Now()
	ip, err := resolveIP(ctx, p.Module, p.Target.Address)
	r.Phases.Set(PhaseResolve, time.Since(start))
	if err != nil {
		r.fail(ReasonDNS, err)
		return
	}
	var ts TrainSettings
	if s, _ := p.Module.Settings.(*ICMPSettings); s != nil {
		ts = s.TrainSettings
	}
	n, every := ts.packets(), ts.interval()
	v6 := ip.To4() == nil
	conn, privileged, err := k.listen(v6)
	if err != nil {
		r.fail(ReasonICMP, err)
		return
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	// Unblock a read when ctx ends, so that no read outlives it.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	payload := make([]byte, icmpTokenLen+2)
	_, _ = rand.Read(payload[:icmpTokenLen])
	var typ, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1
	if v6 {
		typ, reply, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	id := os.Getpid() & 0xffff
	var dst net.Addr = &net.IPAddr{IP: ip}
	if !privileged {
		dst = &net.UDPAddr{IP: ip}
	}

	train := &Train{}
	r.Train = train
	sentAt := make([]time.Time, n)
	rtts := make([]time.Duration, n)
	var sendErr, readErr error
	unsent := 0 // packets whose sending failed: no reply to wait for
	buf := make([]byte, 1500)
	first := time.Now()
	for train.Received+unsent < n && ctx.Err() == nil {
		if next := train.Sent; next < n && !time.Now().Before(first.Add(time.Duration(next)*every)) {
			binary.BigEndian.PutUint16(payload[icmpTokenLen:], uint16(next))
			msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: int(k.seq.Add(1) & 0xffff), Data: payload}}
			wb, err := msg.Marshal(nil)
			if err != nil {
				r.fail(ReasonError, err)
				return
			}
			sentAt[next] = time.Now()
			train.Sent++
			if _, err := conn.WriteTo(wb, dst); err != nil {
				sendErr = fmt.Errorf("sending echo request to %s: %w", ip, err)
				unsent++
			}
			continue
		}
		wait := deadline
		if train.Sent < n {
			wait = first.Add(time.Duration(train.Sent) * every)
			if !deadline.IsZero() && deadline.Before(wait) {
				wait = deadline
			}
		}
		_ = conn.SetReadDeadline(wait)
		if ctx.Err() != nil {
			break
		}
		nr, from, err := conn.ReadFrom(buf)
		now := time.Now()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && train.Sent < n {
				continue // time for the next packet
			}
			readErr = err
			break
		}
		rm, err := icmp.ParseMessage(proto, buf[:nr])
		if err != nil || rm.Type != reply {
			continue
		}
		echo, ok := rm.Body.(*icmp.Echo)
		// Match on the payload: unprivileged sockets rewrite the id, and a
		// raw socket sees every reply to this host.
		if !ok || len(echo.Data) != len(payload) || !bytes.Equal(echo.Data[:icmpTokenLen], payload[:icmpTokenLen]) || !sameIP(from, ip) {
			continue
		}
		i := int(binary.BigEndian.Uint16(echo.Data[icmpTokenLen:]))
		if i >= train.Sent || rtts[i] != 0 {
			continue // not one of ours, or a duplicate
		}
		rtts[i] = max(now.Sub(sentAt[i]), time.Nanosecond)
		train.Received++
	}
	for _, d := range rtts {
		if d != 0 {
			train.RTTs = append(train.RTTs, d)
		}
	}
	median, _, _, ok := train.Stats()
	if !ok {
		switch {
		case sendErr != nil:
			r.fail(ReasonICMP, sendErr)
		case readErr != nil && !errors.Is(readErr, os.ErrDeadlineExceeded):
			r.fail(ReasonICMP, fmt.Errorf("waiting for echo reply from %s: %w", ip, readErr))
		default:
			r.fail(ReasonTimeout, fmt.Errorf("no echo reply from %s to %d request(s)", ip, train.Sent))
		}
		return
	}
	// A train's round trip is its median; for one packet, as before
	// trains, the time to the first request plus its round trip.
	r.Phases.Set(PhaseProcessing, median)
	r.Duration = first.Sub(start) + median
	r.Success = true
}

// listen opens an unprivileged ICMP socket, or a raw one when the kernel
// refuses the former.
func (k *icmpKind) listen(v6 bool) (*icmp.PacketConn, bool, error) {
	udp, raw, any, fam := "udp4", "ip4:icmp", "0.0.0.0", 0
	if v6 {
		udp, raw, any, fam = "udp6", "ip6:ipv6-icmp", "::", 1
	}
	c, uerr := icmp.ListenPacket(udp, any)
	if uerr == nil {
		k.logged[fam].Do(func() { k.logger.Info("ICMP probes use unprivileged ICMP sockets", "network", udp) })
		return c, false, nil
	}
	c, rerr := icmp.ListenPacket(raw, any)
	if rerr == nil {
		k.logged[fam].Do(func() {
			k.logger.Info("ICMP probes use raw sockets (unprivileged ICMP sockets refused)", "network", raw, "unprivileged_err", uerr)
		})
		return c, true, nil
	}
	return nil, false, fmt.Errorf("no ICMP socket: unprivileged: %v; raw (needs CAP_NET_RAW): %w", uerr, rerr)
}

func sameIP(a net.Addr, ip net.IP) bool {
	switch v := a.(type) {
	case *net.IPAddr:
		return v.IP.Equal(ip)
	case *net.UDPAddr:
		return v.IP.Equal(ip)
	}
	return false
}

// resolveIP resolves host to one address of the module's preferred family.
func resolveIP(ctx context.Context, m *config.Module, host string) (net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip, nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	want4 := m.IPFamily != config.IP6
	for _, a := range addrs {
		if (a.IP.To4() != nil) == want4 || m.IPFamily == config.IPAny {
			return a.IP, nil
		}
	}
	if !m.NoIPFallback && len(addrs) > 0 {
		return addrs[0].IP, nil
	}
	return nil, &net.DNSError{Err: "no address of family " + string(m.IPFamily), Name: host, IsNotFound: true}
}
