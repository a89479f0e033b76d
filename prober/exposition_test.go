package prober

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/origin"
)

// The formats a scraper negotiates, and Accept headers as Prometheus 3
// sends them (by default, and with native histograms on).
var expoFormats = []struct{ name, accept, decodeAs string }{
	{"text", "text/plain;version=0.0.4", "text"},
	{"openmetrics", "application/openmetrics-text;version=1.0.0", "openmetrics"},
	{"protobuf", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", "protobuf"},
	{"prometheus3", "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1", "openmetrics"},
	{"prometheus3-native", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1", "protobuf"},
	{"text-1.0.0", "text/plain;version=1.0.0;escaping=allow-utf-8", "text"},
}

// TestHistogramMatchesClientGolang feeds the same observations to
// client_golang's histogram (with the options oxcross_leaf_probe_timings
// had) and to the origins' compact one, with scrapes in between, and
// compares what both report: classic and native buckets, schema
// reductions past 100 buckets included.
func TestHistogramMatchesClientGolang(t *testing.T) {
	spread := func(n int, from, factor float64) []float64 {
		var v []float64
		for i := range n {
			v = append(v, from*math.Pow(factor, float64(i)))
		}
		return v
	}
	cases := map[string][]float64{
		"none":     nil,
		"typical":  {0.0231, 0.0229, 0.0244, 0.0252, 0.0231, 0.31, 0.0227, 0.021},
		"edges":    append(slices.Clone(TimingBuckets), 0, 0.5, 1, 2, 0.25, 1e-40, -1e-40, 1e-300),
		"negative": {-0.01, -0.02, 0.01, -0.01, -3},
		"infinite": {math.Inf(1), math.Inf(-1), 0.1, math.MaxFloat64},
		// Each observation a new bucket: past 100 the schema drops, and
		// drops again, to -4 and no further.
		"wide": spread(400, 1e-6, 1.05),
		// 140 buckets 2^16 apart: more than 100 even at schema -4.
		"very wide": func() []float64 {
			v := spread(70, 1e-38, 1e5)
			for _, x := range slices.Clone(v) {
				v = append(v, -x)
			}
			return v
		}(),
	}
	layouts := map[string][]float64{"timings": TimingBuckets, "finer": append([]float64{.0005, .001, .0025}, TimingBuckets...)}
	for layout, bounds := range layouts {
		for name, values := range cases {
			t.Run(layout+"/"+name, func(t *testing.T) {
				ref := prometheus.NewHistogram(prometheus.HistogramOpts{
					Name: "h", Help: "h", Buckets: bounds,
					NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: 100, NativeHistogramMinResetDuration: 0,
				})
				h := newHistogram(bounds)
				compare := func(after int) {
					t.Helper()
					var want dto.Metric
					if err := ref.Write(&want); err != nil {
						t.Fatal(err)
					}
					want.Histogram.CreatedTimestamp = nil
					var snap histSnapshot
					h.snapshot(&snap)
					var got dto.Histogram
					snap.write(&got)
					if !proto.Equal(want.Histogram, &got) {
						t.Fatalf("after %d observations:\nclient_golang: %v\ncompact:       %v", after, want.Histogram, &got)
					}
				}
				compare(0)
				for i, v := range values {
					ref.Observe(v)
					h.observe(v)
					if i%7 == 3 {
						compare(i + 1)
					}
				}
				compare(len(values))
				if name == "very wide" && h.schema != -4 {
					t.Errorf("schema %d after %d observations, want -4", h.schema, len(values))
				}
			})
		}
	}
}

// kindProbe is a target and module of one probe kind.
type kindProbe struct {
	tg  config.Target
	mod config.Module
}

// kindProbes returns, for every shipped probe kind, a target that it
// probes on loopback with its built-in module (the real origin for URL
// kinds, its listener for host:port kinds, 127.0.0.1 for host kinds), or
// with a module of its own for kinds without one (dns: the test DNS
// server; path: a udp trace of loopback). A kind with neither fails the
// test: add it here.
func kindProbes(t *testing.T) map[string]kindProbe {
	ts := newOriginServer(t, origin.Options{Registerer: prometheus.NewRegistry()})
	u, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	host, _, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	kinds := DefaultKinds(discard)
	probes := map[string]kindProbe{}
	for name, m := range builtinModules {
		tg := config.Target{ID: "origin-" + name, Module: name, Interval: 10 * time.Second, Timeout: 2 * time.Second}
		switch kinds.byName[m.Kind].Spec().Target {
		case config.TargetURL:
			tg.URL = ts.URL + origin.Path
		case config.TargetHostPort:
			tg.Address = u.Host
		default:
			tg.Address = host
		}
		probes[m.Kind] = kindProbe{tg, m}
	}
	// A train of connects: the trains' families.
	train := TCPSettings{TrainSettings: TrainSettings{Packets: 3, PacketInterval: Duration(10 * time.Millisecond)}}
	if err := train.Validate(); err != nil {
		t.Fatal(err)
	}
	probes["tcp train"] = kindProbe{
		config.Target{ID: "origin-tcp-train", Address: u.Host, Module: "test", Interval: 10 * time.Second, Timeout: 2 * time.Second},
		config.Module{Kind: "tcp", Settings: &train},
	}
	for kind := range kinds.byName {
		if _, ok := probes[kind]; ok {
			continue
		}
		switch kind {
		case "dns":
			srv := startDNSServer(t, nil)
			probes[kind] = kindProbe{
				config.Target{ID: "origin-dns", Address: srv.addr, Module: "test", Interval: 10 * time.Second, Timeout: 2 * time.Second},
				dnsModule(t, DNSSettings{QueryName: "ok.oxcross.test"}),
			}
		case "path":
			ps := PathSettings{MaxHops: 4, HopTimeout: "1s"}
			if err := ps.Validate(); err != nil {
				t.Fatal(err)
			}
			probes[kind] = kindProbe{
				config.Target{ID: "origin-path", Address: u.Host, Module: "test", Interval: time.Minute, Timeout: 5 * time.Second},
				config.Module{Kind: "path", Settings: &ps},
			}
		default:
			t.Fatalf("kind %s has no built-in module: give the test a module and target for it", kind)
		}
	}
	return probes
}

// expoRegistry returns a leaf's metrics after real probes of every kind
// (three each, on loopback) and results with every reason, gauge and
// histogram shape, and the registry that holds the rest of the leaf's
// families.
func expoRegistry(t *testing.T) (*Metrics, *prometheus.Registry, *prometheus.Registry) {
	probes := prometheus.NewRegistry()
	m := NewMetrics(probes)
	now := time.Now()
	m.now = func() time.Time { return now } // the uncertainty grows with time
	p := newTestProber()
	for kind, kp := range kindProbes(t) {
		om := m.forOrigin(kp.tg.ID, "leaf-ams-1")
		st := p.newState(&kp.mod)
		for range 3 {
			ctx, cancel := context.WithTimeout(context.Background(), kp.tg.Timeout)
			r := p.Probe(ctx, &kp.tg, &kp.mod, st)
			cancel()
			t.Logf("kind %s: success %v, reason %s, %v", kind, r.Success, r.Reason, r.Duration)
			om.record(r)
		}
	}
	// Synthetic results for what loopback does not give: every failure
	// reason, TLS, a filtered drift, skipped slots, label values that
	// need escaping, and a second leaf id for the same origin.
	for i, reason := range reasonsByLabel {
		om := m.forOrigin(fmt.Sprintf("synthetic-%02d", i), "leaf-ams-1")
		r := benchResult()
		r.TLSExpiry = time.Unix(1_900_000_000+int64(i), 0)
		r.Duration = time.Duration(i+1) * 7 * time.Millisecond
		r.Filtered = &FilteredDrift{Offset: time.Duration(i) * time.Millisecond, Bound: time.Millisecond, At: now.Add(-time.Minute)}
		if i%4 == 1 {
			// A train none of whose packets was answered: the spread
			// is NaN.
			r.Train = &Train{Sent: 4}
		}
		om.record(r)
		r.Success, r.Reason = reason == ReasonOK, reason
		om.record(r)
		om.skipped.Add(float64(i))
	}
	for _, leaf := range []string{"leaf-b", "leaf-a"} {
		om := m.forOrigin(`odd "id"\with`+"\nnewline", leaf)
		om.record(Result{Success: true, Reason: ReasonOK, Duration: 1500 * time.Millisecond})
		om.record(Result{Reason: ReasonTimeout, Duration: 2 * time.Second})
	}
	m.forOrigin("never-probed", "leaf-ams-1")
	m.startLag.Observe(0.0004)

	// The rest of a leaf's families, some sorting between the per-origin
	// ones.
	others := prometheus.NewRegistry()
	for _, name := range []string{"aaa_first", "oxcross_leaf_probe_p_between", "oxcross_leaf_probe_timings_after", "zzz_last"} {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "A test gauge."})
		g.Set(2.5)
		others.MustRegister(g)
	}
	return m, probes, others
}

