package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/config"
)

// The dns kind's transports.
const (
	dnsUDP = "udp"
	dnsTCP = "tcp"
	dnsDoT = "dot"
)

// dnsEDNSSize is the UDP payload size the dns kind offers with EDNS(0),
// the size DNS Flag Day 2020 recommends; a longer answer comes truncated
// and the probe asks again over TCP.
const dnsEDNSSize = 1232

// DNSSettings configure the dns kind: a module's `dns:`.
type DNSSettings struct {
	// QueryName is the name asked for (required).
	QueryName string `yaml:"query_name" json:"query_name,omitempty"`
	// QueryType is the record type asked for, by name (A, AAAA, MX, …);
	// A when empty.
	QueryType string `yaml:"query_type,omitempty" json:"query_type,omitempty"`
	// Transport is udp (the default), tcp, or dot (DNS over TLS).
	Transport string `yaml:"transport,omitempty" json:"transport,omitempty"`
	// RecursionDesired sets the query's RD bit; true when unset.
	RecursionDesired *bool `yaml:"recursion_desired,omitempty" json:"recursion_desired,omitempty"`
	// ValidRcodes are the answer's acceptable response codes, by name;
	// NOERROR when empty.
	ValidRcodes []string `yaml:"valid_rcodes,omitempty" json:"valid_rcodes,omitempty"`
	// The checks of each section of the answer.
	ValidateAnswer     DNSRecordChecks `yaml:"validate_answer_rrs,omitempty" json:"validate_answer_rrs,omitzero"`
	ValidateAuthority  DNSRecordChecks `yaml:"validate_authority_rrs,omitempty" json:"validate_authority_rrs,omitzero"`
	ValidateAdditional DNSRecordChecks `yaml:"validate_additional_rrs,omitempty" json:"validate_additional_rrs,omitzero"`
	// TLSConfig are the TLS client settings of transport dot.
	TLSConfig TLSSettings `yaml:"tls_config,omitempty" json:"tls_config,omitzero"`

	qtype  uint16
	rcodes []int
}

// DNSRecordChecks are regular expressions matched against each record of
// one section of an answer, in its zone-file text form
// ("example.com.\t300\tIN\tA\t192.0.2.1"), unanchored.
type DNSRecordChecks struct {
	// FailIfMatchesRegexp fails the probe if any record matches any of
	// them.
	FailIfMatchesRegexp []string `yaml:"fail_if_matches_regexp,omitempty" json:"fail_if_matches_regexp,omitempty"`
	// FailIfNotMatchesRegexp fails the probe if one of them matches no
	// record (an empty section matches none).
	FailIfNotMatchesRegexp []string `yaml:"fail_if_not_matches_regexp,omitempty" json:"fail_if_not_matches_regexp,omitempty"`

	matches, notMatches []*regexp.Regexp
}

// compile compiles the patterns, keeping them for the probes.
func (c *DNSRecordChecks) compile() error {
	var errs []error
	c.matches, c.notMatches = nil, nil
	for _, l := range []struct {
		key      string
		patterns []string
		out      *[]*regexp.Regexp
	}{
		{"fail_if_matches_regexp", c.FailIfMatchesRegexp, &c.matches},
		{"fail_if_not_matches_regexp", c.FailIfNotMatchesRegexp, &c.notMatches},
	} {
		for _, p := range l.patterns {
			re, err := regexp.Compile(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", l.key, err))
				continue
			}
			*l.out = append(*l.out, re)
		}
	}
	return errors.Join(errs...)
}

