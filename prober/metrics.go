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

// The per-origin counter and gauge families. Their series live in each
// origin's originMetrics as plain numbers rather than as client_golang
// metrics: a leaf with 10,000 origins has about 250,000 of them, and
// client_golang's own series cost several hundred bytes each plus a sort
// of the whole family at every scrape. The collector below writes them
// out in label order, which is also the order the registry sorts them in.
type family int

const (
	famResults family = iota
	famSkipped
	famStatus
	famDrift
	famUncertainty
	famDriftLast
	famDuration
	famPhase
	famStatusCode
	famHTTPVersion
	famTLSExpiry
	famPacketsSent
	famPacketsReceived
	famLoss
	famSpread
	famPathHops
	famPathReached
	famPathChanges
	famPathMTU
	famPathDuration
	numFamilies
)

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

var gaugeFamily = [numGauges]family{famStatus, famDrift, famUncertainty, famDriftLast, famDuration, famStatusCode, famHTTPVersion, famTLSExpiry,
	famLoss, famSpread, famPathHops, famPathReached, famPathChanges, famPathMTU, famPathDuration, famPhase, famPhase, famPhase, famPhase, famPhase}

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

// phasesByLabel lists the phases in the order of their label value.
var phasesByLabel = func() []Phase {
	p := make([]Phase, numPhases)
	for i := range p {
		p[i] = Phase(i)
	}
	slices.SortFunc(p, func(a, b Phase) int { return cmp.Compare(a.String(), b.String()) })
	return p
}()

// Metrics are the leaf's probe metrics. One Metrics serves every origin.
type Metrics struct {
	timings *prometheus.HistogramVec
	// packetRTT has a series for origins probed with trains of more than
	// one packet only.
	packetRTT *prometheus.HistogramVec
	startLag  prometheus.Histogram
	descs     [numFamilies]*prometheus.Desc

	// The fixed label pairs: result="true"/"false", reason, phase.
	resultPairs [2]*dto.LabelPair
	reasonPairs map[Reason]*dto.LabelPair
	phasePairs  [numPhases]*dto.LabelPair

	// base is when the metrics were made, with its monotonic clock
	// reading: the exchanges' times are kept as durations since then.
	base time.Time

	mu      sync.Mutex
	origins map[originKey]*originMetrics
	leafIDs map[string]*dto.LabelPair
	// sorted is origins in label order; nil after a change.
	sorted []*originMetrics
}

type originKey struct{ id, leafID string }