func scrape(t *testing.T, h http.Handler, accept, encoding string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", accept)
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	return rec.Result(), rec.Body.Bytes()
}

// TestExpositionMatchesGather compares /metrics written straight from the
// origins' numbers with what promhttp writes of the same registry through
// Gather, series by series and byte for byte, in every format, after
// probes of every kind.
func TestExpositionMatchesGather(t *testing.T) {
	m, probes, others := expoRegistry(t)
	all := prometheus.Gatherers{others, probes}
	want := promhttp.HandlerFor(all, promhttp.HandlerOpts{EnableOpenMetrics: true})
	got := m.Handler(others, nil, discard)
	for _, f := range expoFormats {
		t.Run(f.name, func(t *testing.T) {
			wantRsp, wantBody := scrape(t, want, f.accept, "")
			gotRsp, gotBody := scrape(t, got, f.accept, "")
			if w, g := wantRsp.Header.Get("Content-Type"), gotRsp.Header.Get("Content-Type"); w != g {
				t.Errorf("Content-Type %q, want %q", g, w)
			}
			t.Logf("Content-Type %s", gotRsp.Header.Get("Content-Type"))
			wantFams, gotFams := decode(t, f.decodeAs, wantBody), decode(t, f.decodeAs, gotBody)
			series := 0
			for i := range max(len(wantFams), len(gotFams)) {
				if i >= len(wantFams) || i >= len(gotFams) {
					t.Fatalf("%d families, want %d", len(gotFams), len(wantFams))
				}
				w, g := wantFams[i], gotFams[i]
				if w.GetName() != g.GetName() || w.GetHelp() != g.GetHelp() || w.GetType() != g.GetType() {
					t.Fatalf("family %d: %s (%s), want %s (%s)", i, g.GetName(), g.GetType(), w.GetName(), w.GetType())
				}
				for j := range max(len(w.Metric), len(g.Metric)) {
					if j >= len(w.Metric) || j >= len(g.Metric) {
						t.Fatalf("%s: %d series, want %d", w.GetName(), len(g.Metric), len(w.Metric))
					}
					if !proto.Equal(w.Metric[j], g.Metric[j]) {
						t.Fatalf("%s series %d:\n got %v\nwant %v", w.GetName(), j, g.Metric[j], w.Metric[j])
					}
					series++
				}
			}
			if !bytes.Equal(wantBody, gotBody) {
				t.Fatalf("the series match but the bytes differ:\n got %q\nwant %q", gotBody, wantBody)
			}
			t.Logf("%d families, %d series, %d bytes: the same", len(wantFams), series, len(gotBody))
			for _, name := range []string{"oxcross_leaf_probe_timings", "oxcross_leaf_probe_tls_cert_expiry_timestamp_seconds", "oxcross_leaf_probe_phase_seconds", "oxcross_leaf_path_hops", "oxcross_leaf_path_changes_total", "oxcross_leaf_probe_packet_rtt_seconds", "oxcross_leaf_probe_packets_sent_total", "oxcross_leaf_probe_packet_rtt_spread_seconds"} {
				if !slices.ContainsFunc(gotFams, func(mf *dto.MetricFamily) bool { return mf.GetName() == name }) {
					t.Errorf("no %s", name)
				}
			}
			if f.decodeAs == "protobuf" {
				for _, mf := range gotFams {
					if mf.GetName() == "oxcross_leaf_probe_timings" && mf.Metric[0].Histogram.Schema == nil {
						t.Error("oxcross_leaf_probe_timings has no native histogram")
					}
				}
			}
		})
	}
}

