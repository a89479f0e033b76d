// Command oxbench is the helper of bench/run.sh: it generates configs,
// runs a delaying TCP proxy, drives an HTTP endpoint at a fixed rate,
// registers leaves with a configserver and reads the leaf's metrics. It is
// a benchmark tool, not part of Oxcross.
//
//	oxbench gen -n 1000 -interval 10s -mode simple -targets URL[,URL...] [-ca FILE]
//	oxbench tlsorigin -ca FILE
//	oxbench proxy -n 20 -upstream HOST:PORT -up 10ms -down 10ms
//	oxbench drive -url URL -rate 100 -duration 30s [-expect TEXT]
//	oxbench register -url CONFIGSERVER -n 1000 -port 20000
//	oxbench window -before FILE -after FILE
//	oxbench accuracy -metrics URL -delay 20ms -duration 20s
//	oxbench cpu -pid PID
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/oxcross/oxcross/internal/testutil"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: oxbench gen|tlsorigin|proxy|drive|register|window|accuracy|cpu [flags]")
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"gen": gen, "tlsorigin": tlsOrigin, "proxy": proxy, "drive": drive, "register": register,
		"window": window, "accuracy": accuracy, "cpu": cpu,
	}
	f, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "oxbench: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err := f(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "oxbench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// gen writes a config with n origins spread over the targets; origin ids
// are distinct, so one target serves many origins.
func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	n := fs.Int("n", 1000, "origins")
	interval := fs.Duration("interval", 10*time.Second, "probe interval")
	timeout := fs.Duration("timeout", 5*time.Second, "probe timeout")
	mode := fs.String("mode", "simple", "simple or advanced")
	targets := fs.String("targets", "", "comma-separated base URLs (http://127.0.0.1:port), used round-robin")
	path := fs.String("path", "/healthz", "path for simple mode")
	ca := fs.String("ca", "", "with simple mode: probe with a module of kind http that trusts this CA file (https targets)")
	_ = fs.Parse(args)
	ts := strings.Split(*targets, ",")
	if *targets == "" || len(ts) == 0 {
		return errors.New("-targets is required")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "interval: %s\ntimeout: %s\n", *interval, *timeout)
	module := *mode
	if *ca != "" {
		module = "https_bench"
		// classical: the key exchanges Debian's blackbox_exporter (built
		// with Go 1.19) offers, so that both make the same handshake.
		fmt.Fprintf(&b, "modules:\n  %s:\n    kind: http\n    http:\n      tls: {ca_file: %q, key_exchange: classical}\n", module, *ca)
	}
	b.WriteString("origins:\n")
	for i := range *n {
		u := strings.TrimSuffix(ts[i%len(ts)], "/")
		if *mode == "simple" {
			u += *path
		}
		fmt.Fprintf(&b, "  - name: bench-%05d\n    url: %s\n    mode: %s\n", i, u, module)
	}
	_, err := os.Stdout.WriteString(b.String())
	return err
}

