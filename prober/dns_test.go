package prober

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
)

// The names the test DNS server knows (under .test, never in /etc/hosts).
const (
	dnsOK      = "ok.oxcross.test."      // A 192.0.2.1, NS and glue
	dnsNX      = "nx.oxcross.test."      // NXDOMAIN with the zone's SOA
	dnsFail    = "fail.oxcross.test."    // SERVFAIL
	dnsBig     = "big.oxcross.test."     // truncated over UDP, 40 TXT records over TCP
	dnsForged  = "forged.oxcross.test."  // only answers with a wrong id
	dnsSpoofed = "spoofed.oxcross.test." // a wrong-id answer (192.0.2.66), then the right one
	dnsSilent  = "silent.oxcross.test."  // never answered
)

// testDNSServer is a DNS server on loopback, over UDP and TCP on one port
// (and DNS over TLS on another when started with a certificate),
// answering the names above.
type testDNSServer struct {
	addr    string // UDP and TCP, host:port
	dotAddr string // DNS over TLS, when started with a certificate
	udp     atomic.Int64
	tcp     atomic.Int64
	// rd is the RD bit of the last query of each type.
	mu sync.Mutex
	rd map[uint16]bool
}

// recursionDesired returns the RD bit of the last query of type qtype.
func (s *testDNSServer) recursionDesired(qtype uint16) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rd[qtype]
}

// startDNSServer starts the server, with DNS over TLS when cert is set,
// and stops it at the end of the test.
func startDNSServer(t *testing.T, cert *tls.Certificate) *testDNSServer {
	t.Helper()
	s := &testDNSServer{rd: map[uint16]bool{}}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", pc.LocalAddr().String())
	if err != nil {
		_ = pc.Close()
		t.Skipf("the UDP server's port is taken over TCP: %v", err)
	}
	s.addr = pc.LocalAddr().String()
	servers := []*dns.Server{
		{PacketConn: pc, Handler: dns.HandlerFunc(s.serve)},
		{Listener: l, Handler: dns.HandlerFunc(s.serve)},
	}
	if cert != nil {
		tl, err := tls.Listen("tcp4", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		s.dotAddr = tl.Addr().String()
		servers = append(servers, &dns.Server{Listener: tl, Net: "tcp-tls", Handler: dns.HandlerFunc(s.serve)})
	}
	for _, srv := range servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.ActivateAndServe()
		}()
		select {
		case <-started:
		case <-done:
			t.Fatal("the test DNS server did not start")
		}
		t.Cleanup(func() {
			_ = srv.Shutdown()
			<-done
		})
	}
	return s
}

func (s *testDNSServer) serve(w dns.ResponseWriter, q *dns.Msg) {
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	if udp {
		s.udp.Add(1)
	} else {
		s.tcp.Add(1)
	}
	s.mu.Lock()
	s.rd[q.Question[0].Qtype] = q.RecursionDesired
	s.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	name := strings.ToLower(q.Question[0].Name)
	rr := func(text string) dns.RR {
		r, err := dns.NewRR(text)
		if err != nil {
			panic(err)
		}
		return r
	}
	switch name {
	case dnsOK:
		switch q.Question[0].Qtype {
		case dns.TypeA:
			m.Answer = append(m.Answer, rr(dnsOK+" 300 IN A 192.0.2.1"))
		case dns.TypeMX:
			m.Answer = append(m.Answer, rr(dnsOK+" 300 IN MX 10 mail.oxcross.test."))
		}
		m.Ns = append(m.Ns, rr("oxcross.test. 300 IN NS ns1.oxcross.test."))
		m.Extra = append(m.Extra, rr("ns1.oxcross.test. 300 IN A 192.0.2.53"))
	case dnsNX:
		m.Rcode = dns.RcodeNameError
		m.Ns = append(m.Ns, rr("oxcross.test. 300 IN SOA ns1.oxcross.test. hostmaster.oxcross.test. 1 3600 600 86400 300"))
	case dnsFail:
		m.Rcode = dns.RcodeServerFailure
	case dnsBig:
		if udp {
			m.Truncated = true
			break
		}
		for i := range 40 {
			m.Answer = append(m.Answer, rr(dnsBig+` 300 IN TXT "record `+strconv.Itoa(i)+` `+strings.Repeat("x", 100)+`"`))
		}
	case dnsForged, dnsSpoofed:
		forged := m.Copy()
		forged.Id = q.Id + 1
		forged.Answer = append(forged.Answer, rr(name+" 300 IN A 192.0.2.66"))
		_ = w.WriteMsg(forged)
		if name == dnsForged {
			return
		}
		m.Answer = append(m.Answer, rr(name+" 300 IN A 192.0.2.1"))
	case dnsSilent:
		return
	}
	_ = w.WriteMsg(m)
}