// check returns what is wrong with the records of section, nil if
// nothing is.
func (c *DNSRecordChecks) check(section string, rrs []dns.RR) error {
	matches, notMatches := c.matches, c.notMatches
	if len(matches) != len(c.FailIfMatchesRegexp) || len(notMatches) != len(c.FailIfNotMatchesRegexp) {
		// Settings that were not validated (built in code): compile here.
		cc := DNSRecordChecks{FailIfMatchesRegexp: c.FailIfMatchesRegexp, FailIfNotMatchesRegexp: c.FailIfNotMatchesRegexp}
		if err := cc.compile(); err != nil {
			return err
		}
		matches, notMatches = cc.matches, cc.notMatches
	}
	texts := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if _, opt := rr.(*dns.OPT); !opt {
			texts = append(texts, rr.String())
		}
	}
	for _, re := range matches {
		for _, t := range texts {
			if re.MatchString(t) {
				return fmt.Errorf("%s record %q matches fail_if_matches_regexp %q", section, t, re)
			}
		}
	}
	for _, re := range notMatches {
		if !slices.ContainsFunc(texts, re.MatchString) {
			return fmt.Errorf("no %s record (of %d) matches fail_if_not_matches_regexp %q", section, len(texts), re)
		}
	}
	return nil
}

// Validate reports every problem of the settings and compiles their
// regular expressions.
func (s *DNSSettings) Validate() error {
	var errs []error
	if s.QueryName == "" {
		errs = append(errs, errors.New("query_name: missing; say which name to ask for"))
	} else if _, ok := dns.IsDomainName(s.QueryName); !ok {
		errs = append(errs, fmt.Errorf("query_name: %q is not a domain name", s.QueryName))
	}
	s.qtype = dns.TypeA
	if s.QueryType != "" {
		t, ok := dns.StringToType[strings.ToUpper(s.QueryType)]
		if !ok || t == dns.TypeNone || t == dns.TypeOPT {
			errs = append(errs, fmt.Errorf("query_type: %q is not a DNS record type (A, AAAA, MX, TXT, SOA, NS, CNAME, …)", s.QueryType))
		}
		s.qtype = t
	}
	switch s.Transport {
	case "", dnsUDP, dnsTCP, dnsDoT:
	default:
		errs = append(errs, fmt.Errorf("transport: %q is not udp, tcp or dot", s.Transport))
	}
	s.rcodes = nil
	for _, name := range s.ValidRcodes {
		rc, ok := dns.StringToRcode[strings.ToUpper(name)]
		if !ok {
			errs = append(errs, fmt.Errorf("valid_rcodes: %q is not a DNS response code (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, …)", name))
			continue
		}
		s.rcodes = append(s.rcodes, rc)
	}
	for _, sec := range []struct {
		key string
		c   *DNSRecordChecks
	}{
		{"validate_answer_rrs", &s.ValidateAnswer},
		{"validate_authority_rrs", &s.ValidateAuthority},
		{"validate_additional_rrs", &s.ValidateAdditional},
	} {
		if err := sec.c.compile(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", sec.key, err))
		}
	}
	if s.TLSConfig != (TLSSettings{}) && s.Transport != dnsDoT {
		errs = append(errs, errors.New("tls_config: only for transport dot"))
	}
	if err := s.TLSConfig.validate(); err != nil {
		errs = append(errs, fmt.Errorf("tls_config: %w", err))
	}
	return errors.Join(errs...)
}

var _ config.CredentialCarrier = (*DNSSettings)(nil)

// CarriesCredentials reports whether the settings present a TLS client
// certificate (config.CredentialCarrier).
func (s *DNSSettings) CarriesCredentials() bool { return s.TLSConfig.carriesCredentials() }

// query returns a new query, with a random id, for the settings.
func (s *DNSSettings) query() *dns.Msg {
	qtype := s.qtype
	if qtype == dns.TypeNone {
		qtype = dns.StringToType[strings.ToUpper(s.QueryType)]
		if qtype == dns.TypeNone {
			qtype = dns.TypeA
		}
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(s.QueryName), qtype)
	m.RecursionDesired = s.RecursionDesired == nil || *s.RecursionDesired
	m.SetEdns0(dnsEDNSSize, false)
	return m
}

