package consumers

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	recordsIn    *prometheus.CounterVec
	recordsJSON  prometheus.Counter // recordsIn children cached off the hot path
	recordsArrow prometheus.Counter
	eventsIn     prometheus.Counter
	duplicates   prometheus.Counter
	dlq          *prometheus.CounterVec
	lag          *prometheus.GaugeVec
	owned        prometheus.Gauge
	abandoned    prometheus.Counter
	dedupeEvict  prometheus.Counter
	dedupeIDs    prometheus.Gauge
	windows      prometheus.Gauge
	commitErrors prometheus.Counter
	dlqErrors    prometheus.Counter
	dlqSpooled   prometheus.Counter
	warmRecords  prometheus.Counter
	warmErrors   prometheus.Counter
	fenced       prometheus.Counter
	lost         prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		recordsIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "costpipe_records_in_total",
			Help: "Kafka records consumed, by content type."}, []string{"content_type"}),
		eventsIn: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_events_in_total",
			Help: "Valid, deduplicated events handed to the pipeline."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_duplicates_total",
			Help: "Events dropped as duplicates of an event_id seen within the dedupe window."}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "costpipe_dlq_records_total",
			Help: "Records sent to the dead-letter topic, by reason."}, []string{"reason"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "costpipe_consumer_lag_records",
			Help: "Records between the last processed offset and the partition's high watermark."}, []string{"partition"}),
		owned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "costpipe_partitions_owned",
			Help: "Partitions of the events topic this instance owns."}),
		abandoned: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_flushes_abandoned_total",
			Help: "Flushes given up (rebalance waiting, ClickHouse down); their records are replayed from Kafka."}),
		dedupeEvict: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_dedupe_evicted_total",
			Help: "Event ids forgotten before the dedupe window ended because --dedupe-max-ids was reached."}),
		dedupeIDs: prometheus.NewGauge(prometheus.GaugeOpts{Name: "costpipe_dedupe_ids",
			Help: "Event ids remembered for deduplication, all owned partitions."}),
		windows: prometheus.NewGauge(prometheus.GaugeOpts{Name: "costpipe_windows",
			Help: "Aggregation windows (key-minutes) held in memory after the last poll."}),
		dlqErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_dlq_produce_errors_total",
			Help: "DLQ records Kafka did not take (each is retried before offsets move)."}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_commit_errors_total",
			Help: "Failed Kafka offset commits (landed data stays exact through the landing marks)."}),
		dlqSpooled: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_dlq_spooled_total",
			Help: "DLQ records Kafka refused for good, written to the local --dlq-spool directory instead."}),
		warmRecords: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_dedupe_warm_records_total",
			Help: "Records re-read after an assignment only to warm the dedupe window."}),
		warmErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_dedupe_warm_errors_total",
			Help: "Assignments whose dedupe window could not be warmed (Kafka did not answer where to start)."}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_fenced_total",
			Help: "Times a commit showed this instance was no longer in the group's generation; it stopped landing and rejoined."}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_partitions_lost_total",
			Help: "Times partitions were lost (session expired) and their unlanded state dropped for replay."}),
	}
	m.recordsJSON = m.recordsIn.WithLabelValues("application/json")
	m.recordsArrow = m.recordsIn.WithLabelValues("application/vnd.apache.arrow.stream")
	if reg != nil {
		reg.MustRegister(m.recordsIn, m.eventsIn, m.duplicates, m.dlq, m.lag, m.owned, m.abandoned, m.commitErrors, m.dedupeEvict, m.dedupeIDs, m.windows, m.dlqErrors,
			m.dlqSpooled, m.warmRecords, m.warmErrors, m.fenced, m.lost)
	}
	return m
}

func (m *metrics) record(contentType string) {
	switch contentType {
	case "application/json":
		m.recordsJSON.Inc()
	case "application/vnd.apache.arrow.stream":
		m.recordsArrow.Inc()
	default:
		m.recordsIn.WithLabelValues("other").Inc() // bounded: unknown types share one label
	}
}
