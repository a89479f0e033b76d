// Package push sends the samples of a prometheus.Gatherer to Prometheus
// remote-write endpoints on an interval: one bounded queue per endpoint,
// retries with backoff that honour Retry-After, and staleness markers for
// series that disappear and for every series at shutdown.
//
// Requests are made by github.com/prometheus/client_golang/exp/api/remote,
// which retries 5xx, 429 (after its Retry-After) and network errors, and
// never another 4xx. Remote write 1.0 requests use prometheus/prometheus'
// prompb types; 2.0 requests the exp module's own writev2 types.
package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"

	"github.com/oxcross/oxcross/config"
)

// Protocols are the remote write versions a pusher speaks.
const (
	Protocol1 = "1.0"
	Protocol2 = "2.0"
)

// Reasons for dropping samples, the values of the reason label of
// oxcross_leaf_push_samples_dropped_total.
const (
	// ReasonQueueFull: the queue held --push.queue-max-samples samples;
	// the oldest made room for the newest.
	ReasonQueueFull = "queue_full"
	// ReasonShutdown: still queued, or in a request still retried, when
	// the leaf stopped and the flush deadline passed.
	ReasonShutdown = "shutdown"
)

// DropReasons is the fixed set of reason label values.
var DropReasons = []string{ReasonQueueFull, ReasonShutdown}

// Defaults of Options.
const (
	DefaultInterval        = 15 * time.Second
	DefaultQueueMaxSamples = 500_000
	DefaultMaxPerRequest   = 2000
	DefaultTimeout         = 30 * time.Second
	DefaultFlushTimeout    = 5 * time.Second
	DefaultMinBackoff      = 250 * time.Millisecond
	DefaultMaxBackoff      = 5 * time.Second
)

// Options configure a Pusher. Zero values take the defaults.
type Options struct {
	// URLs are the remote-write endpoints, each with its full path
	// (e.g. http://prometheus:9090/api/v1/write).
	URLs     []string
	Gatherer prometheus.Gatherer
	Interval time.Duration
	// Client makes the requests (TLS, auth: prometheus/common's HTTP
	// client config); its Timeout bounds each attempt (DefaultTimeout
	// when zero).
	Client *http.Client
	// ExternalLabels are added to every series that has no label of the
	// same name.
	ExternalLabels map[string]string
	// QueueMaxSamples bounds each endpoint's queue.
	QueueMaxSamples int
	// MaxPerRequest is the most samples in one request.
	MaxPerRequest int
	// Protocol is Protocol1 (default) or Protocol2.
	Protocol string
	// FlushTimeout is how long Run may take, after its context ends, to
	// deliver the stale markers and what is still queued.
	FlushTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between retries, to which
	// a Retry-After is added.
	MinBackoff, MaxBackoff time.Duration
	UserAgent              string
	Registerer             prometheus.Registerer
	Logger                 *slog.Logger
}

// Pusher gathers and pushes; see Run.
type Pusher struct {
	o         Options
	snap      *snapshot
	lastT     int64
	endpoints []*endpoint
}

// endpoint is one remote-write URL with its queue and state.
type endpoint struct {
	url      string // redacted, for logs, labels and pages
	api      *remote.API
	msgType  remote.WriteMessageType
	protocol string
	q        *queue
	max      int
	logger   *slog.Logger
	// size of the last request body, set by the transport.
	size atomic.Int64

	sent, failed, retried, bytes prometheus.Counter
	dropped                      map[string]prometheus.Counter
	lastSuccess                  prometheus.Gauge

	mu     sync.Mutex
	status Status
}

// Status is an endpoint's state, for the leaf's status page.
type Status struct {
	// URL is redacted: a password in it is shown as xxxxx.
	URL      string
	Protocol string
	Queued   int
	QueueMax int
	Sent     uint64
	Failed   uint64
	// Dropped by reason.
	Dropped     map[string]uint64
	LastSuccess time.Time
	// LastError is the last failed attempt's error, at LastErrorAt; Failing
	// is true while no attempt has succeeded since.
	LastError   string
	LastErrorAt time.Time
	Failing     bool
}