// tlsOrigin serves 200 "ok" over HTTPS on 127.0.0.1 with a certificate
// (ECDSA P-256) of a CA it makes and writes to -ca, so that every probe of
// it costs a whole TLS handshake: HTTP/1.1 only, no keep-alive, no session
// tickets (no resumption, whatever the client). It prints "Listening on
// address=127.0.0.1:PORT" and runs until SIGINT or SIGTERM.
func tlsOrigin(args []string) error {
	fs := flag.NewFlagSet("tlsorigin", flag.ExitOnError)
	caFile := fs.String("ca", "", "where to write the CA certificate (PEM)")
	_ = fs.Parse(args)
	if *caFile == "" {
		return errors.New("-ca is required")
	}
	cert, caPEM, err := selfCA()
	if err != nil {
		return err
	}
	if err := os.WriteFile(*caFile, caPEM, 0o644); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		TLSConfig: &tls.Config{
			Certificates:           []tls.Certificate{cert},
			NextProtos:             []string{"http/1.1"},
			SessionTicketsDisabled: true,
		},
		// No HTTP/2: both probers speak HTTP/1.1 to it.
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	srv.SetKeepAlivesEnabled(false)
	fmt.Printf("Listening on address=%s\n", l.Addr())
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.ServeTLS(l, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// selfCA makes a CA and a certificate for 127.0.0.1 it signs; it returns
// the certificate and the CA's PEM.
func selfCA() (tls.Certificate, []byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "oxbench CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

// proxy forwards TCP connections to upstream on n listeners, holding
// every chunk back by up on the way there and by down on the way back: a
// path with a known one-way delay each way (internal/testutil's
// DelayProxy, which the drift tests use too). For each listener it
// serves, as JSON on -stats, the round trip of its last connection, from
// the request's first byte arriving to the response's first byte leaving,
// which is what the leaf should report as its processing phase. It runs
// until SIGINT or SIGTERM.
func proxy(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ExitOnError)
	n := fs.Int("n", 1, "listeners, each on a port of its own")
	upstream := fs.String("upstream", "", "host:port to forward to")
	up := fs.Duration("up", 10*time.Millisecond, "delay toward upstream")
	down := fs.Duration("down", 10*time.Millisecond, "delay back from upstream")
	_ = fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	proxies := make([]*testutil.DelayProxy, *n)
	for i := range proxies {
		p, err := testutil.NewDelayProxyWithOptions(*upstream, testutil.DelayProxyOptions{Up: *up, Down: *down, Keep: 1})
		if err != nil {
			return err
		}
		defer p.Close()
		proxies[i] = p
		fmt.Printf("listening %s\n", p.Addr())
	}
	sl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("stats %s\n", sl.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		out := make([]proxyStat, len(proxies))
		for i, p := range proxies {
			out[i] = statOf(p)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(sl); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// proxyStat is what one listener saw of its last answered connection, as
// the stats endpoint serves it.
type proxyStat struct {
	Addr string `json:"addr"`
	// Count is how many connections have finished.
	Count int `json:"count"`
	// RTT runs from the request's first byte in to the response's first
	// byte out; Conn from the accept to the response's last byte out.
	RTT  time.Duration `json:"rtt_ns"`
	Conn time.Duration `json:"conn_ns"`
}

// statOf returns p's stats: its last finished connection that was
// answered.
func statOf(p *testutil.DelayProxy) proxyStat {
	st := proxyStat{Addr: p.Addr(), Count: p.Finished()}
	for _, c := range slices.Backward(p.Conns()) {
		if c.Closed.IsZero() || c.Err != nil {
			continue
		}
		if ex := c.Exchanges(); len(ex) > 0 && ex[0].RTT() > 0 {
			st.RTT, st.Conn = ex[0].RTT(), c.Span()
			break
		}
	}
	return st
}

// drive GETs url at a fixed rate over keep-alive connections, for the
// given duration, and reports how many answers were 200 and contained
// expect.
func drive(args []string) error {
	fs := flag.NewFlagSet("drive", flag.ExitOnError)
	url := fs.String("url", "", "URL to GET")
	rate := fs.Float64("rate", 100, "requests per second")
	duration := fs.Duration("duration", 30*time.Second, "how long")
	workers := fs.Int("workers", 64, "most requests in flight")
	expect := fs.String("expect", "", "text a good answer contains")
	_ = fs.Parse(args)
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: *workers, MaxConnsPerHost: *workers, DisableCompression: true},
	}
	var ok, bad, late atomic.Int64
	jobs := make(chan struct{}, *workers)
	var wg sync.WaitGroup
	for range *workers {
		wg.Go(func() {
			for range jobs {
				resp, err := client.Get(*url)
				if err != nil {
					bad.Add(1)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(*expect)) {
					bad.Add(1)
					continue
				}
				ok.Add(1)
			}
		})
	}
	every := time.Duration(float64(time.Second) / *rate)
	start := time.Now()
	n := int64(duration.Seconds() * *rate)
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * every)))
		select {
		case jobs <- struct{}{}:
		default:
			late.Add(1) // every worker busy: counted, not queued
		}
	}
	close(jobs)
	wg.Wait()
	fmt.Printf("sent=%d ok=%d failed=%d dropped=%d\n", n, ok.Load(), bad.Load(), late.Load())
	return nil
}

// register PUTs n leaves into a configserver's registry, from 127.0.0.1,
// each with ":port" of its own.
func register(args []string) error {
	fs := flag.NewFlagSet("register", flag.ExitOnError)
	base := fs.String("url", "", "configserver base URL")
	n := fs.Int("n", 1000, "leaves")
	port := fs.Int("port", 20000, "first leaf port")
	_ = fs.Parse(args)
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range *n {
		body := fmt.Sprintf(`{"address":":%d","labels":{"region":"r%d"},"version":"bench","refresh_interval":"1h"}`, *port+i, i%10)
		req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/api/v1/leaves/bench-leaf-%04d", strings.TrimSuffix(*base, "/"), i), strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("PUT leaf %d: %s: %s", i, resp.Status, msg)
		}
	}
	fmt.Printf("registered=%d\n", *n)
	return nil
}

func parseFile(path string) (map[string]*dto.MetricFamily, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(f)
}

