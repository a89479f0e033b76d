package prober

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Metric label names.
const (
	labelOrigin = "origin_id"
	labelLeafID = "source_id"
	labelResult = "result"
	labelReason = "reason"
	labelPhase  = "phase"
)

// TimingBuckets are the classic buckets of oxcross_leaf_probe_timings, in
// seconds: from 5 ms to 10 s, which spans internet round trips.
var TimingBuckets = []float64{.005, .01, .025, .05, .075, .1, .15, .2, .3, .4, .5, .75, 1, 1.5, 2, 3, 5, 10}

// PacketRTTBuckets are the classic buckets of
// oxcross_leaf_probe_packet_rtt_seconds: TimingBuckets with three more
// below them, for the sub-millisecond round trips of nearby origins.
var PacketRTTBuckets = append([]float64{.0005, .001, .0025}, TimingBuckets...)

// StartLagBuckets are the buckets of oxcross_leaf_probe_start_lag_seconds:
// from 100µs (a timer firing on time) to 10 s (a slot's worth of waiting
// for a free probe slot at long intervals).
var StartLagBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// numReasons is how many reasons there are, ok included: the results
// series of one origin. reasonsByLabel checks it against failureReasons.
const numReasons = 13

// gauge indexes in originMetrics.gauges (phases follow gPhase0).
const (
	gStatus = iota
	gDrift
	gUncertainty
	gDriftLast
	gDuration
	gStatusCode
	gHTTPVersion
	gTLSExpiry
	gLoss
	gSpread
	gPathHops
	gPathReached
	gPathChanges // a counter, kept as a float like the gauges
	gPathMTU
	gPathDuration
	gPhase0
	numGauges = gPhase0 + int(numPhases)
)

// reasonsByLabel lists every reason (ok included) in the order of its
// label value, which is the order of a scrape.
var reasonsByLabel = func() []Reason {
	r := append([]Reason{ReasonOK}, failureReasons...)
	if len(r) != numReasons {
		panic("prober: numReasons is not len(failureReasons)+1")
	}
	slices.Sort(r)
	return r
}()