// validRcode reports whether rc is one of the settings' valid_rcodes.
func (s *DNSSettings) validRcode(rc int) bool {
	if len(s.ValidRcodes) == 0 {
		return rc == dns.RcodeSuccess
	}
	if len(s.rcodes) == len(s.ValidRcodes) {
		return slices.Contains(s.rcodes, rc)
	}
	return slices.ContainsFunc(s.ValidRcodes, func(n string) bool { return strings.EqualFold(n, dns.RcodeToString[rc]) })
}

// DNSAnswer describes the answer a dns probe got.
type DNSAnswer struct {
	// Rcode is the answer's response code.
	Rcode int
	// Answer, Authority and Additional count the records of each section
	// (the EDNS(0) OPT pseudo-record not included).
	Answer, Authority, Additional int
	// Truncated is set when the answer over UDP came truncated and the
	// probe asked again over TCP.
	Truncated bool
}

// String describes the answer for a person: "NXDOMAIN, 0 answer, 1
// authority, 0 additional records".
func (a *DNSAnswer) String() string {
	s := fmt.Sprintf("%s, %d answer, %d authority, %d additional records", rcodeName(a.Rcode), a.Answer, a.Authority, a.Additional)
	if a.Truncated {
		s += " (truncated over UDP, asked again over TCP)"
	}
	return s
}

// dnsProbeMetrics registers a dns probe's answer on a /probe registry.
func dnsProbeMetrics(reg *prometheus.Registry, a *DNSAnswer) {
	setGauge(reg, "probe_dns_rcode", "Response code of the DNS answer (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, …).", float64(a.Rcode))
	setGauge(reg, "probe_dns_answer_rrs", "Records in the answer section.", float64(a.Answer))
	setGauge(reg, "probe_dns_authority_rrs", "Records in the authority section.", float64(a.Authority))
	setGauge(reg, "probe_dns_additional_rrs", "Records in the additional section, the EDNS(0) OPT record not included.", float64(a.Additional))
	truncated := 0.0
	if a.Truncated {
		truncated = 1
	}
	setGauge(reg, "probe_dns_truncated", "1 if the UDP answer came truncated and the query was repeated over TCP.", truncated)
}

// dnsKind sends one DNS query to a server (the target, host:port, port 53
// by default) and checks the answer's response code and records.
type dnsKind struct{}

// Spec: kind dns, no built-in module (a query needs a name), host:port
// targets with port 53 by default, settings under `dns:`.
func (dnsKind) Spec() config.Kind {
	return config.Kind{
		Name: "dns", Target: config.TargetHostPort, DefaultPort: 53,
		SettingsKey: "dns", NewSettings: func() config.Settings { return &DNSSettings{} },
	}
}