// NewMetrics creates the probe metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	ol := []string{labelOrigin, labelLeafID}
	m := &Metrics{
		timings: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "oxcross_leaf_probe_timings",
			Help:                            "Round-trip time of successful probes, from the start of the request to the end of the response body, in seconds.",
			Buckets:                         TimingBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: 0,
		}, ol),
		packetRTT: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "oxcross_leaf_probe_packet_rtt_seconds",
			Help:                            "Round-trip time of each answered packet of the icmp and tcp kinds' trains (echo request to reply; SYN to SYN-ACK), in seconds.",
			Buckets:                         PacketRTTBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: 0,
		}, ol),
		startLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:                            "oxcross_leaf_probe_start_lag_seconds",
			Help:                            "How late probes start after their scheduled slot, in seconds: timer delay plus the wait for a free probe slot (--probe.max-concurrency). One series for the whole leaf.",
			Buckets:                         StartLagBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: 0,
		}),
		base:        time.Now(),
		reasonPairs: make(map[Reason]*dto.LabelPair, len(reasonsByLabel)),
		origins:     make(map[originKey]*originMetrics),
		leafIDs:     make(map[string]*dto.LabelPair),
	}
	m.descs = [numFamilies]*prometheus.Desc{
		famResults: prometheus.NewDesc("oxcross_leaf_probe_results",
			"Probes by result (\"true\" or \"false\") and reason (\"ok\" or a failure reason from a fixed set).",
			[]string{labelOrigin, labelLeafID, labelResult, labelReason}, nil),
		famSkipped: prometheus.NewDesc("oxcross_leaf_probe_skipped_total",
			"Probe slots skipped because the previous probe was still running or no probe slot (--probe.max-concurrency) was free in time.", ol, nil),
		famStatus: prometheus.NewDesc("oxcross_leaf_origin_status",
			"1 if the last probe of the origin succeeded, 0 otherwise.", ol, nil),
		famDrift: prometheus.NewDesc("oxcross_leaf_origin_time_drift",
			"Estimated clock offset of the origin minus the leaf, in seconds: the clock filter's, the offset of the exchange with the smallest round trip among the origin's last clock_filter_samples successful advanced-mode probes.", ol, nil),
		famUncertainty: prometheus.NewDesc("oxcross_leaf_origin_time_drift_uncertainty_seconds",
			"Maximum error of oxcross_leaf_origin_time_drift, in seconds: half the round trip its exchange spent outside the origin, plus that exchange's age (at the scrape) times 15 ppm.", ol, nil),
		famDriftLast: prometheus.NewDesc("oxcross_leaf_origin_time_drift_last_seconds",
			"Clock offset of the origin minus the leaf, in seconds, from the last successful advanced-mode probe's exchange alone (no clock filter).", ol, nil),
		famDuration: prometheus.NewDesc("oxcross_leaf_probe_duration_seconds",
			"Duration of the last probe of the origin, successful or not, in seconds.", ol, nil),
		famPhase: prometheus.NewDesc("oxcross_leaf_probe_phase_seconds",
			"Duration of each phase of the last probe of the origin, in seconds: resolve, connect, tls, processing (request written to first byte), transfer (first byte to end of body).",
			[]string{labelOrigin, labelLeafID, labelPhase}, nil),
		famStatusCode: prometheus.NewDesc("oxcross_leaf_probe_http_status_code",
			"HTTP status code of the last probe's response, 0 if there was none.", ol, nil),
		famHTTPVersion: prometheus.NewDesc("oxcross_leaf_probe_http_version",
			"HTTP version of the last probe's response (1.1, 2), 0 if there was none.", ol, nil),
		famTLSExpiry: prometheus.NewDesc("oxcross_leaf_probe_tls_cert_expiry_timestamp_seconds",
			"Earliest expiry of the certificates the origin sent in the last TLS handshake, as a Unix timestamp.", ol, nil),
		famPacketsSent: prometheus.NewDesc("oxcross_leaf_probe_packets_sent_total",
			"Packets the icmp and tcp kinds' probes sent (echo requests; SYNs of new connections).", ol, nil),
		famPacketsReceived: prometheus.NewDesc("oxcross_leaf_probe_packets_received_total",
			"Packets of the icmp and tcp kinds' probes that were answered in time (echo replies; completed handshakes).", ol, nil),
		famLoss: prometheus.NewDesc("oxcross_leaf_probe_packet_loss_ratio",
			"Ratio of the last train's packets left unanswered, 0 to 1 (icmp and tcp kinds).", ol, nil),
		famSpread: prometheus.NewDesc("oxcross_leaf_probe_packet_rtt_spread_seconds",
			"Spread of the last train's round trips, slowest minus fastest answered packet, in seconds; NaN when none was answered (icmp and tcp kinds).", ol, nil),
		famPathHops: prometheus.NewDesc("oxcross_leaf_path_hops",
			"Path probes: the hop the origin answered at in the last trace; when it did not answer, the last hop that did.", ol, nil),
		famPathReached: prometheus.NewDesc("oxcross_leaf_path_reached",
			"Path probes: 1 if the last trace reached the origin, 0 otherwise.", ol, nil),
		famPathChanges: prometheus.NewDesc("oxcross_leaf_path_changes_total",
			"Path probes: changes of the path to the origin; a new path counts once two traces in a row followed it, and hops that never answered match any address.", ol, nil),
		famPathMTU: prometheus.NewDesc("oxcross_leaf_path_mtu_bytes",
			"Path probes (udp and icmp methods): the path MTU the last trace found, in bytes, up to the last hop that answered.", ol, nil),
		famPathDuration: prometheus.NewDesc("oxcross_leaf_path_trace_duration_seconds",
			"Path probes: how long the last trace took, in seconds.", ol, nil),
	}
	m.resultPairs = [2]*dto.LabelPair{labelPair(labelResult, "false"), labelPair(labelResult, "true")}
	for _, r := range reasonsByLabel {
		m.reasonPairs[r] = labelPair(labelReason, string(r))
	}
	for p := range numPhases {
		m.phasePairs[p] = labelPair(labelPhase, p.String())
	}
	reg.MustRegister(m.timings, m.packetRTT, m.startLag, (*originCollector)(m))
	return m
}

func labelPair(name, value string) *dto.LabelPair {
	return &dto.LabelPair{Name: &name, Value: &value}
}