// The per-origin families. Their series live in each origin's
// originMetrics as plain numbers rather than as client_golang metrics: a
// leaf with 10,000 origins has about 260,000 of them. The leaf's /metrics
// (Metrics.Handler) writes them straight to the exposition formats; the
// collector registered by NewMetrics gives the same series to Gather.
//
// Adding a family is an entry here: its name, help, type and, for each
// series an origin has, its own labels and where its value comes from
// (see counterSeries, gaugeSeries). The table is sorted by name, and
// each family's series by their labels, once at start.
var originFamilies = sortFamilies([]*originFamily{
	{
		name: "oxcross_leaf_probe_results",
		help: "Probes by result (\"true\" or \"false\") and reason (\"ok\" or a failure reason from a fixed set).",
		typ:  dto.MetricType_COUNTER,
		series: func() (s []familySeries) {
			for i, r := range reasonsByLabel {
				result := "false"
				if r == ReasonOK {
					result = "true"
				}
				s = append(s, counterSeries(func(om *originMetrics) *atomic.Uint64 { return &om.results[i] }, labelReason, string(r), labelResult, result))
			}
			return s
		}(),
	},
	{
		name:   "oxcross_leaf_probe_skipped_total",
		help:   "Probe slots skipped because the previous probe was still running or no probe slot (--probe.max-concurrency) was free in time.",
		typ:    dto.MetricType_COUNTER,
		series: []familySeries{counterSeries(func(om *originMetrics) *atomic.Uint64 { return &om.skipped.n })},
	},
	gaugeFamily(gStatus, "oxcross_leaf_origin_status",
		"1 if the last probe of the origin succeeded, 0 otherwise."),
	gaugeFamily(gDrift, "oxcross_leaf_origin_time_drift",
		"Estimated clock offset of the origin minus the leaf, in seconds: the clock filter's, the offset of the exchange with the smallest round trip among the origin's last clock_filter_samples successful advanced-mode probes."),
	gaugeFamily(gUncertainty, "oxcross_leaf_origin_time_drift_uncertainty_seconds",
		"Maximum error of oxcross_leaf_origin_time_drift, in seconds: half the round trip its exchange spent outside the origin, plus that exchange's age (at the scrape) times 15 ppm."),
	gaugeFamily(gDriftLast, "oxcross_leaf_origin_time_drift_last_seconds",
		"Clock offset of the origin minus the leaf, in seconds, from the last successful advanced-mode probe's exchange alone (no clock filter)."),
	gaugeFamily(gDuration, "oxcross_leaf_probe_duration_seconds",
		"Duration of the last probe of the origin, successful or not, in seconds."),
	{
		name: "oxcross_leaf_probe_phase_seconds",
		help: "Duration of each phase of the last probe of the origin, in seconds: resolve, connect, tls, processing (request written to first byte), transfer (first byte to end of body).",
		typ:  dto.MetricType_GAUGE,
		series: func() (s []familySeries) {
			for p := range numPhases {
				s = append(s, gaugeSeries(gPhase0+int(p), labelPhase, p.String()))
			}
			return s
		}(),
	},
	gaugeFamily(gStatusCode, "oxcross_leaf_probe_http_status_code",
		"HTTP status code of the last probe's response, 0 if there was none."),
	gaugeFamily(gHTTPVersion, "oxcross_leaf_probe_http_version",
		"HTTP version of the last probe's response (1.1, 2), 0 if there was none."),
	gaugeFamily(gTLSExpiry, "oxcross_leaf_probe_tls_cert_expiry_timestamp_seconds",
		"Earliest expiry of the certificates the origin sent in the last TLS handshake, as a Unix timestamp."),
	trainCounterFamily("oxcross_leaf_probe_packets_sent_total",
		"Packets the icmp and tcp kinds' probes sent (echo requests; SYNs of new connections).",
		func(om *originMetrics) *counterValue { return &om.packetsSent }),
	trainCounterFamily("oxcross_leaf_probe_packets_received_total",
		"Packets of the icmp and tcp kinds' probes that were answered in time (echo replies; completed handshakes).",
		func(om *originMetrics) *counterValue { return &om.packetsReceived }),
	gaugeFamily(gLoss, "oxcross_leaf_probe_packet_loss_ratio",
		"Ratio of the last train's packets left unanswered, 0 to 1 (icmp and tcp kinds)."),
	gaugeFamily(gSpread, "oxcross_leaf_probe_packet_rtt_spread_seconds",
		"Spread of the last train's round trips, slowest minus fastest answered packet, in seconds; NaN when none was answered (icmp and tcp kinds)."),
	{
		name:   "oxcross_leaf_probe_packet_rtt_seconds",
		help:   "Round-trip time of each answered packet of the icmp and tcp kinds' trains (echo request to reply; SYN to SYN-ACK), in seconds.",
		typ:    dto.MetricType_HISTOGRAM,
		series: []familySeries{histogramSeries(func(om *originMetrics) *histogram { return om.packetRTT.Load() })},
	},
	gaugeFamily(gPathHops, "oxcross_leaf_path_hops",
		"Path probes: the hop the origin answered at in the last trace; when it did not answer, the last hop that did."),
	gaugeFamily(gPathReached, "oxcross_leaf_path_reached",
		"Path probes: 1 if the last trace reached the origin, 0 otherwise."),
	{
		name: "oxcross_leaf_path_changes_total",
		help: "Path probes: changes of the path to the origin; a new path counts once two traces in a row followed it, and hops that never answered match any address.",
		typ:  dto.MetricType_COUNTER,
		// Kept as a gauge's float, the series appears with the first trace.
		series: []familySeries{gaugeSeries(gPathChanges)},
	},
	gaugeFamily(gPathMTU, "oxcross_leaf_path_mtu_bytes",
		"Path probes (udp and icmp methods): the path MTU the last trace found, in bytes, up to the last hop that answered."),
	gaugeFamily(gPathDuration, "oxcross_leaf_path_trace_duration_seconds",
		"Path probes: how long the last trace took, in seconds."),
	{
		name:   "oxcross_leaf_probe_timings",
		help:   "Round-trip time of successful probes, from the start of the request to the end of the response body, in seconds.",
		typ:    dto.MetricType_HISTOGRAM,
		series: []familySeries{histogramSeries(func(om *originMetrics) *histogram { return &om.timings })},
	},
})

// originFamily is a per-origin family.
type originFamily struct {
	name, help string
	typ        dto.MetricType
	// series are the series of one origin, in label order.
	series []familySeries
	// labelNames are the names of the series' labels, sorted.
	labelNames []string
	desc       *prometheus.Desc
	// leafFirst is set when a label sorts between source_id and the
	// series' own labels: then the family's series are ordered by
	// origin, leaf, series; else by origin, series, leaf.
	leafFirst bool
}