// New checks the options and registers the pusher's metrics.
func New(o Options) (*Pusher, error) {
	if len(o.URLs) == 0 {
		return nil, errors.New("no remote-write URL")
	}
	if o.Gatherer == nil {
		return nil, errors.New("no gatherer")
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Interval < 100*time.Millisecond {
		return nil, fmt.Errorf("push interval %s: want at least 100ms", o.Interval)
	}
	if o.QueueMaxSamples == 0 {
		o.QueueMaxSamples = DefaultQueueMaxSamples
	}
	if o.QueueMaxSamples < 1 {
		return nil, fmt.Errorf("queue bound %d: want at least 1 sample", o.QueueMaxSamples)
	}
	if o.MaxPerRequest <= 0 {
		o.MaxPerRequest = DefaultMaxPerRequest
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = DefaultFlushTimeout
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	var msgType remote.WriteMessageType
	switch o.Protocol {
	case "", Protocol1:
		o.Protocol, msgType = Protocol1, remote.WriteV1MessageType
	case Protocol2:
		msgType = remote.WriteV2MessageType
	default:
		return nil, fmt.Errorf("remote write protocol %q: want %s or %s", o.Protocol, Protocol1, Protocol2)
	}
	external := make([]prompb.Label, 0, len(o.ExternalLabels))
	for k, v := range o.ExternalLabels {
		if !model.LegacyValidation.IsValidLabelName(k) || strings.HasPrefix(k, "__") {
			return nil, fmt.Errorf("external label %q: not a valid label name", k)
		}
		if !model.LabelValue(v).IsValid() {
			return nil, fmt.Errorf("external label %s: value %q is not valid UTF-8", k, v)
		}
		external = append(external, prompb.Label{Name: k, Value: v})
	}
	sort.Slice(external, func(i, j int) bool { return external[i].Name < external[j].Name })

	m := newMetrics(o.Registerer)
	p := &Pusher{o: o, snap: newSnapshot(external)}
	seen := map[string]bool{}
	for _, raw := range o.URLs {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("remote-write URL %q: %w", config.RedactURL(raw), err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("remote-write URL %q: want http:// or https:// and a host", config.RedactURL(raw))
		}
		// Two URLs that differ only in their password would share the
		// url label of their metrics.
		shown := config.RedactURL(raw)
		if seen[shown] {
			return nil, fmt.Errorf("remote-write URL %q given twice", shown)
		}
		seen[shown] = true
		e, err := newEndpoint(raw, u, msgType, &o, m)
		if err != nil {
			return nil, err
		}
		p.endpoints = append(p.endpoints, e)
	}
	return p, nil
}

func newEndpoint(raw string, u *url.URL, msgType remote.WriteMessageType, o *Options, m *metrics) (*endpoint, error) {
	shown := config.RedactURL(raw)
	e := &endpoint{url: shown, msgType: msgType, protocol: o.Protocol, q: newQueue(o.QueueMaxSamples), max: o.MaxPerRequest,
		logger: o.Logger.With("url", shown)}
	client := &http.Client{Timeout: DefaultTimeout}
	if o.Client != nil {
		c := *o.Client
		client = &c
		if client.Timeout == 0 {
			client.Timeout = DefaultTimeout
		}
	}
	base := client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	client.Transport = &transport{base: base, agent: o.UserAgent, size: &e.size}
	// WithAPIPath("") keeps the URL's own path: the user gives the full
	// endpoint, as in Prometheus' remote_write url.
	api, err := remote.NewAPI(u.String(), remote.WithAPIHTTPClient(client), remote.WithAPIPath(""),
		remote.WithAPIBackoff(remote.BackoffConfig{Min: o.MinBackoff, Max: o.MaxBackoff}))
	if err != nil {
		return nil, fmt.Errorf("remote-write URL %q: %w", shown, err)
	}
	e.api = api
	e.sent = m.sent.WithLabelValues(shown)
	e.failed = m.failed.WithLabelValues(shown)
	e.retried = m.retried.WithLabelValues(shown)
	e.bytes = m.bytes.WithLabelValues(shown)
	e.lastSuccess = m.lastSuccess.WithLabelValues(shown)
	e.dropped = map[string]prometheus.Counter{}
	for _, r := range DropReasons {
		e.dropped[r] = m.dropped.WithLabelValues(shown, r)
	}
	m.queued.add(shown, e.q.len)
	e.status = Status{URL: shown, Protocol: o.Protocol, QueueMax: o.QueueMaxSamples, Dropped: map[string]uint64{}}
	return e, nil
}

// transport sets the User-Agent and records the size of each request body.
type transport struct {
	base  http.RoundTripper
	agent string
	size  *atomic.Int64
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.size.Store(r.ContentLength)
	if t.agent != "" {
		r = r.Clone(r.Context())
		r.Header.Set("User-Agent", t.agent)
	}
	return t.base.RoundTrip(r)
}

// Run gathers at once and then every interval, queueing the samples for
// every endpoint, until ctx ends; then it queues a stale marker for every
// series and gives the endpoints up to the flush timeout to deliver what
// they hold. What is left is dropped and counted (reason shutdown).
func (p *Pusher) Run(ctx context.Context) {
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	draining := make(chan struct{})
	var wg sync.WaitGroup
	for _, e := range p.endpoints {
		wg.Go(func() { e.run(sendCtx, draining) })
	}
	p.gather(time.Now())
	ticker := time.NewTicker(p.o.Interval)
	defer ticker.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-ticker.C:
			p.gather(now)
		}
	}
	p.enqueue(p.snap.staleAll(p.timestamp(time.Now())))
	close(draining)
	flush := time.AfterFunc(p.o.FlushTimeout, cancelSend)
	wg.Wait()
	flush.Stop()
	for _, e := range p.endpoints {
		if n := len(e.q.take(e.q.len())); n > 0 {
			e.drop(ReasonShutdown, n)
		}
	}
}

