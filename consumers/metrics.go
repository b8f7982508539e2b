package consumers

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	recordsIn    *prometheus.CounterVec
	recordsJSON  prometheus.Counter // recordsIn children cached off the hot path
	recordsArrow prometheus.Counter
	eventsIn     prometheus.Counter
	duplicates   prometheus.Counter
	dlq          *prometheus.CounterVec
	lag          *prometheus.GaugeVec
	assigned     prometheus.Gauge
	owned        prometheus.Gauge // deprecated name of assigned
	abandoned    prometheus.Counter
	dedupeEvict  prometheus.Counter
	dedupeIDs    prometheus.Gauge
	windows      prometheus.Gauge
	commitErrors prometheus.Counter
	dlqErrors    prometheus.Counter
	dlqSpooled   prometheus.Counter
	spoolBytes   prometheus.GaugeFunc
	warmRecords  prometheus.Counter
	warmErrors   prometheus.Counter
	fenced       prometheus.Counter
	lost         prometheus.Counter
	marksAhead   prometheus.Counter

	sessionErrors   prometheus.Counter
	groupLag        *prometheus.GaugeVec
	groupLagTotal   prometheus.Gauge
	groupLagErrors  prometheus.Counter
	stalled         prometheus.Gauge
	stallSeconds    prometheus.Gauge
	groupLagMu      sync.Mutex
	groupLagLabeled map[int32]bool // partitions with a groupLag series
}

// newMetrics creates the consumer's metrics; c provides the gauges computed
// when scraped (membership ages, readiness).
func newMetrics(reg prometheus.Registerer, c *Consumer) *metrics {
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
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "costpipe_assigned_partitions",
			Help: "Partitions of the events topic assigned to this instance."}),
		owned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "costpipe_partitions_owned",
			Help: "Deprecated: the same as costpipe_assigned_partitions, kept for existing dashboards."}),
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
		spoolBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "costpipe_dlq_spool_bytes",
			Help: "Bytes of the files in the --dlq-spool directory (DLQ records Kafka refused, to re-produce), read at each scrape: 0 once an operator has moved them away."},
			func() float64 {
				n, err := c.spool.usage()
				if err != nil {
					return 0
				}
				return float64(n)
			}),
		warmRecords: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_dedupe_warm_records_total",
			Help: "Records re-read after an assignment only to warm the dedupe window."}),
		warmErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_dedupe_warm_errors_total",
			Help: "Assignments whose dedupe window could not be warmed (Kafka did not answer where to start)."}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_fenced_total",
			Help: "Times a commit showed this instance was no longer in the group's generation; it stopped landing and rejoined."}),
		marksAhead: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_landing_marks_ahead_total",
			Help: "Assigned partitions whose landing marks in ClickHouse reach past the end of their log (the topic was recreated or truncated): their records up to the mark are skipped."}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_partitions_lost_total",
			Help: "Times partitions were lost (session expired) and their unlanded state dropped for replay."}),
		sessionErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_group_session_errors_total",
			Help: "Failed joins or syncs of the consumer group (franz-go rejoins after a backoff)."}),
		groupLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "costpipe_group_lag_records",
			Help: "Records between the group's committed offset (or the log start) and the log end, per partition, whoever owns it; refreshed every --group-lag-interval by every instance."}, []string{"partition"}),
		groupLagTotal: prometheus.NewGauge(prometheus.GaugeOpts{Name: "costpipe_group_topic_lag_records",
			Help: "costpipe_group_lag_records summed over the topic's partitions."}),
		groupLagErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_group_lag_errors_total",
			Help: "Refreshes of the group lag that failed (Kafka did not answer)."}),
		stalled: prometheus.NewGauge(prometheus.GaugeOpts{Name: "costpipe_group_stalled_partitions",
			Help: "Partitions that lag while their committed offset has not moved for --stall-timeout."}),
		stallSeconds: prometheus.NewGauge(prometheus.GaugeOpts{Name: "costpipe_group_stall_seconds",
			Help: "The longest time, at the last refresh, that a lagging partition's committed offset has not moved (0: every partition is caught up or moving)."}),
		groupLagLabeled: map[int32]bool{},
	}
	m.recordsJSON = m.recordsIn.WithLabelValues("application/json")
	m.recordsArrow = m.recordsIn.WithLabelValues("application/vnd.apache.arrow.stream")
	if reg != nil {
		reg.MustRegister(m.recordsIn, m.eventsIn, m.duplicates, m.dlq, m.lag, m.assigned, m.owned, m.abandoned, m.commitErrors, m.dedupeEvict, m.dedupeIDs, m.windows, m.dlqErrors,
			m.dlqSpooled, m.spoolBytes, m.warmRecords, m.warmErrors, m.fenced, m.lost, m.marksAhead,
			m.sessionErrors, m.groupLag, m.groupLagTotal, m.groupLagErrors, m.stalled, m.stallSeconds,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "costpipe_seconds_since_assignment",
				Help: "Seconds since this instance's last successful join of the consumer group (an assignment, maybe of no partitions); since the start before the first."},
				func() float64 { return c.health.sinceJoin(c.opts.Now()).Seconds() }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "costpipe_unassigned_seconds",
				Help: "Seconds this instance has been without an assignment (a rebalance in progress, or failing to join); 0 while it has one."},
				func() float64 { return c.health.unassignedFor(c.opts.Now()).Seconds() }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "costpipe_group_lag_age_seconds",
				Help: "Seconds since the group lag was last read successfully (since the start before the first)."},
				func() float64 { return c.health.lagAge(c.opts.Now()).Seconds() }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "costpipe_last_flush_success_timestamp_seconds",
				Help: "Unix time of the last flush that landed what it held (nothing, when idle) and committed; 0 before the first. Alert on time() minus it: landing that fails, or a flush loop that is stuck."},
				func() float64 {
					if ns := c.lastLanded.Load(); ns != 0 {
						return float64(ns) / 1e9
					}
					return 0
				}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "costpipe_ready",
				Help: "1 when /readyz answers 200, else 0."},
				func() float64 {
					if c.Ready() == nil {
						return 1
					}
					return 0
				}),
		)
	}
	return m
}

// setAssigned publishes the number of assigned partitions under both names.
func (m *metrics) setAssigned(n int) {
	m.assigned.Set(float64(n))
	m.owned.Set(float64(n))
}

// setGroupLag publishes one refresh of the group lag; series of partitions
// that are gone are deleted.
func (m *metrics) setGroupLag(s lagSnapshot) {
	m.groupLagMu.Lock()
	defer m.groupLagMu.Unlock()
	for p := range m.groupLagLabeled {
		if _, ok := s.lag[p]; !ok {
			m.groupLag.DeleteLabelValues(strconv.Itoa(int(p)))
			delete(m.groupLagLabeled, p)
		}
	}
	for p, l := range s.lag {
		m.groupLag.WithLabelValues(strconv.Itoa(int(p))).Set(float64(l))
		m.groupLagLabeled[p] = true
	}
	m.groupLagTotal.Set(float64(s.total))
	m.stalled.Set(float64(len(s.stalled)))
	m.stallSeconds.Set(s.longest.Seconds())
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