// familySeries is one series of an origin.
type familySeries struct {
	// labels are the series' labels sorted by name, origin_id and
	// source_id included (their values are filled in per origin).
	labels []seriesLabel
	// value is a counter's or gauge's value and whether the series
	// exists (a gauge before it is first set does not); hist is a
	// histogram series' histogram, nil while it does not exist.
	value func(*originMetrics) (float64, bool)
	hist  func(*originMetrics) *histogram
	fam   *originFamily
}

// exists returns the value of a counter or gauge series of om, and
// whether the series exists.
func (s *familySeries) exists(om *originMetrics) (float64, bool) {
	if s.hist != nil {
		return 0, s.hist(om) != nil
	}
	return s.value(om)
}

// seriesLabel is a label of a series: a fixed value, or the origin's id or
// leaf id.
type seriesLabel struct {
	name, value string
	from        labelFrom
	// pair is a fixed label as Gather wants it.
	pair *dto.LabelPair
}

type labelFrom uint8

const (
	fixedValue labelFrom = iota
	originValue
	leafValue
)

func (l *seriesLabel) valueFor(om *originMetrics) string {
	switch l.from {
	case originValue:
		return om.id
	case leafValue:
		return om.leafID
	}
	return l.value
}

// withLabels returns the label list of a series with these own labels
// (name, value pairs) and origin_id and source_id, sorted by name.
func withLabels(pairs ...string) []seriesLabel {
	l := []seriesLabel{{name: labelOrigin, from: originValue}, {name: labelLeafID, from: leafValue}}
	for i := 0; i+1 < len(pairs); i += 2 {
		l = append(l, seriesLabel{name: pairs[i], value: pairs[i+1], pair: &dto.LabelPair{Name: &pairs[i], Value: &pairs[i+1]}})
	}
	slices.SortFunc(l, func(a, b seriesLabel) int { return cmp.Compare(a.name, b.name) })
	return l
}

// counterSeries is a series of the counter c returns, which always
// exists.
func counterSeries(c func(*originMetrics) *atomic.Uint64, labels ...string) familySeries {
	return familySeries{labels: withLabels(labels...), value: func(om *originMetrics) (float64, bool) {
		return float64(c(om).Load()), true
	}}
}

// gaugeSeries is the series of gauge g, which exists once set.
func gaugeSeries(g int, labels ...string) familySeries {
	return familySeries{labels: withLabels(labels...), value: func(om *originMetrics) (float64, bool) { return om.gauge(g) }}
}

// histogramSeries is the series of the histogram h returns, which exists
// when h returns one.
func histogramSeries(h func(*originMetrics) *histogram, labels ...string) familySeries {
	return familySeries{labels: withLabels(labels...), hist: h}
}

// trainCounterFamily is a family of the trains' counter c, whose series
// appears with the first train (the loss gauge).
func trainCounterFamily(name, help string, c func(*originMetrics) *counterValue) *originFamily {
	return &originFamily{name: name, help: help, typ: dto.MetricType_COUNTER, series: []familySeries{{
		labels: withLabels(),
		value: func(om *originMetrics) (float64, bool) {
			if _, ok := om.gauge(gLoss); !ok {
				return 0, false
			}
			return float64(c(om).n.Load()), true
		},
	}}}
}

func gaugeFamily(g int, name, help string) *originFamily {
	return &originFamily{name: name, help: help, typ: dto.MetricType_GAUGE, series: []familySeries{gaugeSeries(g)}}
}

// sortFamilies sorts the families by name and each one's series by their
// fixed label values, fills in the label names and descriptions, and
// checks what the writers rely on: origin_id is every family's first
// label, and every series of a family has the same label names.
func sortFamilies(fams []*originFamily) []*originFamily {
	slices.SortFunc(fams, func(a, b *originFamily) int { return cmp.Compare(a.name, b.name) })
	for _, f := range fams {
		if len(f.series) == 0 {
			f.series = []familySeries{{labels: withLabels()}}
		}
		for i := range f.series {
			if f.series[i].labels == nil {
				f.series[i].labels = withLabels()
			}
		}
		for _, l := range f.series[0].labels {
			f.labelNames = append(f.labelNames, l.name)
		}
		if f.labelNames[0] != labelOrigin {
			panic("prober: the labels of " + f.name + " sort before " + labelOrigin)
		}
		for _, s := range f.series {
			if !slices.EqualFunc(s.labels, f.series[0].labels, func(a, b seriesLabel) bool { return a.name == b.name }) {
				panic("prober: the series of " + f.name + " differ in their label names")
			}
		}
		f.leafFirst = f.labelNames[1] == labelLeafID && len(f.labelNames) > 2
		slices.SortStableFunc(f.series, func(a, b familySeries) int {
			for i := range a.labels {
				if c := cmp.Compare(a.labels[i].value, b.labels[i].value); c != 0 {
					return c
				}
			}
			return 0
		})
		f.desc = prometheus.NewDesc(f.name, f.help, f.labelNames, nil)
		for i := range f.series {
			f.series[i].fam = f
		}
	}
	return fams
}