// dnsModule is a module of the dns kind with settings s, validated.
func dnsModule(t *testing.T, s DNSSettings) config.Module {
	t.Helper()
	if err := s.Validate(); err != nil {
		t.Fatalf("settings %+v: %v", s, err)
	}
	return config.Module{Kind: "dns", Settings: &s}
}

func TestDNSKind(t *testing.T) {
	t.Parallel()
	fx := newTLSFixture(t)
	srv := startDNSServer(t, &fx.server.TLS)
	no := false
	for _, tc := range []struct {
		name    string
		s       DNSSettings
		addr    string        // the target; the server's UDP and TCP address when empty
		timeout time.Duration // probeTimeout when 0
		want    Reason
		check   func(t *testing.T, r Result)
	}{
		{
			name: "the right answer",
			s: DNSSettings{
				QueryName:          "ok.oxcross.test",
				ValidateAnswer:     DNSRecordChecks{FailIfNotMatchesRegexp: []string{`\tA\t192\.0\.2\.1$`}, FailIfMatchesRegexp: []string{`192\.0\.2\.66`}},
				ValidateAuthority:  DNSRecordChecks{FailIfNotMatchesRegexp: []string{`NS\tns1\.oxcross\.test\.$`}},
				ValidateAdditional: DNSRecordChecks{FailIfNotMatchesRegexp: []string{`^ns1\.oxcross\.test\.`}, FailIfMatchesRegexp: []string{`OPT`}},
			},
			want: ReasonOK,
			check: func(t *testing.T, r Result) {
				if r.DNS == nil || *r.DNS != (DNSAnswer{Rcode: dns.RcodeSuccess, Answer: 1, Authority: 1, Additional: 1}) {
					t.Errorf("answer %+v, want NOERROR with 1 record in each section", r.DNS)
				}
				phaseOf(t, r, PhaseResolve)
				if d := phaseOf(t, r, PhaseProcessing); d <= 0 || d > r.Duration {
					t.Errorf("processing phase %v, want in (0, %v]", d, r.Duration)
				}
				for _, p := range []Phase{PhaseConnect, PhaseTLS} {
					if d := phaseOf(t, r, p); d != 0 {
						t.Errorf("%s phase %v over UDP, want 0", p, d)
					}
				}
				if !srv.recursionDesired(dns.TypeA) {
					t.Error("the query did not ask for recursion (recursion_desired defaults to true)")
				}
			},
		},
		{
			name: "recursion not desired, over TCP, MX",
			s: DNSSettings{QueryName: "ok.oxcross.test", QueryType: "mx", Transport: "tcp", RecursionDesired: &no,
				ValidateAnswer: DNSRecordChecks{FailIfNotMatchesRegexp: []string{`MX\t10 mail\.oxcross\.test\.`}}},
			want: ReasonOK,
			check: func(t *testing.T, r Result) {
				if d := phaseOf(t, r, PhaseConnect); d <= 0 {
					t.Errorf("connect phase %v over TCP, want > 0", d)
				}
				if srv.recursionDesired(dns.TypeMX) {
					t.Error("the query asked for recursion with recursion_desired false")
				}
			},
		},
		{
			name: "a target by name",
			s:    DNSSettings{QueryName: "ok.oxcross.test"},
			addr: "localhost:" + port(t, srv.addr),
			want: ReasonOK,
			check: func(t *testing.T, r Result) {
				phaseOf(t, r, PhaseResolve)
			},
		},
		{
			name: "a record that must not be there",
			s:    DNSSettings{QueryName: "ok.oxcross.test", ValidateAnswer: DNSRecordChecks{FailIfMatchesRegexp: []string{`192\.0\.2\.1$`}}},
			want: ReasonBodyMismatch,
		},
		{
			name: "a record that is not there",
			s:    DNSSettings{QueryName: "ok.oxcross.test", ValidateAdditional: DNSRecordChecks{FailIfNotMatchesRegexp: []string{`AAAA`}}},
			want: ReasonBodyMismatch,
		},
		{
			name: "NXDOMAIN",
			s:    DNSSettings{QueryName: "nx.oxcross.test"},
			want: ReasonDNSRcode,
			check: func(t *testing.T, r Result) {
				if r.DNS == nil || r.DNS.Rcode != dns.RcodeNameError || r.DNS.Authority != 1 {
					t.Errorf("answer %+v, want NXDOMAIN with the SOA", r.DNS)
				}
				if !strings.Contains(r.Err.Error(), "rcode NXDOMAIN, not one of valid_rcodes NOERROR") {
					t.Errorf("error %q does not say which rcode", r.Err)
				}
			},
		},
		{
			name: "NXDOMAIN expected",
			s: DNSSettings{QueryName: "nx.oxcross.test", ValidRcodes: []string{"nxdomain"},
				ValidateAuthority: DNSRecordChecks{FailIfNotMatchesRegexp: []string{`SOA\tns1\.oxcross\.test\.`}}},
			want: ReasonOK,
		},
		{
			name: "SERVFAIL",
			s:    DNSSettings{QueryName: "fail.oxcross.test", ValidRcodes: []string{"NOERROR", "NXDOMAIN"}},
			want: ReasonDNSRcode,
			check: func(t *testing.T, r Result) {
				if r.DNS == nil || r.DNS.Rcode != dns.RcodeServerFailure {
					t.Errorf("answer %+v, want SERVFAIL", r.DNS)
				}
			},
		},
		{
			name: "truncated over UDP, answered over TCP",
			s:    DNSSettings{QueryName: "big.oxcross.test", QueryType: "TXT", ValidateAnswer: DNSRecordChecks{FailIfNotMatchesRegexp: []string{`"record 39 x+"`}}},
			want: ReasonOK,
			check: func(t *testing.T, r Result) {
				if r.DNS == nil || !r.DNS.Truncated || r.DNS.Answer != 40 {
					t.Errorf("answer %+v, want 40 records after a truncated answer", r.DNS)
				}
				if d := phaseOf(t, r, PhaseConnect); d <= 0 {
					t.Errorf("connect phase %v of the TCP retry, want > 0", d)
				}
			},
		},
		{
			name:    "a server that never answers",
			s:       DNSSettings{QueryName: "silent.oxcross.test"},
			timeout: 300 * time.Millisecond,
			want:    ReasonTimeout,
		},
		{
			name:    "only forged answers (wrong id) over UDP",
			s:       DNSSettings{QueryName: "forged.oxcross.test"},
			timeout: 300 * time.Millisecond,
			want:    ReasonTimeout,
			check: func(t *testing.T, r Result) {
				if r.DNS != nil {
					t.Errorf("a forged answer was taken: %+v", r.DNS)
				}
				if !strings.Contains(r.Err.Error(), "1 other datagrams ignored (the last: an answer with id") {
					t.Errorf("error %q does not say that a wrong-id answer was ignored", r.Err)
				}
			},
		},
		{
			name: "a forged answer (wrong id) before the right one over UDP",
			s: DNSSettings{QueryName: "spoofed.oxcross.test",
				ValidateAnswer: DNSRecordChecks{FailIfNotMatchesRegexp: []string{`192\.0\.2\.1$`}, FailIfMatchesRegexp: []string{`192\.0\.2\.66`}}},
			want: ReasonOK,
		},
		{
			name: "a forged answer (wrong id) over TCP",
			s:    DNSSettings{QueryName: "forged.oxcross.test", Transport: "tcp"},
			want: ReasonInvalidResponse,
			check: func(t *testing.T, r Result) {
				if r.DNS != nil {
					t.Errorf("a forged answer was taken: %+v", r.DNS)
				}
			},
		},
		{
			name: "not DNS over TCP",
			s:    DNSSettings{QueryName: "ok.oxcross.test", Transport: "tcp"},
			addr: testutil.ServeTCP(t, func(c net.Conn) {
				// A length prefix of 12, then 12 bytes that are no header.
				_, _ = c.Write(append([]byte{0, 12}, "HTTP/1.1 400"...))
			}),
			want: ReasonInvalidResponse,
		},
		{
			name: "DNS over TLS",
			s:    DNSSettings{QueryName: "ok.oxcross.test", Transport: "dot", TLSConfig: TLSSettings{CAFile: fx.ca.CertFile}},
			addr: srv.dotAddr,
			want: ReasonOK,
			check: func(t *testing.T, r Result) {
				checkTLSPhases(t, r, fx.server.Leaf.NotAfter)
			},
		},
		{
			name: "DNS over TLS, unknown CA",
			s:    DNSSettings{QueryName: "ok.oxcross.test", Transport: "dot"},
			addr: srv.dotAddr,
			want: ReasonTLS,
		},
		{
			name: "no server",
			s:    DNSSettings{QueryName: "ok.oxcross.test", Transport: "tcp"},
			addr: testutil.ClosedAddr(t),
			want: ReasonConnect,
		},
		{
			name: "no server over UDP",
			s:    DNSSettings{QueryName: "ok.oxcross.test"},
			addr: testutil.ClosedUDPAddr(t),
			want: ReasonConnect,
		},
		{
			name: "a server name that does not resolve",
			s:    DNSSettings{QueryName: "ok.oxcross.test"},
			addr: "no-such-server.invalid:53",
			want: ReasonDNS,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := tc.addr
			if addr == "" {
				addr = srv.addr
			}
			timeout := tc.timeout
			if timeout == 0 {
				timeout = probeTimeout
			}
			// A timer of the probe's timeout, started with it, is the
			// truth the probe's return is compared with.
			control := make(chan time.Time, 1)
			start := time.Now()
			time.AfterFunc(timeout, func() { control <- time.Now() })
			r := probeModule(t, dnsModule(t, tc.s), addrTarget(addr), timeout)
			end := time.Now()
			checkReason(t, r, tc.want)
			if tc.timeout != 0 {
				if deadline := (<-control).Add(200 * time.Millisecond); end.After(deadline) {
					t.Errorf("probe returned %v after a timer of its timeout %v fired", end.Sub(deadline)+200*time.Millisecond, tc.timeout)
				}
			}
			if r.Duration <= 0 || r.Duration > end.Sub(start) {
				t.Errorf("duration %v, want in (0, %v]", r.Duration, end.Sub(start))
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// port returns the port of addr, host:port.
func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDNSSettingsConfig: a config's dns modules are read with their
// defaults, refused with errors naming the module and the key, and read
// back equal from the normalized JSON.
func TestDNSSettingsConfig(t *testing.T) {
	t.Parallel()
	parser := DefaultKinds(discard).Parser(config.Limits{})
	_, err := parser.Parse([]byte(`
modules:
  noname:
    kind: dns
    dns: {query_type: A}
  nokey:
    kind: dns
  badname:
    kind: dns
    dns: {query_name: "a..b"}
  badtype:
    kind: dns
    dns: {query_name: example.com, query_type: AA}
  badtransport:
    kind: dns
    dns: {query_name: example.com, transport: doh}
  badrcode:
    kind: dns
    dns: {query_name: example.com, valid_rcodes: [NOERROR, NOSUCH]}
  badregexp:
    kind: dns
    dns:
      query_name: example.com
      validate_answer_rrs: {fail_if_matches_regexp: ["("]}
      validate_authority_rrs: {fail_if_not_matches_regexp: ["[z-a]"]}
      validate_additional_rrs: {fail_if_not_matches_regexp: ["ok", "*"]}
  tlsnotdot:
    kind: dns
    dns: {query_name: example.com, tls_config: {insecure_skip_verify: true}}
  halfcert:
    kind: dns
    dns: {query_name: example.com, transport: dot, tls_config: {key_file: k}}
  unknownkey:
    kind: dns
    dns: {query_name: example.com, qtype: A}
`))
	for _, want := range []string{
		"modules.noname: dns: query_name: missing",
		"modules.nokey: dns: query_name: missing", // the defaults are validated too
		`modules.badname: dns: query_name: "a..b" is not a domain name`,
		`modules.badtype: dns: query_type: "AA" is not a DNS record type`,
		`modules.badtransport: dns: transport: "doh" is not udp, tcp or dot`,
		`modules.badrcode: dns: valid_rcodes: "NOSUCH" is not a DNS response code`,
		"modules.badregexp: dns: validate_answer_rrs: fail_if_matches_regexp: error parsing regexp: missing closing )",
		"modules.badregexp: dns: validate_authority_rrs: fail_if_not_matches_regexp: error parsing regexp: invalid character class range",
		"modules.badregexp: dns: validate_additional_rrs: fail_if_not_matches_regexp: error parsing regexp: missing argument to repetition operator",
		"modules.tlsnotdot: dns: tls_config: only for transport dot",
		"modules.halfcert: dns: tls_config: cert_file and key_file go together",
		`modules.unknownkey: dns: field qtype not found`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant it to contain %q", err, want)
		}
	}

	cfg, err := parser.Parse([]byte(`
modules:
  resolver:
    kind: dns
    dns:
      query_name: example.com
      query_type: aaaa
      transport: tcp
      recursion_desired: false
      valid_rcodes: [NOERROR, NXDOMAIN]
      validate_answer_rrs: {fail_if_not_matches_regexp: ['\tAAAA\t2001:db8::']}
  plain:
    kind: dns
    dns: {query_name: example.com}
origins:
  - {module: resolver, address: 192.0.2.53}
  - {module: plain, hostname: ns.example.com, port: 5353}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{cfg.Origins[0].Address, cfg.Origins[1].Address}; got[0] != "192.0.2.53:53" || got[1] != "ns.example.com:5353" {
		t.Errorf("origin addresses %q, want port 53 by default", got)
	}
	s := cfg.Modules["resolver"].Settings.(*DNSSettings)
	q := s.query()
	if q.Question[0] != (dns.Question{Name: "example.com.", Qtype: dns.TypeAAAA, Qclass: dns.ClassINET}) || q.RecursionDesired {
		t.Errorf("query %v, want AAAA example.com. without RD", q)
	}
	if !s.validRcode(dns.RcodeNameError) || s.validRcode(dns.RcodeServerFailure) {
		t.Errorf("valid_rcodes %v: NXDOMAIN must be valid, SERVFAIL not", s.ValidRcodes)
	}
	if plain := cfg.Modules["plain"].Settings.(*DNSSettings); !plain.query().RecursionDesired || !plain.validRcode(dns.RcodeSuccess) || plain.validRcode(dns.RcodeNameError) {
		t.Errorf("defaults: want RD set and only NOERROR valid")
	}
	body, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	back, err := parser.Parse(body)
	if err != nil {
		t.Fatalf("reading back %s: %v", body, err)
	}
	if !reflect.DeepEqual(back.Modules["resolver"], cfg.Modules["resolver"]) {
		t.Errorf("read back from JSON %s\n got  %+v\n want %+v", body, back.Modules["resolver"].Settings, s)
	}
}

// TestProbeHandlerDNS: /probe?module=…&target=… probes a DNS server with a
// dns module of the config, the port defaulting to 53, and answers the
// phases and the answer's rcode and record counts.
func TestProbeHandlerDNS(t *testing.T) {
	t.Parallel()
	srv := startDNSServer(t, nil)
	cfg, err := DefaultKinds(discard).Parser(config.Limits{}).Parse([]byte(`
modules:
  ok:
    kind: dns
    dns: {query_name: ok.oxcross.test, validate_answer_rrs: {fail_if_not_matches_regexp: ['192\.0\.2\.1$']}}
  nx:
    kind: dns
    dns: {query_name: nx.oxcross.test}
  big:
    kind: dns
    dns: {query_name: big.oxcross.test, query_type: TXT}
origins:
  - {module: ok, address: 192.0.2.53}
`))
	if err != nil {
		t.Fatal(err)
	}
	endpoint := probeEndpoint(t, NewHandler(newTestProber(), func() *config.Config { return cfg }, DefaultMaxConcurrentProbes, discard))

	a := getProbe(t, endpoint, srv.addr, "ok", "")
	a.wantProbe(t, ReasonOK)
	for name, want := range map[string]float64{"probe_dns_rcode": 0, "probe_dns_answer_rrs": 1, "probe_dns_authority_rrs": 1, "probe_dns_additional_rrs": 1, "probe_dns_truncated": 0} {
		if v := a.mustValue(t, name); v != want {
			t.Errorf("%s %v, want %v", name, v, want)
		}
	}
	for _, phase := range []string{"resolve", "processing"} {
		a.mustValue(t, "probe_dns_duration_seconds", "phase", phase)
	}

	a = getProbe(t, endpoint, srv.addr, "nx", "")
	a.wantProbe(t, ReasonDNSRcode)
	if v := a.mustValue(t, "probe_dns_rcode"); v != dns.RcodeNameError {
		t.Errorf("probe_dns_rcode %v, want 3 (NXDOMAIN)", v)
	}

	a = getProbe(t, endpoint, srv.addr, "big", "")
	a.wantProbe(t, ReasonOK)
	if v := a.mustValue(t, "probe_dns_truncated"); v != 1 {
		t.Errorf("probe_dns_truncated %v, want 1", v)
	}
	a.mustValue(t, "probe_dns_duration_seconds", "phase", "connect")

	// A host alone is taken (port 53, where no test server listens).
	a = getProbe(t, endpoint, "127.0.0.1", "ok", "1")
	if a.status != 200 || a.mustValue(t, "probe_success") != 0 {
		t.Errorf("a probe of 127.0.0.1 (port 53): status %d, body %s", a.status, a.body)
	}
	getProbe(t, endpoint, "127.0.0.1:x", "ok", "").wantBadRequest(t, "port")
}

// TestDNSScheduled: the leaf schedules dns origins like any other, and
// its metrics count their results by reason (dns_rcode among them) and
// carry their phases.
func TestDNSScheduled(t *testing.T) {
	t.Parallel()
	srv := startDNSServer(t, nil)
	cfg, err := DefaultKinds(discard).Parser(config.Limits{}).Parse([]byte(`
interval: 1s
modules:
  ok: {kind: dns, dns: {query_name: ok.oxcross.test}}
  nx: {kind: dns, dns: {query_name: nx.oxcross.test}}
origins:
  - {name: dns-ok, module: ok, address: "` + srv.addr + `"}
  - {name: dns-nx, module: nx, address: "` + srv.addr + `"}
`))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	sched := NewScheduler(SchedulerOptions{Prober: newTestProber(), Metrics: NewMetrics(reg), LeafID: "leaf-1", Logger: discard})
	defer sched.Stop()
	sched.Apply(cfg)
	result := func(origin, success, reason string) float64 {
		v, _ := testutil.LookupMetric(t, reg, "oxcross_leaf_probe_results", "origin_id", origin, "result", success, "reason", reason)
		return v
	}
	testutil.Eventually(t, 30*time.Second, "a dns success and a dns_rcode failure", func() bool {
		return result("dns-ok", "true", "ok") >= 1 && result("dns-nx", "false", "dns_rcode") >= 1
	})
	for _, phase := range []string{"resolve", "connect", "tls", "processing"} {
		if _, ok := testutil.LookupMetric(t, reg, "oxcross_leaf_probe_phase_seconds", "origin_id", "dns-ok", "phase", phase); !ok {
			t.Errorf("no %s phase of the dns origin", phase)
		}
	}
	if v := testutil.MetricValue(t, reg, "oxcross_leaf_origin_status", "origin_id", "dns-nx"); v != 0 {
		t.Errorf("status of the NXDOMAIN origin %v, want 0", v)
	}
}