// counterSum sums a counter family's series whose labels include want.
func counterSum(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var s float64
	mf := mfs[name]
	if mf == nil {
		return 0
	}
outer:
	for _, m := range mf.GetMetric() {
		for k, v := range want {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue outer
			}
		}
		s += m.GetCounter().GetValue()
	}
	return s
}

// histSum adds a histogram family's series: cumulative counts by bound.
func histSum(mfs map[string]*dto.MetricFamily, name string) (bounds []float64, counts []float64, total float64) {
	mf := mfs[name]
	if mf == nil {
		return nil, nil, 0
	}
	byBound := map[float64]float64{}
	for _, m := range mf.GetMetric() {
		h := m.GetHistogram()
		total += float64(h.GetSampleCount())
		for _, b := range h.GetBucket() {
			byBound[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
	}
	for b := range byBound {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	for _, b := range bounds {
		counts = append(counts, byBound[b])
	}
	return bounds, counts, total
}

// quantile is Prometheus' histogram_quantile over cumulative buckets:
// linear interpolation within the bucket the rank falls in.
func quantile(q float64, bounds, counts []float64, total float64) float64 {
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	prevB, prevC := 0.0, 0.0
	for i, b := range bounds {
		if counts[i] >= rank {
			if math.IsInf(b, 1) {
				return prevB
			}
			if counts[i] == prevC {
				return b
			}
			return prevB + (b-prevB)*(rank-prevC)/(counts[i]-prevC)
		}
		prevB, prevC = b, counts[i]
	}
	return prevB
}

// window compares two scrapes of a leaf's /metrics and prints, as shell
// assignments, what happened between them: probes by result, skipped
// slots, and the probe start lag's quantiles.
func window(args []string) error {
	fs := flag.NewFlagSet("window", flag.ExitOnError)
	before := fs.String("before", "", "first scrape")
	after := fs.String("after", "", "second scrape")
	_ = fs.Parse(args)
	a, err := parseFile(*before)
	if err != nil {
		return err
	}
	b, err := parseFile(*after)
	if err != nil {
		return err
	}
	ok := counterSum(b, "oxcross_leaf_probe_results", map[string]string{"result": "true"}) - counterSum(a, "oxcross_leaf_probe_results", map[string]string{"result": "true"})
	failed := counterSum(b, "oxcross_leaf_probe_results", map[string]string{"result": "false"}) - counterSum(a, "oxcross_leaf_probe_results", map[string]string{"result": "false"})
	skipped := counterSum(b, "oxcross_leaf_probe_skipped_total", nil) - counterSum(a, "oxcross_leaf_probe_skipped_total", nil)
	var reasons []string
	if mf := b["oxcross_leaf_probe_results"]; mf != nil {
		seen := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" && lp.GetValue() != "ok" && !seen[lp.GetValue()] {
					seen[lp.GetValue()] = true
					r := map[string]string{"reason": lp.GetValue()}
					if d := counterSum(b, "oxcross_leaf_probe_results", r) - counterSum(a, "oxcross_leaf_probe_results", r); d > 0 {
						reasons = append(reasons, fmt.Sprintf("%s:%.0f", lp.GetValue(), d))
					}
				}
			}
		}
	}
	slices.Sort(reasons)
	fmt.Printf("probes_ok=%.0f\nprobes_failed=%.0f\nfailed_reasons=%q\nskipped=%.0f\n", ok, failed, strings.Join(reasons, ","), skipped)
	const lag = "oxcross_leaf_probe_start_lag_seconds"
	ba, ca, ta := histSum(a, lag)
	bb, cb, tb := histSum(b, lag)
	if len(bb) == 0 {
		fmt.Println("lag_count=0")
		return nil
	}
	prev := map[float64]float64{}
	for i, x := range ba {
		prev[x] = ca[i]
	}
	d := make([]float64, len(cb))
	for i, x := range bb {
		d[i] = cb[i] - prev[x]
	}
	n := tb - ta
	fmt.Printf("lag_count=%.0f\nlag_p50=%.6f\nlag_p99=%.6f\nlag_p999=%.6f\n", n, quantile(0.5, bb, d, n), quantile(0.99, bb, d, n), quantile(0.999, bb, d, n))
	return nil
}