// Metrics are the leaf's probe metrics. One Metrics serves every origin.
type Metrics struct {
	startLag prometheus.Histogram
	// leafLevel holds the families of Metrics that are not per origin,
	// originsOnly the per-origin ones, for Handler.
	leafLevel, originsOnly *prometheus.Registry

	// base is when the metrics were made, with its monotonic clock
	// reading: the exchanges' times are kept as durations since then.
	base time.Time
	// now is time.Now but in tests.
	now func() time.Time

	mu      sync.Mutex
	origins map[originKey]*originMetrics
	// sorted is origins in label order; nil after a change.
	sorted []*originMetrics
}

type originKey struct{ id, leafID string }

// NewMetrics creates the probe metrics and registers them on reg: its
// Gather has every series. Handler serves them without Gather.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		startLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:                            "oxcross_leaf_probe_start_lag_seconds",
			Help:                            "How late probes start after their scheduled slot, in seconds: timer delay plus the wait for a free probe slot (--probe.max-concurrency). One series for the whole leaf.",
			Buckets:                         StartLagBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: 0,
		}),
		leafLevel:   prometheus.NewRegistry(),
		originsOnly: prometheus.NewRegistry(),
		base:        time.Now(),
		now:         time.Now,
		origins:     make(map[originKey]*originMetrics),
	}
	m.leafLevel.MustRegister(m.startLag)
	m.originsOnly.MustRegister((*originCollector)(m))
	reg.MustRegister(m.startLag, (*originCollector)(m))
	return m
}

// originMetrics holds one origin's series. Its numbers are written by the
// origin's probe loop and read by scrapes, so they are atomic.
type originMetrics struct {
	parent     *Metrics
	id, leafID string
	// created is when the series were created, in Unix nanoseconds.
	created int64

	// results counts probes by reason, in reasonsByLabel order.
	results [numReasons]atomic.Uint64
	skipped counterValue
	// packetsSent and packetsReceived count the trains' packets; their
	// series appear with the first train of more than one packet (with
	// the gLoss gauge).
	packetsSent, packetsReceived counterValue
	// gauges holds float64 bits; present has bit i set once gauge i
	// exists (the gauges appear with the first result that has them).
	gauges  [numGauges]atomic.Uint64
	present atomic.Uint32
	// driftAt is when the exchange of the drift gauge ended, as
	// nanoseconds since parent.base on the monotonic clock: the
	// uncertainty gauge's bound widens with its age at each scrape.
	driftAt atomic.Int64
	timings histogram
	// packetRTT is the trains' round trips, made with the first train
	// that has one.
	packetRTT atomic.Pointer[histogram]
}

// counterValue is a counter of whole numbers.
type counterValue struct{ n atomic.Uint64 }

// Inc adds one.
func (c *counterValue) Inc() { c.n.Add(1) }

// Add adds v, which is a whole number.
func (c *counterValue) Add(v float64) { c.n.Add(uint64(v)) }

func (m *Metrics) forOrigin(id, leafID string) *originMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := originKey{id, leafID}
	if om, ok := m.origins[k]; ok {
		// A changed origin's new loop keeps its series.
		return om
	}
	om := &originMetrics{
		parent:  m,
		id:      id,
		leafID:  leafID,
		created: m.now().UnixNano(),
		timings: newHistogram(TimingBuckets),
	}
	m.origins[k] = om
	m.sorted = nil
	return om
}

// reasonIndex is the index of each reason in reasonsByLabel.
var reasonIndex = func() map[Reason]int {
	idx := make(map[Reason]int, len(reasonsByLabel))
	for i, r := range reasonsByLabel {
		idx[r] = i
	}
	return idx
}()

// reasonSlot returns r's index in originMetrics.results; a reason outside
// the fixed set counts as error.
func reasonSlot(r Reason) int {
	if i, ok := reasonIndex[r]; ok {
		return i
	}
	return reasonIndex[ReasonError]
}