func (dnsKind) Probe(ctx context.Context, p *Params, r *Result) {
	start := time.Now()
	defer func() { r.Duration = time.Since(start) }()
	s, _ := p.Module.Settings.(*DNSSettings)
	if s == nil || s.QueryName == "" {
		r.fail(ReasonError, fmt.Errorf("module %s: no dns query_name", p.Target.Module))
		return
	}
	host, port, err := net.SplitHostPort(p.Target.Address)
	if err != nil {
		r.fail(ReasonError, fmt.Errorf("DNS server address %q: %w", p.Target.Address, err))
		return
	}
	ip, err := resolveIP(ctx, p.Module, host)
	r.Phases.Set(PhaseResolve, time.Since(start))
	if err != nil {
		reason := classify(err)
		if reason != ReasonTimeout {
			reason = ReasonDNS
		}
		r.fail(reason, fmt.Errorf("resolving the DNS server %s: %w", host, err))
		return
	}
	addr := net.JoinHostPort(ip.String(), port)
	q := s.query()
	// 0 unless a TCP connection or TLS handshake replaces them, so that
	// a leaf's gauges never keep an earlier probe's.
	r.Phases.Set(PhaseConnect, 0)
	r.Phases.Set(PhaseTLS, 0)

	var (
		resp   *dns.Msg
		took   time.Duration
		reason Reason
		a      DNSAnswer
	)
	switch s.Transport {
	case dnsTCP:
		resp, took, reason, err = dnsStream(ctx, r, addr, q, nil)
	case dnsDoT:
		tc, terr := tlsConfig(s.TLSConfig)
		if terr != nil {
			r.fail(ReasonError, terr)
			return
		}
		if tc.ServerName == "" {
			tc.ServerName = host
		}
		resp, took, reason, err = dnsStream(ctx, r, addr, q, tc)
	default:
		resp, took, reason, err = dnsUDPExchange(ctx, addr, q)
		if err == nil && resp.Truncated {
			a.Truncated = true
			var more time.Duration
			resp, more, reason, err = dnsStream(ctx, r, addr, q, nil)
			took += more
			if err != nil {
				err = fmt.Errorf("after a truncated UDP answer: %w", err)
			}
		}
	}
	r.Phases.Set(PhaseProcessing, took)
	if err != nil {
		r.fail(reason, fmt.Errorf("DNS query %s %s to %s: %w", dns.TypeToString[q.Question[0].Qtype], q.Question[0].Name, addr, err))
		return
	}
	a.Rcode = resp.Rcode
	a.Answer, a.Authority = len(resp.Answer), len(resp.Ns)
	for _, rr := range resp.Extra {
		if _, opt := rr.(*dns.OPT); !opt {
			a.Additional++
		}
	}
	r.DNS = &a
	if !s.validRcode(resp.Rcode) {
		want := s.ValidRcodes
		if len(want) == 0 {
			want = []string{"NOERROR"}
		}
		r.fail(ReasonDNSRcode, fmt.Errorf("DNS answer from %s: rcode %s, not one of valid_rcodes %s", addr, rcodeName(resp.Rcode), strings.Join(want, ", ")))
		return
	}
	for _, sec := range []struct {
		name string
		c    *DNSRecordChecks
		rrs  []dns.RR
	}{
		{"answer", &s.ValidateAnswer, resp.Answer},
		{"authority", &s.ValidateAuthority, resp.Ns},
		{"additional", &s.ValidateAdditional, resp.Extra},
	} {
		if err := sec.c.check(sec.name, sec.rrs); err != nil {
			r.fail(ReasonBodyMismatch, fmt.Errorf("DNS answer from %s: %w", addr, err))
			return
		}
	}
	r.Success = true
}

func rcodeName(rc int) string {
	if n, ok := dns.RcodeToString[rc]; ok {
		return n
	}
	return fmt.Sprintf("RCODE%d", rc)
}

// watchConn makes c's reads and writes end when ctx does; the returned
// function stops watching.
func watchConn(ctx context.Context, c net.Conn) func() bool {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
}

// dnsExchangeReason is the reason of a failed exchange: a timeout when
// ctx ended, else what err says, else fallback.
func dnsExchangeReason(ctx context.Context, err error, fallback Reason) Reason {
	if ctx.Err() != nil {
		return ReasonTimeout
	}
	if r := classify(err); r != ReasonError {
		return r
	}
	return fallback
}

