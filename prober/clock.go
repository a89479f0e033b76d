package prober

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LeafClock is what the kernel says of the leaf's own clock (adjtimex on
// Linux): whether an NTP daemon (chrony, systemd-timesyncd, ntpd) keeps it
// synchronized, and the daemon's error estimates. Without a daemon the
// kernel reports it unsynchronized, with a maximum error of 16 s.
type LeafClock struct {
	// Synchronized: the kernel's clock state is not TIME_ERROR and
	// STA_UNSYNC is not set.
	Synchronized bool
	// MaxError is the kernel's maxerror: the most the clock may be off.
	MaxError time.Duration
	// EstimatedError is the kernel's esterror: its estimate of the error.
	EstimatedError time.Duration
}

// ReadLeafClock reads the leaf's clock's state from the kernel, read-only
// and unprivileged; false where it cannot (other systems than Linux, or
// when adjtimex fails).
func ReadLeafClock() (LeafClock, bool) { return readLeafClock() }

// ClockCollector exports the leaf's clock's state, read at each scrape:
// oxcross_leaf_clock_synchronized, oxcross_leaf_clock_max_error_seconds and
// oxcross_leaf_clock_estimated_error_seconds. Where the state cannot be
// read it exports nothing.
type ClockCollector struct {
	read                   func() (LeafClock, bool)
	synced, maxErr, estErr *prometheus.Desc
}

// NewClockCollector returns the collector of the leaf's clock.
func NewClockCollector() *ClockCollector {
	return &ClockCollector{
		read: ReadLeafClock,
		synced: prometheus.NewDesc("oxcross_leaf_clock_synchronized",
			"1 if the kernel considers the leaf's clock synchronized (adjtimex: not TIME_ERROR, STA_UNSYNC clear), which takes an NTP daemon such as chrony or systemd-timesyncd; 0 otherwise.", nil, nil),
		maxErr: prometheus.NewDesc("oxcross_leaf_clock_max_error_seconds",
			"The kernel's maximum error of the leaf's clock (adjtimex maxerror), in seconds, as the NTP daemon sets it; 16 without one.", nil, nil),
		estErr: prometheus.NewDesc("oxcross_leaf_clock_estimated_error_seconds",
			"The kernel's estimated error of the leaf's clock (adjtimex esterror), in seconds, as the NTP daemon sets it.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *ClockCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.synced
	ch <- c.maxErr
	ch <- c.estErr
}

// Collect implements prometheus.Collector.
func (c *ClockCollector) Collect(ch chan<- prometheus.Metric) {
	lc, ok := c.read()
	if !ok {
		return
	}
	synced := 0.0
	if lc.Synchronized {
		synced = 1
	}
	ch <- prometheus.MustNewConstMetric(c.synced, prometheus.GaugeValue, synced)
	ch <- prometheus.MustNewConstMetric(c.maxErr, prometheus.GaugeValue, lc.MaxError.Seconds())
	ch <- prometheus.MustNewConstMetric(c.estErr, prometheus.GaugeValue, lc.EstimatedError.Seconds())
}