var okSlot = reasonSlot(ReasonOK)

func (om *originMetrics) set(g int, v float64) {
	om.gauges[g].Store(math.Float64bits(v))
	if bit := uint32(1) << g; om.present.Load()&bit == 0 {
		om.present.Or(bit)
	}
}

// gauge returns gauge g's value at a scrape, and whether it exists.
func (om *originMetrics) gauge(g int) (float64, bool) {
	if om.present.Load()&(1<<g) == 0 {
		return 0, false
	}
	v := math.Float64frombits(om.gauges[g].Load())
	if g == gUncertainty {
		// The bound of an exchange made age ago.
		m := om.parent
		age := m.now().Sub(m.base) - time.Duration(om.driftAt.Load())
		v += agePenalty(age).Seconds()
	}
	return v, true
}

// record updates the origin's series with one probe's result. The gauges
// are created at the first result, so that an origin not yet probed has no
// status rather than a status of 0.
func (om *originMetrics) record(r Result) {
	om.set(gDuration, r.Duration.Seconds())
	for p := range numPhases {
		if d, ok := r.Phases.Get(p); ok {
			om.set(gPhase0+int(p), d.Seconds())
		}
	}
	if r.StatusCode != 0 || om.present.Load()&(1<<gStatusCode) != 0 {
		om.set(gStatusCode, float64(r.StatusCode))
		om.set(gHTTPVersion, r.HTTPVersion)
	}
	if !r.TLSExpiry.IsZero() {
		om.set(gTLSExpiry, float64(r.TLSExpiry.Unix()))
	}
	if t := r.Train; t != nil && t.Sent > 1 {
		// One packet says no more than the probe's own series.
		om.recordTrain(t)
	}
	if p := r.Path; p != nil {
		om.recordPath(p)
	}
	if !r.Success {
		om.set(gStatus, 0)
		om.results[reasonSlot(r.Reason)].Add(1)
		return
	}
	om.set(gStatus, 1)
	om.results[okSlot].Add(1)
	om.timings.observe(r.Duration.Seconds())
	if r.Drift != nil {
		offset, bound, at := r.Drift.Offset, r.Drift.Uncertainty, time.Now()
		if f := r.Filtered; f != nil {
			offset, bound, at = f.Offset, f.Bound, f.At
		}
		om.driftAt.Store(int64(at.Sub(om.parent.base)))
		om.set(gDrift, offset.Seconds())
		om.set(gUncertainty, bound.Seconds())
		om.set(gDriftLast, r.Drift.Offset.Seconds())
	}
}

// recordTrain counts a train's packets, sets its loss and spread and
// observes each answered packet's round trip: for trains of more than one
// packet only, so that origins probed with one packet (the default) keep
// the series they had.
func (om *originMetrics) recordTrain(t *Train) {
	om.packetsSent.Add(float64(t.Sent))
	om.packetsReceived.Add(float64(t.Received))
	spread := math.NaN()
	if _, lo, hi, ok := t.Stats(); ok {
		spread = (hi - lo).Seconds()
	}
	om.set(gSpread, spread)
	om.set(gLoss, t.Loss())
	if len(t.RTTs) > 0 {
		h := om.packetRTT.Load()
		if h == nil {
			// One probe of the origin at a time writes it.
			nh := newHistogram(PacketRTTBuckets)
			h = &nh
			om.packetRTT.Store(h)
		}
		for _, d := range t.RTTs {
			h.observe(d.Seconds())
		}
	}
}

// recordPath sets the path families of a path probe's result.
func (om *originMetrics) recordPath(p *PathResult) {
	t := p.Trace
	hops := t.LastAnswered()
	if t.Reached {
		hops = t.Hops[len(t.Hops)-1].TTL
	}
	om.set(gPathHops, float64(hops))
	om.set(gPathReached, b2f(t.Reached))
	changes := math.Float64frombits(om.gauges[gPathChanges].Load())
	if p.Changed {
		changes++
	}
	om.set(gPathChanges, changes)
	if t.MTU > 0 {
		om.set(gPathMTU, float64(t.MTU))
	}
	om.set(gPathDuration, t.Duration.Seconds())
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// delete removes every series of the origin.
func (om *originMetrics) delete() {
	m := om.parent
	m.mu.Lock()
	if m.origins[originKey{om.id, om.leafID}] == om {
		delete(m.origins, originKey{om.id, om.leafID})
		m.sorted = nil
	}
	m.mu.Unlock()
}

// sortedOrigins returns the origins in label order (origin_id, then
// source_id), so that each family's series come out as the registry sorts
// them.
func (m *Metrics) sortedOrigins() []*originMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sorted == nil {
		m.sorted = make([]*originMetrics, 0, len(m.origins))
		for _, om := range m.origins {
			m.sorted = append(m.sorted, om)
		}
		slices.SortFunc(m.sorted, func(a, b *originMetrics) int {
			return cmp.Or(cmp.Compare(a.id, b.id), cmp.Compare(a.leafID, b.leafID))
		})
	}
	return m.sorted
}

