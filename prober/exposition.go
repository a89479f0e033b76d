package prober

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Handler returns the leaf's /metrics handler: the families of others,
// which must not hold m's (m is registered elsewhere), merged in name order
// with m's. m's per-origin families are written straight from their
// numbers, without Gather and without an object per series: the text
// format, OpenMetrics 1.0 and the delimited protobuf format with native
// histograms, byte for byte what promhttp writes of the same registry
// (TestExpositionMatchesGather). The format and compression are
// negotiated as promhttp does (Accept, Accept-Encoding: gzip, name[]).
// Its errors are counted in promhttp_metric_handler_errors_total,
// registered on reg unless reg is nil.
func (m *Metrics) Handler(others prometheus.Gatherer, reg prometheus.Registerer, logger *slog.Logger) http.Handler {
	h := &metricsHandler{
		m:      m,
		rest:   prometheus.Gatherers{others, m.leafLevel},
		logger: logger,
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promhttp_metric_handler_errors_total",
			Help: "Total number of internal errors encountered by the promhttp metric handler.",
		}, []string{"cause"}),
		free: make(chan *expoWriter, 2),
	}
	if reg != nil {
		if err := reg.Register(h.errors); err != nil {
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
				h.errors = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return h
}

type metricsHandler struct {
	m      *Metrics
	rest   prometheus.Gatherer
	logger *slog.Logger
	errors *prometheus.CounterVec
	// free holds writers and their buffers between scrapes.
	free chan *expoWriter
}

var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

func (h *metricsHandler) ServeHTTP(rsp http.ResponseWriter, req *http.Request) {
	mfs, err := h.rest.Gather()
	if err != nil {
		h.logger.Error("Gathering metrics", "err", err)
		h.errors.WithLabelValues("gathering").Inc()
		http.Error(rsp, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	format := expfmt.NegotiateAccept(req.Header, expfmt.DefaultOpenMetricsAcceptedFormats()...)
	rsp.Header().Add("Vary", "Accept")
	rsp.Header().Add("Vary", "Accept-Encoding")
	rsp.Header().Set("Content-Type", string(format))
	var out io.Writer = rsp
	if negotiateGzip(req.Header.Get("Accept-Encoding")) {
		rsp.Header().Set("Content-Encoding", "gzip")
		gz := gzipWriters.Get().(*gzip.Writer)
		gz.Reset(rsp)
		defer func() { _ = gz.Close(); gzipWriters.Put(gz) }()
		out = gz
	}

	var w *expoWriter
	select {
	case w = <-h.free:
	default:
		w = &expoWriter{bw: bufio.NewWriterSize(nil, 32<<10)}
	}
	defer func() {
		w.bw.Reset(nil)
		select {
		case h.free <- w:
		default:
		}
	}()
	w.bw.Reset(out)
	w.format = directFormat(format)

	var filter map[string]bool
	if req.URL != nil {
		if names := req.URL.Query()["name[]"]; len(names) > 0 {
			filter = make(map[string]bool, len(names))
			for _, n := range names {
				filter[n] = true
			}
		}
	}
	enc := expfmt.NewEncoder(w.bw, format)
	var origins []*originMetrics
	fams := originFamilies
	if w.format == formatOther {
		// A format the writers do not know (OpenMetrics 2.0): the
		// per-origin families through Gather, as promhttp would.
		if mfs, err = (prometheus.Gatherers{h.rest, h.m.originsOnly}).Gather(); err != nil {
			h.logger.Error("Gathering metrics", "err", err)
		}
		fams = nil
	} else {
		origins = h.m.sortedOrigins()
	}
	for len(mfs) > 0 || len(fams) > 0 {
		if len(fams) == 0 || (len(mfs) > 0 && mfs[0].GetName() < fams[0].name) {
			mf := mfs[0]
			mfs = mfs[1:]
			if filter != nil && !filter[mf.GetName()] {
				continue
			}
			err = enc.Encode(mf)
		} else {
			f := fams[0]
			fams = fams[1:]
			if filter != nil && !filter[f.name] {
				continue
			}
			err = w.family(f, origins)
		}
		if err != nil {
			// Mostly a scraper that went away, which promhttp does not
			// log either.
			h.logger.Debug("Encoding and sending a metric family", "err", err)
			h.errors.WithLabelValues("encoding").Inc()
			return
		}
	}
	if closer, ok := enc.(expfmt.Closer); ok {
		err = closer.Close()
	}
	if err == nil {
		err = w.bw.Flush()
	}
	if err != nil {
		h.logger.Debug("Sending metrics", "err", err)
	}
}

// negotiateGzip reports whether Accept-Encoding prefers gzip to identity,
// as promhttp negotiates it.
func negotiateGzip(accept string) bool {
	best, bestQ := "identity", -1.0
	for _, offer := range []string{"identity", "gzip"} {
		for spec := range strings.SplitSeq(accept, ",") {
			value, params, _ := strings.Cut(spec, ";")
			value = strings.ToLower(strings.TrimSpace(value))
			if value == "" {
				continue
			}
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				k, v, _ := strings.Cut(p, "=")
				if strings.TrimSpace(k) == "q" {
					if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
						q = f
					} else {
						q = 0
					}
				}
			}
			if q > bestQ && (value == "*" || value == offer) {
				best, bestQ = offer, q
			}
		}
	}
	return best == "gzip" && bestQ > 0
}

type expoFormat uint8

const (
	formatOther expoFormat = iota
	formatText
	formatOpenMetrics
	formatProto
)

func directFormat(f expfmt.Format) expoFormat {
	switch f.FormatType() {
	case expfmt.TypeTextPlain:
		return formatText
	case expfmt.TypeProtoDelim:
		return formatProto
	case expfmt.TypeOpenMetrics:
		if _, params, err := mime.ParseMediaType(string(f)); err == nil && !strings.HasPrefix(params["version"], "2.") {
			return formatOpenMetrics
		}
	}
	return formatOther
}

// expoWriter writes per-origin families in one format. Its buffers are
// kept for the next scrape.
type expoWriter struct {
	bw     *bufio.Writer
	format expoFormat
	// buf is a text series or a protobuf histogram family's body,
	// scratch a protobuf series, hdr a protobuf family's header.
	buf, scratch, hdr []byte
	// exists notes which series of a protobuf family exist.
	exists []uint64
	snap   histSnapshot
	err    error
}

// family writes f's series, if it has any.
func (w *expoWriter) family(f *originFamily, origins []*originMetrics) error {
	if w.format == formatProto {
		return w.protoFamily(f, origins)
	}
	w.err = nil
	started := false
	f.eachSeries(origins, func(om *originMetrics, s *familySeries, v float64, ok bool) {
		if w.err != nil || !ok {
			return
		}
		if !started {
			started = true
			w.header(f)
		}
		if s.hist != nil {
			s.hist(om).snapshot(&w.snap)
		}
		w.buf = w.textSeries(w.buf[:0], f, om, s, v)
		_, w.err = w.bw.Write(w.buf)
	})
	return w.err
}

// protoFamily writes f as one length-delimited MetricFamily. The length
// comes first, so the family is encoded twice: once to measure it, noting
// which series exist, and once to write those. Counters and gauges keep
// their size when their value changes in between (fixed64); histograms
// do not, so that family is encoded into w.buf and written whole.
func (w *expoWriter) protoFamily(f *originFamily, origins []*originMetrics) error {
	w.buf = w.buf[:0]
	w.exists = w.exists[:0]
	size, n := 0, 0
	f.eachSeries(origins, func(om *originMetrics, s *familySeries, v float64, ok bool) {
		if n%64 == 0 {
			w.exists = append(w.exists, 0)
		}
		if ok {
			w.exists[n/64] |= 1 << (n % 64)
			if s.hist != nil {
				s.hist(om).snapshot(&w.snap)
				w.buf = w.protoSeries(w.buf, f, om, s, v)
			} else {
				w.scratch = w.protoSeries(w.scratch[:0], f, om, s, v)
				size += len(w.scratch)
			}
		}
		n++
	})
	if size+len(w.buf) == 0 {
		return nil
	}
	w.header(f)
	size += len(w.hdr) + len(w.buf)
	var l [binary.MaxVarintLen64]byte
	if _, err := w.bw.Write(binary.AppendUvarint(l[:0], uint64(size))); err != nil {
		return err
	}
	if _, err := w.bw.Write(w.hdr); err != nil {
		return err
	}
	if len(w.buf) > 0 {
		_, err := w.bw.Write(w.buf)
		return err
	}
	n, w.err = 0, nil
	f.eachSeries(origins, func(om *originMetrics, s *familySeries, v float64, _ bool) {
		if w.err == nil && w.exists[n/64]&(1<<(n%64)) != 0 {
			w.scratch = w.protoSeries(w.scratch[:0], f, om, s, v)
			_, w.err = w.bw.Write(w.scratch)
		}
		n++
	})
	return w.err
}

// header starts a family: the HELP and TYPE lines, or the protobuf
// family's name, help and type.
func (w *expoWriter) header(f *originFamily) {
	b := w.hdr[:0]
	switch w.format {
	case formatProto:
		b = appendProtoString(b, 1, f.name)
		b = appendProtoString(b, 2, f.help)
		b = protowire(b, 3, 0)
		w.hdr = binary.AppendUvarint(b, uint64(f.typ))
		return
	case formatOpenMetrics:
		name, typ := f.name, strings.ToLower(f.typ.String())
		if f.typ == dto.MetricType_COUNTER {
			if n, ok := strings.CutSuffix(name, "_total"); ok {
				name = n
			} else {
				typ = "unknown"
			}
		}
		b = append(b, "# HELP "...)
		b = append(b, name...)
		b = append(b, ' ')
		b = appendEscaped(b, f.help, true)
		b = append(b, "\n# TYPE "...)
		b = append(b, name...)
		b = append(b, ' ')
		b = append(b, typ...)
		b = append(b, '\n')
	default:
		b = append(b, "# HELP "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = appendEscaped(b, f.help, false)
		b = append(b, "\n# TYPE "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = append(b, strings.ToLower(f.typ.String())...)
		b = append(b, '\n')
	}
	w.hdr = b
	_, w.err = w.bw.Write(b)
}

// textSeries appends one series in the text format or OpenMetrics.
func (w *expoWriter) textSeries(b []byte, f *originFamily, om *originMetrics, s *familySeries, v float64) []byte {
	om1 := w.format == formatOpenMetrics
	appendValue := func(b []byte, v float64) []byte {
		if om1 {
			return appendOpenMetricsFloat(b, v)
		}
		return appendTextFloat(b, v)
	}
	appendCount := func(b []byte, c uint64) []byte {
		if om1 {
			return strconv.AppendUint(b, c, 10)
		}
		return appendTextFloat(b, float64(c))
	}
	// sample appends one line: the name with suffix, the labels (with le
	// when given), and the value: c when count, else v.
	sample := func(b []byte, suffix, le string, ub float64, count bool, c uint64, v float64) []byte {
		b = append(b, f.name...)
		b = append(b, suffix...)
		b = appendLabels(b, om, s.labels, le, ub, om1)
		b = append(b, ' ')
		if count {
			b = appendCount(b, c)
		} else {
			b = appendValue(b, v)
		}
		return append(b, '\n')
	}
	if s.hist == nil {
		return sample(b, "", "", 0, false, 0, v)
	}
	h := &w.snap
	for i, ub := range h.bounds {
		b = sample(b, "_bucket", "le", ub, true, h.cumulative[i], 0)
	}
	b = sample(b, "_bucket", "le", math.Inf(1), true, h.count, 0)
	b = sample(b, "_sum", "", 0, false, 0, h.sum)
	return sample(b, "_count", "", 0, true, h.count, 0)
}

// appendLabels appends {name="value",...}, with le last if given.
func appendLabels(b []byte, om *originMetrics, labels []seriesLabel, le string, leValue float64, om1 bool) []byte {
	sep := byte('{')
	for i := range labels {
		l := &labels[i]
		b = append(b, sep)
		b = append(b, l.name...)
		b = append(b, `="`...)
		b = appendEscaped(b, l.valueFor(om), true)
		b = append(b, '"')
		sep = ','
	}
	if le != "" {
		b = append(b, sep)
		b = append(b, le...)
		b = append(b, `="`...)
		if om1 {
			b = appendOpenMetricsFloat(b, leValue)
		} else {
			b = appendTextFloat(b, leValue)
		}
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendEscaped escapes as expfmt does: backslash and newline, and the
// double quote in label values and OpenMetrics' help.
func appendEscaped(b []byte, s string, quote bool) []byte {
	if !strings.ContainsAny(s, "\\\n\"") {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendTextFloat formats as the text format does.
func appendTextFloat(b []byte, f float64) []byte {
	switch {
	case f == 1:
		return append(b, '1')
	case f == 0:
		return append(b, '0')
	case f == -1:
		return append(b, "-1"...)
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, +1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// appendOpenMetricsFloat formats as OpenMetrics does: as the text format,
// with ".0" after whole numbers.
func appendOpenMetricsFloat(b []byte, f float64) []byte {
	start := len(b)
	b = appendTextFloat(b, f)
	if !math.IsNaN(f) && !math.IsInf(f, 0) && !slices.ContainsFunc(b[start:], func(c byte) bool { return c == 'e' || c == '.' }) {
		b = append(b, '.', '0')
	}
	return b
}

// protoSeries appends one series as a MetricFamily's metric field (4),
// its fields in number order as the protobuf library writes them.
func (w *expoWriter) protoSeries(b []byte, f *originFamily, om *originMetrics, s *familySeries, v float64) []byte {
	b, m := beginMessage(b, 4)
	for i := range s.labels {
		l := &s.labels[i]
		var lp int
		b, lp = beginMessage(b, 1)
		b = appendProtoString(b, 1, l.name)
		b = appendProtoString(b, 2, l.valueFor(om))
		b = endMessage(b, lp)
	}
	switch f.typ {
	case dto.MetricType_GAUGE:
		var g int
		b, g = beginMessage(b, 2)
		b = appendProtoDouble(b, 1, v)
		b = endMessage(b, g)
	case dto.MetricType_COUNTER:
		var c int
		b, c = beginMessage(b, 3)
		b = appendProtoDouble(b, 1, v)
		b = appendProtoTimestamp(b, 3, om.created)
		b = endMessage(b, c)
	case dto.MetricType_HISTOGRAM:
		h := &w.snap
		var hp int
		b, hp = beginMessage(b, 7)
		b = protowire(b, 1, 0)
		b = binary.AppendUvarint(b, h.count)
		b = appendProtoDouble(b, 2, h.sum)
		for i, ub := range h.bounds {
			var bp int
			b, bp = beginMessage(b, 3)
			b = protowire(b, 1, 0)
			b = binary.AppendUvarint(b, h.cumulative[i])
			b = appendProtoDouble(b, 2, ub)
			b = endMessage(b, bp)
		}
		b = protowire(b, 5, 0)
		b = binary.AppendUvarint(b, uint64(uint32((h.schema<<1)^(h.schema>>31))))
		b = appendProtoDouble(b, 6, nativeZeroThreshold)
		b = protowire(b, 7, 0)
		b = binary.AppendUvarint(b, h.zero)
		b = appendSpans(b, 9, 10, h.negSpans, h.negDeltas)
		b = appendSpans(b, 12, 13, h.posSpans, h.posDeltas)
		b = appendProtoTimestamp(b, 15, om.created)
		b = endMessage(b, hp)
	}
	return endMessage(b, m)
}

func appendSpans(b []byte, spanField, deltaField int, spans []bucketSpan, deltas []int64) []byte {
	for _, s := range spans {
		var sp int
		b, sp = beginMessage(b, spanField)
		b = protowire(b, 1, 0)
		b = binary.AppendUvarint(b, uint64(uint32((s.offset<<1)^(s.offset>>31))))
		b = protowire(b, 2, 0)
		b = binary.AppendUvarint(b, uint64(s.length))
		b = endMessage(b, sp)
	}
	for _, d := range deltas {
		b = protowire(b, deltaField, 0)
		b = binary.AppendUvarint(b, uint64((d<<1)^(d>>63)))
	}
	return b
}

// protowire appends a field's tag.
func protowire(b []byte, field, wireType int) []byte {
	return binary.AppendUvarint(b, uint64(field)<<3|uint64(wireType))
}

func appendProtoString(b []byte, field int, s string) []byte {
	b = protowire(b, field, 2)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendProtoDouble(b []byte, field int, v float64) []byte {
	b = protowire(b, field, 1)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// appendProtoTimestamp appends a google.protobuf.Timestamp of Unix
// nanoseconds ns (zero fields left out, as proto3 does).
func appendProtoTimestamp(b []byte, field int, ns int64) []byte {
	sec, nsec := ns/1e9, ns%1e9
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	b, t := beginMessage(b, field)
	if sec != 0 {
		b = protowire(b, 1, 0)
		b = binary.AppendUvarint(b, uint64(sec))
	}
	if nsec != 0 {
		b = protowire(b, 2, 0)
		b = binary.AppendUvarint(b, uint64(nsec))
	}
	return endMessage(b, t)
}

// beginMessage appends a length-delimited field's tag and one byte for its
// length; endMessage writes the length, moving the body if it needs more
// bytes.
func beginMessage(b []byte, field int) ([]byte, int) {
	b = protowire(b, field, 2)
	return append(b, 0), len(b) + 1
}

func endMessage(b []byte, start int) []byte {
	n := len(b) - start
	if n < 0x80 {
		b[start-1] = byte(n)
		return b
	}
	var l [binary.MaxVarintLen64]byte
	enc := binary.AppendUvarint(l[:0], uint64(n))
	extra := len(enc) - 1
	b = append(b, enc[:extra]...)
	copy(b[start+extra:], b[start:start+n])
	copy(b[start-1:], enc)
	return b
}
