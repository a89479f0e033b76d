package testutil

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// maxUDPAnswer is the largest answer sent over UDP; a longer one is sent
// truncated, so that the client asks again over TCP. Go's resolver offers
// this EDNS(0) payload size.
const maxUDPAnswer = 1232

// DNSServer is an authoritative DNS server on 127.0.0.1, over UDP and
// TCP, for names made up for a test. It answers A and AAAA queries for a
// name it knows with that name's addresses of the family asked for (none
// is a NOERROR answer without records), and NXDOMAIN for names it does
// not know. The names can change while it runs (see Set and Delete), as
// for a DNS-rebinding test. Its answers have a TTL of 0.
//
// Go's resolver reads /etc/hosts before asking DNS, so test names should
// not be in it: use names under .test or .invalid.
type DNSServer struct {
	udp net.PacketConn
	tcp *connServer

	mu      sync.Mutex
	hosts   map[string][]netip.Addr // by canonical name, see canonicalName
	ptrs    map[string]string       // reverse names (in-addr.arpa, ip6.arpa) to names
	queries map[string]int          // by canonical name, all types
	total   int

	wg sync.WaitGroup // the UDP server
}

// NewDNSServer starts a DNS server answering for hosts (names with or
// without the final dot, in any case) and stops it at the end of the test.
func NewDNSServer(t testing.TB, hosts map[string][]netip.Addr) *DNSServer {
	t.Helper()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fake DNS server: listening on UDP: %v", err)
	}
	// The same port over TCP if it is free, any other otherwise: Resolver
	// dials whichever it is.
	tcp, err := net.Listen("tcp4", udp.LocalAddr().String())
	if err != nil {
		tcp, err = net.Listen("tcp4", "127.0.0.1:0")
	}
	if err != nil {
		_ = udp.Close()
		t.Fatalf("fake DNS server: listening on TCP: %v", err)
	}
	s := &DNSServer{
		udp:     udp,
		hosts:   make(map[string][]netip.Addr, len(hosts)),
		ptrs:    make(map[string]string),
		queries: make(map[string]int),
	}
	for name, addrs := range hosts {
		s.Set(name, addrs...)
	}
	s.wg.Add(1)
	go s.serveUDP()
	s.tcp = startConnServer(tcp, s.serveTCPConn)
	t.Cleanup(s.close)
	return s
}

// Addr returns the server's UDP address, host:port.
func (s *DNSServer) Addr() string { return s.udp.LocalAddr().String() }

// TCPAddr returns the server's TCP address, host:port.
func (s *DNSServer) TCPAddr() string { return s.tcp.l.Addr().String() }

// Set makes the server answer for host with addrs from now on, replacing
// what it answered before. Without addrs, host exists but has no address.
func (s *DNSServer) Set(host string, addrs ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hosts[canonicalName(host)] = append([]netip.Addr(nil), addrs...)
}

// SetPTR makes the server answer PTR queries for addr's reverse name
// (x.in-addr.arpa, x.ip6.arpa) with name, as a reverse lookup
// (net.Resolver.LookupAddr) asks; without it, they get NXDOMAIN.
func (s *DNSServer) SetPTR(addr netip.Addr, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ptrs[reverseName(addr)] = name
}

// reverseName is addr's name under in-addr.arpa or ip6.arpa, canonical.
func reverseName(addr netip.Addr) string {
	addr = addr.Unmap()
	var parts []string
	if addr.Is4() {
		b := addr.As4()
		for i := len(b) - 1; i >= 0; i-- {
			parts = append(parts, fmt.Sprint(b[i]))
		}
		return strings.Join(parts, ".") + ".in-addr.arpa"
	}
	b := addr.As16()
	for i := len(b) - 1; i >= 0; i-- {
		parts = append(parts, fmt.Sprintf("%x.%x", b[i]&0xf, b[i]>>4))
	}
	return strings.Join(parts, ".") + ".ip6.arpa"
}

// Delete makes the server answer NXDOMAIN for host from now on.
func (s *DNSServer) Delete(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.hosts, canonicalName(host))
}

// Queries returns how many queries the server has answered, of any name
// and type, over UDP and TCP. A lookup through Go's resolver usually asks
// twice, for A and AAAA.
func (s *DNSServer) Queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// QueriesFor returns how many queries for host the server has answered.
func (s *DNSServer) QueriesFor(host string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[canonicalName(host)]
}