// originMetrics holds one origin's series. Its numbers are written by the
// origin's probe loop and read by scrapes, so they are atomic.
type originMetrics struct {
	parent     *Metrics
	id, leafID string
	timings    prometheus.Observer
	created    *timestamppb.Timestamp

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

	// labels backs the series' label pairs, sorted by name as the
	// exposition wants them: origin_id, then reason, result or phase,
	// then source_id.
	ol          []*dto.LabelPair
	resultLabel [numReasons][]*dto.LabelPair
	phaseLabel  [numPhases][]*dto.LabelPair
	// series are what Collect sends, one per possible series.
	series [numReasons + 3 + numGauges]originSeries
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
	sp, ok := m.leafIDs[leafID]
	if !ok {
		sp = labelPair(labelLeafID, leafID)
		m.leafIDs[leafID] = sp
	}
	om := &originMetrics{
		parent:  m,
		id:      id,
		leafID:  leafID,
		timings: m.timings.WithLabelValues(id, leafID),
		created: timestamppb.New(time.Now()),
	}
	op := labelPair(labelOrigin, id)
	// One backing array for every label slice of the origin.
	n := 2 + 4*len(om.resultLabel) + 3*int(numPhases)
	backing := make([]*dto.LabelPair, 0, n)
	take := func(pairs ...*dto.LabelPair) []*dto.LabelPair {
		start := len(backing)
		backing = append(backing, pairs...)
		return backing[start:len(backing):len(backing)]
	}
	om.ol = take(op, sp)
	for i, r := range reasonsByLabel {
		result := m.resultPairs[0]
		if r == ReasonOK {
			result = m.resultPairs[1]
		}
		om.resultLabel[i] = take(op, m.reasonPairs[r], result, sp)
	}
	for p := range numPhases {
		om.phaseLabel[p] = take(op, m.phasePairs[p], sp)
	}
	i := 0
	for r := range om.results {
		om.series[i] = originSeries{om: om, fam: famResults, idx: uint8(r)}
		i++
	}
	om.series[i] = originSeries{om: om, fam: famSkipped}
	i++
	for _, f := range []family{famPacketsSent, famPacketsReceived} {
		om.series[i] = originSeries{om: om, fam: f, idx: gLoss}
		i++
	}
	for g := range gPhase0 {
		om.series[i] = originSeries{om: om, fam: gaugeFamily[g], idx: uint8(g)}
		i++
	}
	for _, p := range phasesByLabel {
		om.series[i] = originSeries{om: om, fam: famPhase, idx: uint8(gPhase0 + int(p))}
		i++
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
	om.timings.Observe(r.Duration.Seconds())
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
		h := om.parent.packetRTT.WithLabelValues(om.id, om.leafID)
		for _, d := range t.RTTs {
			h.Observe(d.Seconds())
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
	m.timings.DeleteLabelValues(om.id, om.leafID)
	m.packetRTT.DeleteLabelValues(om.id, om.leafID)
}

// originCollector collects every origin's counters and gauges.
type originCollector Metrics

func (c *originCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *originCollector) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(c)
	for _, om := range m.sortedOrigins() {
		for i := range om.series {
			s := &om.series[i]
			if s.fam != famResults && s.fam != famSkipped && om.present.Load()&(1<<s.idx) == 0 {
				// A gauge not yet set, or packet counters before a train.
				continue
			}
			ch <- s
		}
	}
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

// series is one series of an origin, as a prometheus.Metric: the family,
// and the index of the reason or gauge.
type originSeries struct {
	om  *originMetrics
	fam family
	idx uint8
}

func (s *originSeries) Desc() *prometheus.Desc { return s.om.parent.descs[s.fam] }

func (s *originSeries) Write(out *dto.Metric) error {
	om := s.om
	switch s.fam {
	case famResults:
		out.Label = om.resultLabel[s.idx]
		out.Counter = &dto.Counter{Value: new(float64(om.results[s.idx].Load())), CreatedTimestamp: om.created}
	case famSkipped:
		out.Label = om.ol
		out.Counter = &dto.Counter{Value: new(float64(om.skipped.n.Load())), CreatedTimestamp: om.created}
	case famPacketsSent, famPacketsReceived:
		c := &om.packetsSent
		if s.fam == famPacketsReceived {
			c = &om.packetsReceived
		}
		out.Label = om.ol
		out.Counter = &dto.Counter{Value: new(float64(c.n.Load())), CreatedTimestamp: om.created}
	default:
		out.Label = om.ol
		if int(s.idx) >= gPhase0 {
			out.Label = om.phaseLabel[int(s.idx)-gPhase0]
		}
		v := math.Float64frombits(om.gauges[s.idx].Load())
		if s.idx == gPathChanges {
			out.Counter = &dto.Counter{Value: new(v), CreatedTimestamp: om.created}
			return nil
		}
		if s.idx == gUncertainty {
			// The bound of an exchange made age ago.
			age := time.Since(om.parent.base) - time.Duration(om.driftAt.Load())
			v += agePenalty(age).Seconds()
		}
		out.Gauge = &dto.Gauge{Value: new(v)}
	}
	return nil
}