// dnsUDPExchange sends q over UDP to addr and waits for its answer. A
// datagram that is not the answer to q (another id, another question, not
// a DNS message) is ignored, as a resolver ignores spoofed or late
// answers: the probe keeps waiting, and times out if the answer never
// comes (its error then counts the datagrams it ignored).
func dnsUDPExchange(ctx context.Context, addr string, q *dns.Msg) (*dns.Msg, time.Duration, Reason, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, 0, dnsExchangeReason(ctx, err, ReasonConnect), err
	}
	defer c.Close()
	defer watchConn(ctx, c)()
	co := &dns.Conn{Conn: c, UDPSize: dns.MaxMsgSize}
	sent := time.Now()
	if err := co.WriteMsg(q); err != nil {
		return nil, time.Since(sent), dnsExchangeReason(ctx, err, ReasonConnect), fmt.Errorf("sending: %w", err)
	}
	var ignored int
	var lastWrong error
	for {
		raw, err := co.ReadMsgHeader(nil)
		if errors.Is(err, dns.ErrShortRead) {
			ignored, lastWrong = ignored+1, err
			continue
		}
		if err != nil {
			reason := dnsExchangeReason(ctx, err, ReasonConnect)
			if ignored > 0 {
				err = fmt.Errorf("%w; %d other datagrams ignored (the last: %w)", err, ignored, lastWrong)
			}
			return nil, time.Since(sent), reason, fmt.Errorf("waiting for the answer: %w", err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(raw); err != nil {
			ignored, lastWrong = ignored+1, fmt.Errorf("not a DNS message: %w", err)
			continue
		}
		if err := dnsAnswers(q, m); err != nil {
			ignored, lastWrong = ignored+1, err
			continue
		}
		return m, time.Since(sent), ReasonOK, nil
	}
}

// dnsStream sends q over TCP (TLS with tc) to addr and reads its answer,
// setting r's connect and, with TLS, tls phases.
func dnsStream(ctx context.Context, r *Result, addr string, q *dns.Msg, tc *tls.Config) (*dns.Msg, time.Duration, Reason, error) {
	var d net.Dialer
	start := time.Now()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, 0, dnsExchangeReason(ctx, err, ReasonConnect), fmt.Errorf("connecting over TCP: %w", err)
	}
	r.Phases.Set(PhaseConnect, time.Since(start))
	defer c.Close()
	defer watchConn(ctx, c)()
	if tc != nil {
		tlsStart := time.Now()
		tconn := tls.Client(c, tc)
		err := tconn.HandshakeContext(ctx)
		r.Phases.Set(PhaseTLS, time.Since(tlsStart))
		if err != nil {
			reason := dnsExchangeReason(ctx, err, ReasonTLS)
			if reason == ReasonConnect {
				reason = ReasonTLS
			}
			return nil, 0, reason, fmt.Errorf("TLS handshake: %w", err)
		}
		r.TLSExpiry = earliestExpiry(tconn.ConnectionState().PeerCertificates)
		c = tconn
	}
	co := &dns.Conn{Conn: c}
	sent := time.Now()
	if err := co.WriteMsg(q); err != nil {
		return nil, time.Since(sent), dnsExchangeReason(ctx, err, ReasonConnect), fmt.Errorf("sending: %w", err)
	}
	raw, err := co.ReadMsgHeader(nil)
	took := time.Since(sent)
	if err != nil {
		return nil, took, dnsExchangeReason(ctx, err, ReasonInvalidResponse), fmt.Errorf("waiting for the answer: %w", err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil {
		return nil, took, ReasonInvalidResponse, fmt.Errorf("not a DNS message: %w", err)
	}
	if err := dnsAnswers(q, m); err != nil {
		return nil, took, ReasonInvalidResponse, err
	}
	return m, took, ReasonOK, nil
}

// dnsAnswers reports whether m is the answer to q: a response with q's id
// and q's question (if it repeats one; error answers may not).
func dnsAnswers(q, m *dns.Msg) error {
	switch {
	case !m.Response:
		return errors.New("a query, not an answer")
	case m.Id != q.Id:
		return fmt.Errorf("an answer with id %d to a query with id %d", m.Id, q.Id)
	case len(m.Question) > 1:
		return fmt.Errorf("an answer with %d questions", len(m.Question))
	case len(m.Question) == 1:
		got, want := m.Question[0], q.Question[0]
		if !strings.EqualFold(got.Name, want.Name) || got.Qtype != want.Qtype || got.Qclass != want.Qclass {
			return fmt.Errorf("an answer to another question (%s %s)", dns.TypeToString[got.Qtype], got.Name)
		}
	}
	return nil
}
