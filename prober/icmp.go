package prober

import (
	"bytes"
	"context"
	"crypto/rand"
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

// icmpKind sends one ICMP echo request and waits for its reply. It uses
// unprivileged ICMP ("ping") sockets where the kernel allows them
// (net.ipv4.ping_group_range) and raw sockets, which need CAP_NET_RAW,
// otherwise; it logs which once per family.
type icmpKind struct {
	logger *slog.Logger
	seq    atomic.Uint32
	logged [2]sync.Once
}

func newICMPKind(logger *slog.Logger) *icmpKind {
	return &icmpKind{logger: logger}
}

// Spec: kind icmp, the built-in module icmp, host targets, no settings.
func (k *icmpKind) Spec() config.Kind {
	return config.Kind{Name: "icmp", Builtin: "icmp", Target: config.TargetHost}
}

func (k *icmpKind) Probe(ctx context.Context, p *Params, r *Result) {
	start := time.Now()
	ip, err := resolveIP(ctx, p.Module, p.Target.Address)
	r.Phases.Set(PhaseResolve, time.Since(start))
	if err != nil {
		r.fail(ReasonDNS, err)
		return
	}
	v6 := ip.To4() == nil
	conn, privileged, err := k.listen(v6)
	if err != nil {
		r.fail(ReasonICMP, err)
		return
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Close the socket when ctx ends, so that a read never outlives it.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	payload := make([]byte, 16)
	_, _ = rand.Read(payload)
	var typ, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1
	if v6 {
		typ, reply, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	id := os.Getpid() & 0xffff
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: int(k.seq.Add(1) & 0xffff), Data: payload}}
	wb, err := msg.Marshal(nil)
	if err != nil {
		r.fail(ReasonError, err)
		return
	}
	var dst net.Addr = &net.IPAddr{IP: ip}
	if !privileged {
		dst = &net.UDPAddr{IP: ip}
	}
	sent := time.Now()
	if _, err := conn.WriteTo(wb, dst); err != nil {
		r.fail(ReasonICMP, fmt.Errorf("sending echo request to %s: %w", ip, err))
		return
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			reason := ReasonICMP
			if errors.Is(err, os.ErrDeadlineExceeded) {
				reason = ReasonTimeout
			}
			r.fail(reason, fmt.Errorf("waiting for echo reply from %s: %w", ip, err))
			return
		}
		rm, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || rm.Type != reply {
			continue
		}
		echo, ok := rm.Body.(*icmp.Echo)
		// Match on the payload: unprivileged sockets rewrite the id, and a
		// raw socket sees every reply to this host.
		if !ok || !bytes.Equal(echo.Data, payload) || !sameIP(from, ip) {
			continue
		}
		now := time.Now()
		r.Phases.Set(PhaseProcessing, now.Sub(sent))
		r.Duration = now.Sub(start)
		r.Success = true
		return
	}
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
