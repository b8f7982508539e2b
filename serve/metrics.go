package serve

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, in a registry of its own.
// Routes are a fixed set (the mux patterns, "other" for the rest), so the
// label sets stay bounded whatever paths clients send.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
	cache    *prometheus.CounterVec
}

// newMetrics makes the metrics; summaryFallbacks reads the Querier's count
// of queries the per-model summaries could not answer.
func newMetrics(summaryFallbacks func() uint64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "costpipe_serve_requests_total",
			Help: "HTTP requests answered, by route and status code."}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "costpipe_serve_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route.",
			Buckets: []float64{.005, .01, .025, .05, .1, .15, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"route"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "costpipe_serve_requests_in_flight",
			Help: "HTTP requests being answered."}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "costpipe_serve_cache_total",
			Help: "API answers by how they were obtained: hit (cached), shared (computed by a concurrent identical request), miss (computed)."}, []string{"result"}),
	}
	fallbacks := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "costpipe_summary_fallbacks_total",
		Help: "Queries the per-model summaries could have answered that read the rollups instead, because the two disagreed or the summaries could not be read (docs/operations.md, \"Per-model summaries\")."},
		func() float64 { return float64(summaryFallbacks()) })
	m.reg.MustRegister(m.requests, m.duration, m.inflight, m.cache, fallbacks,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the registry.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// statusRecorder remembers the status code written.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// Flush sends what was written so far (a batch streams its answers line by
// line); without it the recorder hid the connection's http.Flusher.
func (r *statusRecorder) Flush() {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap is the ResponseWriter underneath, for http.ResponseController.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// instrument counts and times h's requests under route.
func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.metrics.inflight.Inc()
		rec := &statusRecorder{ResponseWriter: rw}
		defer func() {
			s.metrics.inflight.Dec()
			if rec.code == 0 {
				rec.code = http.StatusOK
			}
			s.metrics.requests.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
			s.metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}()
		h.ServeHTTP(rec, r)
	})
}
