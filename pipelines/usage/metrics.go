package usage

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	flushes      prometheus.Counter
	flushRows    prometheus.Histogram
	flushSeconds prometheus.Histogram
	chErrors     prometheus.Counter
	skipped      prometheus.Counter
	// landedAfterError counts inserts that reported an error but had landed
	// (found by the check before a retry).
	landedAfterError prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		flushes: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_flushes_total",
			Help: "Flushes that landed every window in ClickHouse."}),
		flushRows: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "costpipe_flush_rows",
			Help: "Rollup rows landed per flush (all tables).", Buckets: prometheus.ExponentialBuckets(1, 4, 10)}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "costpipe_flush_duration_seconds",
			Help: "Time to land a flush, retries included.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		chErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_clickhouse_errors_total",
			Help: "Failed ClickHouse inserts and landing-mark reads (each is checked, then retried)."}),
		landedAfterError: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_inserts_landed_after_error_total",
			Help: "Inserts that returned an error but had landed, found by the check before a retry (not inserted again)."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_records_already_landed_total",
			Help: "Events skipped on replay because every rollup table had landed them."}),
	}
	if reg != nil {
		reg.MustRegister(m.flushes, m.flushRows, m.flushSeconds, m.chErrors, m.skipped, m.landedAfterError)
	}
	return m
}
