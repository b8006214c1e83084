package metrics

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootwarden/rootwarden/internal/bus"
)

// consumers are rootwarden's durable consumers, by stream.
var consumers = [][2]string{
	{bus.StreamScan, bus.ConsumerDetectorScan},
	{bus.StreamFindings, bus.ConsumerRemediatorFind},
	{bus.StreamActions, bus.ConsumerRemediatorAction},
	{bus.StreamCases, bus.ConsumerNotifierCases},
	{bus.StreamCases, bus.ConsumerNotifierUrgent},
}

var (
	lagPending = prometheus.NewDesc("rootwarden_consumer_pending_messages",
		"Messages of the stream the durable consumer has not yet been delivered.", []string{"stream", "consumer"}, nil)
	lagAckPending = prometheus.NewDesc("rootwarden_consumer_ack_pending_messages",
		"Messages delivered to the durable consumer and not yet acknowledged.", []string{"stream", "consumer"}, nil)
)

// ConsumerLag asks JetStream at scrape time how far each of rootwarden's durable
// consumers is behind; a consumer that does not exist (yet) is left out. Each question
// has its own deadline, so a slow server delays a scrape by at most 4×timeout.
type ConsumerLag struct {
	js      jetstream.JetStream
	timeout time.Duration
}

// NewConsumerLag builds the collector; register it with Register's registry.
func NewConsumerLag(js jetstream.JetStream, timeout time.Duration) *ConsumerLag {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &ConsumerLag{js: js, timeout: timeout}
}

// Describe implements prometheus.Collector.
func (l *ConsumerLag) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagPending
	ch <- lagAckPending
}

// Collect implements prometheus.Collector.
func (l *ConsumerLag) Collect(ch chan<- prometheus.Metric) {
	for _, sc := range consumers {
		ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
		c, err := l.js.Consumer(ctx, sc[0], sc[1])
		var info *jetstream.ConsumerInfo
		if err == nil {
			info, err = c.Info(ctx)
		}
		cancel()
		if err != nil || info == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(lagPending, prometheus.GaugeValue, float64(info.NumPending), sc[0], sc[1])
		ch <- prometheus.MustNewConstMetric(lagAckPending, prometheus.GaugeValue, float64(info.NumAckPending), sc[0], sc[1])
	}
}