// decode parses an exposition into its families.
func decode(t *testing.T, format string, body []byte) []*dto.MetricFamily {
	t.Helper()
	var fams []*dto.MetricFamily
	switch format {
	case "protobuf":
		r := bytes.NewReader(body)
		for {
			mf := &dto.MetricFamily{}
			err := protodelim.UnmarshalFrom(r, mf)
			if errors.Is(err, io.EOF) {
				return fams
			}
			if err != nil {
				t.Fatal(err)
			}
			fams = append(fams, mf)
		}
	case "openmetrics":
		if !bytes.HasSuffix(body, []byte("# EOF\n")) {
			t.Fatal("OpenMetrics without # EOF")
		}
		// The text parser reads OpenMetrics' samples; its types differ.
		body = bytes.TrimSuffix(body, []byte("# EOF\n"))
		body = bytes.ReplaceAll(body, []byte(" unknown\n"), []byte(" untyped\n"))
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	parsed, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%v in\n%s", err, body)
	}
	for _, mf := range parsed {
		fams = append(fams, mf)
	}
	slices.SortFunc(fams, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return fams
}

// TestExpositionNegotiation checks gzip, the name[] filter and the
// fallback for formats the writers do not know (OpenMetrics 2.0).
func TestExpositionNegotiation(t *testing.T) {
	m, probes, others := expoRegistry(t)
	want := promhttp.HandlerFor(prometheus.Gatherers{others, probes}, promhttp.HandlerOpts{EnableOpenMetrics: true})
	got := m.Handler(others, nil, discard)

	rsp, body := scrape(t, got, expoFormats[0].accept, "gzip, deflate")
	if rsp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", rsp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if _, wantBody := scrape(t, want, expoFormats[0].accept, ""); !bytes.Equal(plain, wantBody) {
		t.Error("gzipped body differs from promhttp's")
	}
	if rsp, _ := scrape(t, got, expoFormats[0].accept, "gzip;q=0"); rsp.Header.Get("Content-Encoding") != "" {
		t.Errorf("Content-Encoding %q with gzip;q=0", rsp.Header.Get("Content-Encoding"))
	}

	for _, accept := range []string{"application/openmetrics-text;version=2.0.0", "*/*", ""} {
		for _, query := range []string{"", "?name[]=oxcross_leaf_probe_results&name[]=zzz_last"} {
			req := httptest.NewRequest(http.MethodGet, "/metrics"+query, nil)
			req.Header.Set("Accept", accept)
			w, g := httptest.NewRecorder(), httptest.NewRecorder()
			want.ServeHTTP(w, req)
			got.ServeHTTP(g, req)
			if w.Header().Get("Content-Type") != g.Header().Get("Content-Type") || !bytes.Equal(w.Body.Bytes(), g.Body.Bytes()) {
				t.Errorf("Accept %q, %q: %q (%d bytes), want %q (%d bytes)", accept, query,
					g.Header().Get("Content-Type"), g.Body.Len(), w.Header().Get("Content-Type"), w.Body.Len())
			}
			if query != "" && strings.Contains(g.Body.String(), "oxcross_leaf_probe_timings") {
				t.Errorf("name[] filter let oxcross_leaf_probe_timings through")
			}
		}
	}
}