// eachSeries calls fn for every series family f may have, in the order
// the registry sorts them, with v the value of a counter or gauge and ok
// whether the series exists.
func (f *originFamily) eachSeries(origins []*originMetrics, fn func(om *originMetrics, s *familySeries, v float64, ok bool)) {
	visit := func(om *originMetrics, s *familySeries) {
		v, ok := s.exists(om)
		fn(om, s, v, ok)
	}
	for len(origins) > 0 {
		// The origins of one id (one per leaf id, so one in a leaf).
		n := 1
		for n < len(origins) && origins[n].id == origins[0].id {
			n++
		}
		group := origins[:n]
		origins = origins[n:]
		if f.leafFirst || n == 1 {
			for _, om := range group {
				for i := range f.series {
					visit(om, &f.series[i])
				}
			}
			continue
		}
		for i := range f.series {
			for _, om := range group {
				visit(om, &f.series[i])
			}
		}
	}
}

// originCollector gives every origin's series to Gather.
type originCollector Metrics

func (c *originCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range originFamilies {
		ch <- f.desc
	}
}

func (c *originCollector) Collect(ch chan<- prometheus.Metric) {
	for _, om := range (*Metrics)(c).sortedOrigins() {
		// What the origin's series share, made once per Gather: their
		// label pairs, in one allocation, and the series, in another.
		nSeries, nLabels := 0, 0
		for _, f := range originFamilies {
			for i := range f.series {
				if _, ok := f.series[i].exists(om); ok {
					nSeries++
					nLabels += len(f.series[i].labels)
				}
			}
		}
		g := &gatheredOrigin{
			om:      om,
			labels:  make([]*dto.LabelPair, 0, nLabels),
			created: timestamppb.New(time.Unix(0, om.created)),
		}
		origin := &dto.LabelPair{Name: new(labelOrigin), Value: &om.id}
		leaf := &dto.LabelPair{Name: new(labelLeafID), Value: &om.leafID}
		series := make([]originSeries, 0, nSeries)
		for _, f := range originFamilies {
			for i := range f.series {
				s := &f.series[i]
				if _, ok := s.exists(om); !ok {
					continue
				}
				start := len(g.labels)
				for j := range s.labels {
					switch l := &s.labels[j]; l.from {
					case originValue:
						g.labels = append(g.labels, origin)
					case leafValue:
						g.labels = append(g.labels, leaf)
					default:
						g.labels = append(g.labels, l.pair)
					}
				}
				series = append(series, originSeries{g: g, s: s, labels: uint32(start)<<16 | uint32(len(g.labels))})
			}
		}
		for i := range series {
			ch <- &series[i]
		}
	}
}

// gatheredOrigin is what an origin's series share in one Gather.
type gatheredOrigin struct {
	om      *originMetrics
	labels  []*dto.LabelPair
	created *timestamppb.Timestamp
}

// originSeries is one series of an origin as a prometheus.Metric: labels
// holds the start and end of its label pairs in g.labels.
type originSeries struct {
	g      *gatheredOrigin
	s      *familySeries
	labels uint32
}

func (s *originSeries) Desc() *prometheus.Desc { return s.s.fam.desc }

func (s *originSeries) Write(out *dto.Metric) error {
	g := s.g
	out.Label = g.labels[s.labels>>16 : s.labels&0xffff : s.labels&0xffff]
	v, _ := s.s.exists(g.om)
	switch s.s.fam.typ {
	case dto.MetricType_COUNTER:
		out.Counter = &dto.Counter{Value: new(v), CreatedTimestamp: g.created}
	case dto.MetricType_GAUGE:
		out.Gauge = &dto.Gauge{Value: new(v)}
	case dto.MetricType_HISTOGRAM:
		var snap histSnapshot
		s.s.hist(g.om).snapshot(&snap)
		out.Histogram = &dto.Histogram{CreatedTimestamp: g.created}
		snap.write(out.Histogram)
	}
	return nil
}
