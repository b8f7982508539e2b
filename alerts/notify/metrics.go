package notify

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the dispatcher's costpipe_alerts_* series.
type metrics struct {
	notifications *prometheus.CounterVec
	drops         *prometheus.CounterVec
	depth         *prometheus.GaugeVec
	seconds       *prometheus.HistogramVec
}

// workerMetrics are one receiver's children, resolved once.
type workerMetrics struct {
	delivered, retried, dead, deferred, released, dropped prometheus.Counter
	drops                                                 prometheus.Counter
	depth                                                 prometheus.Gauge
	seconds                                               prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "costpipe_alerts_notifications_total",
			Help: "Alert notifications by receiver and result: delivered, retried (one per failed attempt that is retried), dead (retries exhausted or permanent error), deferred (retries exhausted before the notification's retry limit: offered again later), released (undelivered when the dispatcher stopped or the sender's deadline came: the next run or another replica delivers it), dropped (queue full or dispatcher closed)."},
			[]string{"receiver", "result"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "costpipe_alerts_queue_drops_total",
			Help: "Alert notifications not queued because the receiver's queue was full or the dispatcher closed."},
			[]string{"receiver"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "costpipe_alerts_queue_depth",
			Help: "Alert notifications waiting in the receiver's queue (not counting the one being delivered)."},
			[]string{"receiver"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "costpipe_alerts_delivery_seconds",
			Help:    "Duration of one delivery attempt, by receiver.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"receiver"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.notifications, m.drops, m.depth, m.seconds} {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if errors.As(err, &are) {
					return nil, fmt.Errorf("cannot register metrics: %w (one Dispatcher per registry)", err)
				}
				return nil, fmt.Errorf("cannot register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// forReceiver creates the receiver's series, so each shows 0 before its
// first event.
func (m *metrics) forReceiver(name string) workerMetrics {
	return workerMetrics{
		delivered: m.notifications.WithLabelValues(name, "delivered"),
		retried:   m.notifications.WithLabelValues(name, "retried"),
		dead:      m.notifications.WithLabelValues(name, "dead"),
		deferred:  m.notifications.WithLabelValues(name, "deferred"),
		released:  m.notifications.WithLabelValues(name, "released"),
		dropped:   m.notifications.WithLabelValues(name, "dropped"),
		drops:     m.drops.WithLabelValues(name),
		depth:     m.depth.WithLabelValues(name),
		seconds:   m.seconds.WithLabelValues(name),
	}
}