// TestExpositionWhileRecording scrapes while probes are recorded and
// origins come and go: every scrape must be whole (it parses, with every
// origin's histogram consistent), and -race finds no data race.
func TestExpositionWhileRecording(t *testing.T) {
	m, _, others := expoRegistry(t)
	h := m.Handler(others, nil, discard)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := benchResult()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			om := m.forOrigin(fmt.Sprintf("churn-%02d", i%20), "leaf-ams-1")
			r.Duration = time.Duration(1+i%500) * time.Millisecond
			om.record(r)
			om.skipped.Inc()
			if i%3 == 0 {
				om.delete()
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for i := range 30 {
		f := expoFormats[i%len(expoFormats)]
		_, body := scrape(t, h, f.accept, "")
		for _, mf := range decode(t, f.decodeAs, body) {
			if mf.GetName() != "oxcross_leaf_probe_timings" {
				continue
			}
			for _, s := range mf.Metric {
				hs := s.Histogram
				var prev uint64
				for _, b := range hs.Bucket {
					if b.GetCumulativeCount() < prev || b.GetCumulativeCount() > hs.GetSampleCount() {
						t.Fatalf("%s: torn classic buckets: %v", f.name, hs)
					}
					prev = b.GetCumulativeCount()
				}
				if hs.Schema == nil {
					continue
				}
				native, count := hs.GetZeroCount(), int64(0)
				for _, d := range hs.PositiveDelta {
					count += d
					native += uint64(count)
				}
				if native != hs.GetSampleCount() {
					t.Fatalf("%s: native buckets hold %d observations, the count is %d: %v", f.name, native, hs.GetSampleCount(), hs)
				}
			}
		}
	}
}

// TestAppendOpenMetricsFloat: OpenMetrics' numbers are the text format's,
// whole ones with ".0", and NaN and infinities as they are.
func TestAppendOpenMetricsFloat(t *testing.T) {
	for f, want := range map[float64]string{
		0: "0.0", 1: "1.0", -1: "-1.0", 2.5: "2.5", 100: "100.0", 1e-9: "1e-09", 1e21: "1e+21",
		math.Inf(1): "+Inf", math.Inf(-1): "-Inf",
	} {
		if got := string(appendOpenMetricsFloat(nil, f)); got != want {
			t.Errorf("%v: %q, want %q", f, got, want)
		}
	}
	if got := string(appendOpenMetricsFloat([]byte("x "), math.NaN())); got != "x NaN" {
		t.Errorf("NaN after a prefix: %q", got)
	}
}
