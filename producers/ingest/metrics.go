package ingest

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// statusCodes are the codes POST /v1/events answers with; their request
// counters exist from the start, so a rate over them is never missing.
var statusCodes = []int{202, 400, 401, 403, 405, 413, 415, 429, 503}

// metrics of one Server, registered in its own registry.
type metrics struct {
	reg *prometheus.Registry

	requests        *prometheus.CounterVec // by code
	byCode          map[int]prometheus.Counter
	events          *prometheus.CounterVec // by result
	accepted        prometheus.Counter
	rejected        prometheus.Counter
	forbidden       prometheus.Counter
	failed          prometheus.Counter
	requestSeconds  prometheus.Histogram
	produceSeconds  prometheus.Histogram
	requestBodySize prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "costpipe_ingest_requests_total",
		Help: "POST /v1/events requests answered, by HTTP status code.",
	}, []string{"code"})
	m.byCode = make(map[int]prometheus.Counter, len(statusCodes))
	for _, c := range statusCodes {
		m.byCode[c] = m.requests.WithLabelValues(strconv.Itoa(c))
	}
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "costpipe_ingest_events_total",
		Help: "Events received, by result: accepted (acknowledged by Kafka), rejected (invalid), " +
			"forbidden (tenant not allowed for the key), failed (valid, but Kafka did not acknowledge them in time).",
	}, []string{"result"})
	m.accepted = m.events.WithLabelValues("accepted")
	m.rejected = m.events.WithLabelValues("rejected")
	m.forbidden = m.events.WithLabelValues("forbidden")
	m.failed = m.events.WithLabelValues("failed")
	m.requestSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "costpipe_ingest_request_duration_seconds",
		Help:    "Time to answer POST /v1/events, from headers read to answer written.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms to 16 s
	})
	m.produceSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "costpipe_ingest_produce_duration_seconds",
		Help:    "Time from producing a request's events to Kafka acknowledging all of them (or failing).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	m.requestBodySize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "costpipe_ingest_request_body_bytes",
		Help:    "Size of POST /v1/events bodies after decompression.",
		Buckets: prometheus.ExponentialBuckets(256, 4, 10), // 256 B to 64 MiB
	})
	m.reg.MustRegister(m.requests, m.events, m.requestSeconds, m.produceSeconds,
		m.requestBodySize,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// request counts one answer with code.
func (m *metrics) request(code int) {
	c, ok := m.byCode[code]
	if !ok {
		c = m.requests.WithLabelValues(strconv.Itoa(code))
	}
	c.Inc()
}