// accuracy compares, probe by probe, what a leaf reports for origins
// bench-00000 … (each behind its own listener of oxbench proxy, in order)
// with what the proxy saw of the same connection. It scrapes the leaf's
// /metrics and the proxy's stats every -every, and takes a probe when the
// leaf's probe count of an origin and the proxy's connection count of its
// listener agree. It prints medians and 90th percentiles of: the leaf's
// processing phase minus the proxy's round trip (request in to response
// out), the leaf's duration minus the proxy's connection time, the
// leaf's duration minus the injected delay, and the drift's error (origin
// and leaf share a clock here, so any drift is error) of both estimators:
// the clock filter's (oxcross_leaf_origin_time_drift) and the last
// exchange's alone (oxcross_leaf_origin_time_drift_last_seconds).
func accuracy(args []string) error {
	fs := flag.NewFlagSet("accuracy", flag.ExitOnError)
	metricsURL := fs.String("metrics", "", "leaf /metrics URL")
	statsURL := fs.String("stats", "", "oxbench proxy stats URL")
	delay := fs.Duration("delay", 20*time.Millisecond, "round-trip delay the proxy adds (up + down)")
	duration := fs.Duration("duration", 20*time.Second, "how long to collect")
	every := fs.Duration("every", 100*time.Millisecond, "scrape interval")
	_ = fs.Parse(args)
	paired := map[int]float64{}
	var rtts, conns, delays, drifts, lasts []float64
	end := time.Now().Add(*duration)
	for time.Now().Before(end) {
		time.Sleep(*every)
		resp, err := http.Get(*metricsURL)
		if err != nil {
			return err
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := p.TextToMetricFamilies(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return err
		}
		resp, err = http.Get(*statsURL)
		if err != nil {
			return err
		}
		var stats []proxyStat
		err = json.NewDecoder(resp.Body).Decode(&stats)
		_ = resp.Body.Close()
		if err != nil {
			return err
		}
		value := func(name, id string, want map[string]string) (float64, bool) {
			for _, m := range mfs[name].GetMetric() {
				if label(m, "origin_id") != id {
					continue
				}
				ok := true
				for k, v := range want {
					ok = ok && label(m, k) == v
				}
				if ok {
					return m.GetGauge().GetValue(), true
				}
			}
			return 0, false
		}
		for i, st := range stats {
			id := fmt.Sprintf("bench-%05d", i)
			count := counterSum(mfs, "oxcross_leaf_probe_results", map[string]string{"origin_id": id})
			if count == 0 || float64(st.Count) != count || paired[i] == count {
				continue
			}
			dur, ok1 := value("oxcross_leaf_probe_duration_seconds", id, nil)
			proc, ok2 := value("oxcross_leaf_probe_phase_seconds", id, map[string]string{"phase": "processing"})
			drift, ok3 := value("oxcross_leaf_origin_time_drift", id, nil)
			last, ok4 := value("oxcross_leaf_origin_time_drift_last_seconds", id, nil)
			if !ok1 || !ok2 || !ok3 || !ok4 {
				continue
			}
			paired[i] = count
			rtts = append(rtts, proc-st.RTT.Seconds())
			conns = append(conns, dur-st.Conn.Seconds())
			delays = append(delays, dur-delay.Seconds())
			drifts = append(drifts, math.Abs(drift))
			lasts = append(lasts, math.Abs(last))
		}
	}
	if len(rtts) == 0 {
		return errors.New("no probe paired: is the leaf probing through the proxy?")
	}
	pct := func(xs []float64, q float64) float64 {
		s := slices.Clone(xs)
		slices.Sort(s)
		return s[int(q*float64(len(s)-1))]
	}
	fmt.Printf("samples=%d\n", len(rtts))
	for _, v := range []struct {
		name string
		xs   []float64
	}{{"rtt_err", rtts}, {"conn_err", conns}, {"delay_err", delays}, {"drift_err", drifts}, {"drift_last_err", lasts}} {
		fmt.Printf("%s_p50=%.6f\n%s_p90=%.6f\n", v.name, pct(v.xs, .5), v.name, pct(v.xs, .9))
	}
	return nil
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// cpu prints a process's CPU time (utime + stime, in seconds) and its peak
// resident set size (VmHWM, in KiB), from /proc.
func cpu(args []string) error {
	fs := flag.NewFlagSet("cpu", flag.ExitOnError)
	pid := fs.Int("pid", 0, "process id")
	_ = fs.Parse(args)
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", *pid))
	if err != nil {
		return err
	}
	// The command name may contain spaces: fields count from its ')'.
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", *pid))
	if err != nil {
		return err
	}
	hwm, rss := "0", "0"
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			hwm = strings.Fields(v)[0]
		}
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss = strings.Fields(v)[0]
		}
	}
	// USER_HZ is 100 on every Linux architecture Go supports.
	fmt.Printf("cpu_seconds=%.2f\nhwm_kib=%s\nrss_kib=%s\n", (utime+stime)/100, hwm, rss)
	return nil
}