// timestamp is now in milliseconds, always after the last one used: a
// receiver refuses a second sample at the same time.
func (p *Pusher) timestamp(now time.Time) int64 {
	t := max(now.UnixMilli(), p.lastT+1)
	p.lastT = t
	return t
}

func (p *Pusher) gather(now time.Time) {
	families, err := p.o.Gatherer.Gather()
	if err != nil {
		p.o.Logger.Warn("Gathering the metrics to push failed; pushing what was gathered", "err", err)
	}
	p.enqueue(p.snap.take(families, p.timestamp(now), err == nil))
}

func (p *Pusher) enqueue(samples []sample) {
	if len(samples) == 0 {
		return
	}
	for _, e := range p.endpoints {
		if n := e.q.push(samples); n > 0 {
			e.drop(ReasonQueueFull, n)
		}
	}
}

// Status returns the state of each endpoint, in the order of the URLs.
func (p *Pusher) Status() []Status {
	out := make([]Status, 0, len(p.endpoints))
	for _, e := range p.endpoints {
		e.mu.Lock()
		s := e.status
		s.Dropped = make(map[string]uint64, len(e.status.Dropped))
		for k, v := range e.status.Dropped {
			s.Dropped[k] = v
		}
		e.mu.Unlock()
		s.Queued = e.q.len()
		out = append(out, s)
	}
	return out
}

