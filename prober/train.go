package prober

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/oxcross/oxcross/config"
)

// Train bounds and defaults: a probe of the icmp or tcp kind sends a train
// of packets (SmokePing's pings) and reports them together.
const (
	// DefaultPackets is the train length of a module that sets none: one
	// packet, as before trains existed.
	DefaultPackets = 1
	// MaxPackets bounds packets.
	MaxPackets = 1000
	// DefaultPacketInterval is the time between the packets of a train.
	DefaultPacketInterval = 100 * time.Millisecond
	// MinPacketInterval and MaxPacketInterval bound packet_interval.
	MinPacketInterval = time.Millisecond
	MaxPacketInterval = time.Minute
)

// TrainSettings are the train settings of the icmp and tcp kinds, inline
// in their settings. The zero value is the default: one packet.
type TrainSettings struct {
	// Packets is how many packets a probe sends; 0 means DefaultPackets.
	Packets int `yaml:"packets,omitempty" json:"packets,omitempty"`
	// PacketInterval is the time between the start of two packets; 0
	// means DefaultPacketInterval.
	PacketInterval Duration `yaml:"packet_interval,omitempty" json:"packet_interval,omitempty"`
}

// packets returns the train length, defaults applied.
func (s TrainSettings) packets() int {
	if s.Packets == 0 {
		return DefaultPackets
	}
	return s.Packets
}

// interval returns the packet interval, defaults applied.
func (s TrainSettings) interval() time.Duration {
	if s.PacketInterval == 0 {
		return DefaultPacketInterval
	}
	return time.Duration(s.PacketInterval)
}

// validate reports every problem of the train settings.
func (s TrainSettings) validate() error {
	var errs []error
	if s.Packets < 0 || s.Packets > MaxPackets {
		errs = append(errs, fmt.Errorf("packets: %d is not between 1 and %d", s.Packets, MaxPackets))
	}
	if d := time.Duration(s.PacketInterval); d != 0 && (d < MinPacketInterval || d > MaxPacketInterval) {
		errs = append(errs, fmt.Errorf("packet_interval: %s is not between %s and %s", d, MinPacketInterval, MaxPacketInterval))
	}
	return errors.Join(errs...)
}

// checkTimeout refuses a timeout that the train does not fit in: the last
// packet must leave before it, with at least one interval to spare for its
// answer.
func (s TrainSettings) checkTimeout(timeout time.Duration) error {
	if s.packets() == 1 {
		return nil
	}
	if need := time.Duration(s.packets()) * s.interval(); need > timeout {
		return fmt.Errorf("packets × packet_interval (%d × %s = %s) does not fit in the timeout %s", s.packets(), s.interval(), need, timeout)
	}
	return nil
}

// Train is what a probe's packet train measured.
type Train struct {
	// Sent and Received count the train's packets and the answers to them.
	Sent, Received int
	// RTTs are the round-trip times of the answered packets, in the order
	// the packets were sent.
	RTTs []time.Duration
}

// Loss is the ratio of packets without answer, 0 to 1; 0 for an empty
// train.
func (t *Train) Loss() float64 {
	if t.Sent == 0 {
		return 0
	}
	return float64(t.Sent-t.Received) / float64(t.Sent)
}

// Stats returns the median, fastest and slowest round trip of the answered
// packets; ok is false when none was answered. The spread the leaf exports
// is slowest − fastest.
func (t *Train) Stats() (median, lo, hi time.Duration, ok bool) {
	if len(t.RTTs) == 0 {
		return 0, 0, 0, false
	}
	s := slices.Clone(t.RTTs)
	slices.Sort(s)
	n := len(s)
	median = s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return median, s[0], s[n-1], true
}

// Duration is a settings duration: whole or fractional seconds ("2",
// "0.5") or a Go duration ("100ms"), as the config's durations; it is
// written as a Go duration.
type Duration time.Duration

// UnmarshalYAML reads seconds or a Go duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return fmt.Errorf("want seconds or a duration like 100ms, got %q", n.Value)
	}
	v, err := config.ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes a Go duration.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalText writes a Go duration (JSON uses it).
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads seconds or a Go duration (JSON uses it).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := config.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
