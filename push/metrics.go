package push

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the pusher's own, oxcross_leaf_push_*, labelled by the
// endpoint's redacted URL.
type metrics struct {
	sent, failed, retried, bytes *prometheus.CounterVec
	dropped                      *prometheus.CounterVec
	lastSuccess                  *prometheus.GaugeVec
	queued                       *queueCollector
}

func newMetrics(r prometheus.Registerer) *metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "oxcross_leaf_push_" + name, Help: help}, append([]string{"url"}, labels...))
	}
	m := &metrics{
		sent:    counter("samples_sent_total", "Samples (a native histogram counts as one) the remote-write endpoint accepted."),
		failed:  counter("samples_failed_total", "Samples the remote-write endpoint refused with a status that is not retried (4xx other than 429)."),
		retried: counter("samples_retried_total", "Samples in requests that failed and were retried (5xx, 429, network errors), once per retry."),
		dropped: counter("samples_dropped_total", "Samples dropped before delivery, by reason: queue_full (the oldest, when the queue held --push.queue-max-samples), shutdown (undelivered when the leaf stopped).", "reason"),
		bytes:   counter("sent_bytes_total", "Bytes of the (snappy-compressed) bodies of the requests the remote-write endpoint accepted."),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "oxcross_leaf_push_last_success_timestamp_seconds",
			Help: "When the remote-write endpoint last accepted a request, in seconds since the epoch; 0 before the first.",
		}, []string{"url"}),
		queued: &queueCollector{desc: prometheus.NewDesc("oxcross_leaf_push_queue_samples",
			"Samples queued for the remote-write endpoint, not counting the request in flight.", []string{"url"}, nil)},
	}
	r.MustRegister(m.sent, m.failed, m.retried, m.dropped, m.bytes, m.lastSuccess, m.queued)
	return m
}

// queueCollector reads each queue's length at scrape time.
type queueCollector struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	urls []string
	lens []func() int
}

func (c *queueCollector) add(url string, length func() int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.urls = append(c.urls, url)
	c.lens = append(c.lens, length)
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, u := range c.urls {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(c.lens[i]()), u)
	}
}