// Resolver returns a resolver that asks only this server: Go's own
// resolver (PreferGo), dialing the server over UDP, or over TCP when it
// retries a truncated answer.
func (s *DNSServer) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			if strings.HasPrefix(network, "tcp") {
				return d.DialContext(ctx, "tcp4", s.TCPAddr())
			}
			return d.DialContext(ctx, "udp4", s.Addr())
		},
	}
}

func (s *DNSServer) close() {
	s.tcp.close()
	_ = s.udp.Close()
	s.wg.Wait()
}

func (s *DNSServer) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := s.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		resp, err := s.answer(buf[:n], maxUDPAnswer)
		if err != nil {
			continue // not a query: no answer, as from a lost packet
		}
		_, _ = s.udp.WriteTo(resp, addr)
	}
}

// serveTCPConn answers queries on c, each prefixed by its length (RFC
// 1035, 4.2.2), until c ends.
func (s *DNSServer) serveTCPConn(c net.Conn) {
	var size [2]byte
	for {
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		query := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(c, query); err != nil {
			return
		}
		resp, err := s.answer(query, 1<<16-1)
		if err != nil {
			return
		}
		msg := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
		if _, err := c.Write(append(msg, resp...)); err != nil {
			return
		}
	}
}

// answer builds the answer to query, truncated (no records, TC set) if it
// would be longer than limit.
func (s *DNSServer) answer(query []byte, limit int) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, fmt.Errorf("parsing a DNS query header: %w", err)
	}
	if h.Response {
		return nil, errors.New("a DNS response, not a query")
	}
	q, err := p.Question()
	if err != nil {
		return nil, fmt.Errorf("parsing a DNS question: %w", err)
	}
	name := canonicalName(q.Name.String())

	s.mu.Lock()
	addrs, known := s.hosts[name]
	ptr, isPTR := s.ptrs[name]
	if q.Type == dnsmessage.TypePTR {
		known = isPTR
	}
	s.total++
	s.queries[name]++
	s.mu.Unlock()

	rh := dnsmessage.Header{
		ID:                 h.ID,
		Response:           true,
		Authoritative:      true,
		RecursionDesired:   h.RecursionDesired,
		RecursionAvailable: true,
	}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	if q.Type == dnsmessage.TypePTR {
		return buildPTRAnswer(rh, q, ptr, known)
	}
	resp, err := buildAnswer(rh, q, addrs)
	if err != nil {
		return nil, err
	}
	if len(resp) > limit {
		rh.Truncated = true
		return buildAnswer(rh, q, nil)
	}
	return resp, nil
}

// buildPTRAnswer builds the answer to the PTR question q: ptr when known.
func buildPTRAnswer(h dnsmessage.Header, q dnsmessage.Question, ptr string, known bool) ([]byte, error) {
	b := dnsmessage.NewBuilder(nil, h)
	err := errors.Join(b.StartQuestions(), b.Question(q), b.StartAnswers())
	if err == nil && known {
		var target dnsmessage.Name
		if target, err = dnsmessage.NewName(strings.TrimSuffix(ptr, ".") + "."); err == nil {
			err = b.PTRResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET}, dnsmessage.PTRResource{PTR: target})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("building a DNS PTR answer: %w", err)
	}
	return b.Finish()
}

// buildAnswer builds a message with header h, question q and the addrs
// of q's type as answers.
func buildAnswer(h dnsmessage.Header, q dnsmessage.Question, addrs []netip.Addr) ([]byte, error) {
	b := dnsmessage.NewBuilder(nil, h)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, fmt.Errorf("building a DNS answer: %w", err)
	}
	if err := b.Question(q); err != nil {
		return nil, fmt.Errorf("building a DNS answer: %w", err)
	}
	if err := b.StartAnswers(); err != nil {
		return nil, fmt.Errorf("building a DNS answer: %w", err)
	}
	for _, a := range addrs {
		rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET}
		var err error
		switch a = a.Unmap(); {
		case q.Type == dnsmessage.TypeA && a.Is4():
			err = b.AResource(rr, dnsmessage.AResource{A: a.As4()})
		case q.Type == dnsmessage.TypeAAAA && a.Is6():
			err = b.AAAAResource(rr, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil, fmt.Errorf("building a DNS answer: %w", err)
		}
	}
	msg, err := b.Finish()
	if err != nil {
		return nil, fmt.Errorf("building a DNS answer: %w", err)
	}
	return msg, nil
}

// canonicalName is name in lower case without the final dot.
func canonicalName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}