// run sends the queue's samples, oldest first, one request at a time,
// until draining is closed and the queue is empty, or ctx ends.
func (e *endpoint) run(ctx context.Context, draining <-chan struct{}) {
	for {
		batch := e.q.take(e.max)
		if len(batch) == 0 {
			select {
			case <-e.q.wake:
				continue
			case <-draining:
				if e.q.len() == 0 {
					return
				}
				continue
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			e.drop(ReasonShutdown, len(batch))
			return
		}
		e.send(ctx, batch)
	}
}

// send delivers one batch, retrying as the remote API does.
func (e *endpoint) send(ctx context.Context, batch []sample) {
	var msg any
	if e.msgType == remote.WriteV2MessageType {
		msg = requestV2(batch)
	} else {
		msg = requestV1(batch)
	}
	n := len(batch)
	_, err := e.api.Write(ctx, e.msgType, msg, remote.WithWriteRetryCallback(func(err error) {
		e.retried.Add(float64(n))
		e.fail(err, false)
	}))
	switch {
	case err == nil:
		now := time.Now()
		e.sent.Add(float64(n))
		e.bytes.Add(float64(e.size.Load()))
		e.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
		e.mu.Lock()
		if e.status.Failing {
			e.logger.Info("Remote write recovered", "samples", n)
		}
		e.status.Sent += uint64(n)
		e.status.LastSuccess, e.status.Failing = now, false
		e.mu.Unlock()
	case ctx.Err() != nil:
		e.drop(ReasonShutdown, n)
	default:
		// Not retryable (a 4xx other than 429): the receiver refused
		// these samples and would refuse them again.
		e.failed.Add(float64(n))
		e.fail(err, true)
		e.mu.Lock()
		e.status.Failed += uint64(n)
		e.mu.Unlock()
		e.logger.Error("Remote write refused the samples; they are not retried", "samples", n, "err", err)
	}
}

// maxErrorLength bounds the error text kept for the status page.
const maxErrorLength = 300

// fail records a failed attempt; the first of a run of failures is logged.
func (e *endpoint) fail(err error, final bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.status.Failing && !final {
		e.logger.Warn("Remote write failed; retrying with backoff", "err", err)
	}
	msg := err.Error()
	if len(msg) > maxErrorLength {
		// The receiver's body is in the error; keep the page short.
		msg = strings.ToValidUTF8(msg[:maxErrorLength], "") + "…"
	}
	e.status.LastError, e.status.LastErrorAt = msg, time.Now()
	e.status.Failing = true
}

func (e *endpoint) drop(reason string, n int) {
	e.dropped[reason].Add(float64(n))
	e.mu.Lock()
	e.status.Dropped[reason] += uint64(n)
	e.mu.Unlock()
}

// DefaultJob is the job label of pushed series unless --push.label sets
// one: the job name the mixin's leaf selector expects of a scrape.
const DefaultJob = "oxcross-leaf"

// seriesLabels are labels of the leaf's own series: an external label of
// the same name would never apply, so it is refused.
var seriesLabels = map[string]bool{"origin_id": true, "source_id": true, "result": true, "reason": true, "phase": true, "mode": true}

// ExternalLabels are the labels a leaf adds to every series it pushes, so
// that they match what Prometheus gets by scraping it through /sd/leaves:
// job="oxcross-leaf", the leaf's own labels (leafLabels, from
// --leaf.label), then the --push.label NAME=VALUE ones, which override
// both, and leaf_id, always the leaf's id.
func ExternalLabels(leafID string, leafLabels map[string]string, pushLabels []string) (map[string]string, error) {
	out := map[string]string{"job": DefaultJob}
	for k, v := range leafLabels {
		out[k] = v
	}
	for _, l := range pushLabels {
		k, v, ok := strings.Cut(l, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("--push.label %q: want NAME=VALUE", l)
		case k == "leaf_id":
			return nil, fmt.Errorf("--push.label %q: leaf_id is always the leaf's id (--leaf.id)", l)
		case seriesLabels[k]:
			return nil, fmt.Errorf("--push.label %q: %s is a label of the leaf's series, which would keep their own", l, k)
		case !model.LegacyValidation.IsValidLabelName(k) || strings.HasPrefix(k, "__"):
			return nil, fmt.Errorf("--push.label %q: %q is not a valid label name", l, k)
		case !model.LabelValue(v).IsValid():
			return nil, fmt.Errorf("--push.label %q: the value is not valid UTF-8", l)
		}
		out[k] = v
	}
	out["leaf_id"] = leafID
	return out, nil
}
