package ingest

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/costpipe/costpipe/schemas"
)

// This file is POST /v1/traces: OTLP/HTTP trace exports (protobuf or JSON,
// optionally gzip), whose spans with OpenTelemetry GenAI usage become
// costpipe events on the same Kafka path as POST /v1/events. The mapping of
// one span is otlp_map.go; the HTTP contract is docs/otlp.md.

// otlpEncoding is the encoding of an OTLP/HTTP request and of its answer.
type otlpEncoding uint8

const (
	otlpProto otlpEncoding = iota // application/x-protobuf
	otlpJSON                      // application/json (the OTLP JSON mapping)
)

// contentType is the Content-Type of answers in e.
func (e otlpEncoding) contentType() string {
	if e == otlpJSON {
		return "application/json"
	}
	return "application/x-protobuf"
}

// parseOTLPContentType maps a Content-Type to an encoding. It returns
// otlpJSON with the error for anything else, so that the 415 is readable.
func parseOTLPContentType(ct string) (otlpEncoding, error) {
	if ct == "" {
		return otlpJSON, errors.New("cannot read an OTLP body without Content-Type: want application/x-protobuf or application/json")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return otlpJSON, errors.New("cannot parse Content-Type " + quote(ct) + ": " + err.Error())
	}
	switch mt {
	case "application/x-protobuf", "application/protobuf":
		return otlpProto, nil
	case "application/json":
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
			return otlpJSON, errors.New("cannot read charset " + quote(cs) + ": bodies must be UTF-8")
		}
		return otlpJSON, nil
	}
	return otlpJSON, errors.New("cannot read Content-Type " + quote(mt) + " on /v1/traces: want application/x-protobuf or application/json")
}

// maxListedSpanErrors bounds the reasons quoted in a partial success
// message; the count of rejected spans is always complete.
const maxListedSpanErrors = 10

// otlpCodes are the codes POST /v1/traces answers with; their counters
// exist from the start.
var otlpCodes = []int{200, 400, 401, 403, 405, 413, 415, 429, 503}

// otlpState is the Server's OTLP receiver: its options, metrics and
// mappers. It is safe for concurrent use.
type otlpState struct {
	tenantAttr string
	skipOps    []string
	mappers    sync.Pool // of *otlpMapper

	requests        *prometheus.CounterVec
	byCode          map[int]prometheus.Counter
	accepted        prometheus.Counter
	rejected        prometheus.Counter
	forbidden       prometheus.Counter
	failed          prometheus.Counter
	noUsage         prometheus.Counter
	skipped         prometheus.Counter
	fieldsDropped   [len(droppedFieldNames)]prometheus.Counter // by drop bit
	requestSeconds  prometheus.Histogram
	requestBodySize prometheus.Histogram
}

// newOTLPState builds the receiver and registers its metrics in reg.
func newOTLPState(opts *Options, reg *prometheus.Registry) *otlpState {
	o := &otlpState{tenantAttr: opts.OTLPTenantAttribute, skipOps: opts.OTLPSkipOperations}
	o.mappers.New = func() any { return newOTLPMapper(o.tenantAttr, o.skipOps) }
	o.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "costpipe_ingest_otlp_requests_total",
		Help: "POST /v1/traces requests answered, by HTTP status code.",
	}, []string{"code"})
	o.byCode = make(map[int]prometheus.Counter, len(otlpCodes))
	for _, c := range otlpCodes {
		o.byCode[c] = o.requests.WithLabelValues(strconv.Itoa(c))
	}
	spans := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "costpipe_ingest_otlp_spans_total",
		Help: "Spans received on /v1/traces, by result: accepted (an event Kafka acknowledged), rejected (a gen_ai span " +
			"that cannot be an event), forbidden (tenant not allowed for the key), failed (Kafka did not acknowledge in time), " +
			"no_usage (no gen_ai usage attribute: ignored), skipped (an aggregate operation such as invoke_agent: ignored).",
	}, []string{"result"})
	o.accepted = spans.WithLabelValues("accepted")
	o.rejected = spans.WithLabelValues("rejected")
	o.forbidden = spans.WithLabelValues("forbidden")
	o.failed = spans.WithLabelValues("failed")
	o.noUsage = spans.WithLabelValues("no_usage")
	o.skipped = spans.WithLabelValues("skipped")
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "costpipe_ingest_otlp_fields_dropped_total",
		Help: "Optional fields left out of the events of /v1/traces because their value breaks the event contract " +
			"(the event is accepted without them), by event field: application (resource service.name), region " +
			"(resource cloud.region), operation, error_type (error.type) and ttft_ms.",
	}, []string{"field"})
	for i, f := range droppedFieldNames {
		o.fieldsDropped[i] = dropped.WithLabelValues(f)
	}
	o.requestSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "costpipe_ingest_otlp_request_duration_seconds",
		Help:    "Time to answer POST /v1/traces, from headers read to answer written.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	o.requestBodySize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "costpipe_ingest_otlp_request_body_bytes",
		Help:    "Size of POST /v1/traces bodies after decompression.",
		Buckets: prometheus.ExponentialBuckets(256, 4, 10),
	})
	reg.MustRegister(o.requests, spans, dropped, o.requestSeconds, o.requestBodySize)
	return o
}

// serveTraces is POST /v1/traces.
func (s *Server) serveTraces(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := s.traces(w, r)
	c, ok := s.otlp.byCode[code]
	if !ok {
		c = s.otlp.requests.WithLabelValues(strconv.Itoa(code))
	}
	c.Inc()
	s.otlp.requestSeconds.Observe(time.Since(start).Seconds())
}

// traceCounts are the outcomes of the spans of one request.
type traceCounts struct {
	spans, noUsage, skipped, rejected, forbidden int
	reasons                                      []string                    // at most maxListedSpanErrors, of rejected spans not forbidden
	forbiddenReasons                             []string                    // the same, of forbidden spans
	dropped                                      [len(droppedFieldNames)]int // optional fields left out of events, by drop bit
}

// reject counts a rejected span; forbidden tells that its resource names a
// tenant the key may not write.
func (c *traceCounts) reject(reason string, forbidden bool) {
	c.rejected++
	if forbidden {
		c.forbidden++
		if len(c.forbiddenReasons) < maxListedSpanErrors {
			c.forbiddenReasons = append(c.forbiddenReasons, reason)
		}
	} else if len(c.reasons) < maxListedSpanErrors {
		c.reasons = append(c.reasons, reason)
	}
}

// drop counts the optional fields (drop bits) an event goes without.
func (c *traceCounts) drop(bits uint8) {
	for i := range c.dropped {
		if bits&(1<<i) != 0 {
			c.dropped[i]++
		}
	}
}

// rejectedReasons are the reasons a partial success lists: the forbidden
// spans' first, so that the message names the tenant, then the others',
// at most maxListedSpanErrors in all.
func (c *traceCounts) rejectedReasons() []string {
	if len(c.forbiddenReasons) == 0 {
		return c.reasons
	}
	r := append(c.forbiddenReasons[:len(c.forbiddenReasons):len(c.forbiddenReasons)], c.reasons...)
	return r[:min(len(r), maxListedSpanErrors)]
}

// summary is the partial success or 403 message: how many spans and the
// first reasons.
func (c *traceCounts) summary(what string, n int, reasons []string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %d of %d span(s)", what, n, c.spans)
	for i, r := range reasons {
		if i == 0 {
			sb.WriteString(": ")
		} else {
			sb.WriteString("; ")
		}
		sb.WriteString(r)
	}
	if n > len(reasons) {
		fmt.Fprintf(&sb, "; and %d more", n-len(reasons))
	}
	return sb.String()
}

// traces handles one POST /v1/traces and returns the status it answered.
func (s *Server) traces(w http.ResponseWriter, r *http.Request) int {
	enc, encErr := parseOTLPContentType(r.Header.Get("Content-Type"))
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return s.refuse(w, r, false, func() int {
			return s.otlpFail(w, enc, http.StatusMethodNotAllowed, "cannot "+r.Method+" /v1/traces: use POST")
		})
	}
	tenant, key, err := s.authenticate(r)
	if err != nil {
		ae := err.(*authError)
		s.refused(r, ae.reason, http.StatusUnauthorized, "", ae.key, ae.msg)
		w.Header().Set("WWW-Authenticate", `Bearer realm="costpipe"`)
		return s.refuse(w, r, false, func() int { return s.otlpFail(w, enc, http.StatusUnauthorized, ae.msg) })
	}
	var gzipped bool
	if encErr == nil {
		gzipped, encErr = parseEncoding(r.Header.Get("Content-Encoding"))
	}
	if encErr != nil {
		s.refused(r, reasonUnsupported, http.StatusUnsupportedMediaType, tenant, "", encErr.Error())
		return s.refuse(w, r, false, func() int { return s.otlpFail(w, enc, http.StatusUnsupportedMediaType, encErr.Error()) })
	}
	if r.ContentLength > s.opts.MaxBodyBytes {
		return s.otlpTooLarge(w, r, enc, tenant, false)
	}

	// Admission, as for /v1/events: answer at once rather than queue.
	unavailable := func(code int, msg string) int {
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", s.retryAfter)
		}
		return s.otlpFail(w, enc, code, msg)
	}
	if reason := s.admit(key); reason != "" {
		msg := s.admitError(reason)
		s.refused(r, reason, http.StatusTooManyRequests, tenant, "", msg)
		return s.refuse(w, r, false, func() int { return unavailable(http.StatusTooManyRequests, msg) })
	}
	h := s.hold(key)
	defer h.release()
	body, started, err := h.readBody(w, r, gzipped)
	switch {
	case errors.Is(err, errTooLarge):
		return s.otlpTooLarge(w, r, enc, tenant, true)
	case errors.Is(err, errNeverFits):
		msg := s.neverFits()
		s.refused(r, reasonTooLarge, http.StatusRequestEntityTooLarge, tenant, "", msg)
		return s.refuse(w, r, true, func() int { return s.otlpFail(w, enc, http.StatusRequestEntityTooLarge, msg) })
	case errors.Is(err, errOverloaded):
		msg := s.admitError(reasonMaxInFlightBytes)
		s.refused(r, reasonMaxInFlightBytes, http.StatusTooManyRequests, tenant, "", msg)
		return s.refuse(w, r, started, func() int { return unavailable(http.StatusTooManyRequests, msg) })
	case errors.Is(err, errSlowBody):
		// Retryable for an OTLP exporter (a 400 is not: it drops the spans).
		msg := s.slowBody()
		s.refused(r, reasonBadBody, http.StatusServiceUnavailable, tenant, "", msg)
		return s.refuse(w, r, true, func() int {
			w.Header().Set("Retry-After", s.retryAfter)
			return s.otlpFail(w, enc, http.StatusServiceUnavailable, msg)
		})
	case err != nil:
		s.refused(r, reasonBadBody, http.StatusBadRequest, tenant, "", err.Error())
		return s.refuse(w, r, true, func() int { return s.otlpFail(w, enc, http.StatusBadRequest, err.Error()) })
	}
	s.otlp.requestBodySize.Observe(float64(len(body)))

	// The decoded spans are held too, and the records made of them:
	// reserve both from the same budget before decoding (otlp_cost.go),
	// and refuse a body that could never fit.
	cost := costOf(enc, body)
	if cost.malformed {
		// The estimate stops where the walk did: decoding such a body
		// could take memory nothing reserved.
		msg := "cannot decode the OTLP protobuf body: malformed"
		s.refused(r, reasonBadBody, http.StatusBadRequest, tenant, "", msg)
		return s.otlpFail(w, enc, http.StatusBadRequest, msg)
	}
	forBatch := min(int64(len(body)+len(body)/4+1024), maxPooledArena)
	if code := s.reserveDecoded(r, tenant, cost.bytes+forBatch, cost.String(), &h.reserved, unavailable); code != 0 {
		return code
	}

	td, err := decodeTraces(enc, body)
	if err != nil {
		s.refused(r, reasonBadBody, http.StatusBadRequest, tenant, "", err.Error())
		return s.otlpFail(w, enc, http.StatusBadRequest, err.Error())
	}

	b := s.batches.Get().(*batch)
	b.reset(tenant, s.timeBounds())
	reuse := true
	defer func() {
		if reuse {
			s.batches.Put(b)
		}
	}()
	// Events take about as many bytes as the protobuf spans they come
	// from: size the arena once rather than grow it span by span.
	if want := min(len(body)+len(body)/4+1024, maxPooledArena); cap(b.arena) < want {
		b.arena = make([]byte, 0, want)
	}
	m := s.otlp.mappers.Get().(*otlpMapper)
	var c traceCounts
	s.mapTraces(m, td, tenant, b, &c)
	s.otlp.mappers.Put(m)
	s.trueUp(b, forBatch, &h.reserved)

	s.otlp.noUsage.Add(float64(c.noUsage))
	s.otlp.skipped.Add(float64(c.skipped))
	s.otlp.rejected.Add(float64(c.rejected - c.forbidden))
	s.otlp.forbidden.Add(float64(c.forbidden))
	for i, n := range c.dropped {
		if n > 0 {
			s.otlp.fieldsDropped[i].Add(float64(n))
		}
	}
	// Forbidden spans are rejected as the other invalid ones are, in the
	// partial success: OTLP exporters never retry a 403, so answering one
	// would lose the request's permitted spans. Only a request whose every
	// gen_ai span is forbidden is answered 403.
	if c.forbidden > 0 && c.forbidden == c.rejected && len(b.spans) == 0 {
		msg := c.summary("cannot accept the request, no span was accepted: forbidden", c.forbidden, c.forbiddenReasons)
		s.refused(r, reasonForbiddenTenant, http.StatusForbidden, tenant, "", msg)
		return s.otlpFail(w, enc, http.StatusForbidden, msg)
	}
	if n := len(b.spans); n > 0 {
		err, settled := s.produce(r.Context(), b)
		if err != nil {
			reuse = settled
			s.otlp.failed.Add(float64(n))
			s.log.Warn("cannot produce OTLP span events", "events", n, "err", err)
			w.Header().Set("Retry-After", s.retryAfter)
			return s.otlpFail(w, enc, http.StatusServiceUnavailable,
				publicError(err)+"; no span was accepted, retry the export (events are deduplicated by trace and span id)")
		}
		s.otlp.accepted.Add(float64(n))
	}
	if c.forbidden > 0 {
		s.refused(r, reasonForbiddenTenant, http.StatusOK, tenant, "",
			c.summary("accepted the request but for its forbidden spans (in the partial success): forbidden",
				c.forbidden, c.forbiddenReasons))
	}
	if c.rejected == 0 {
		// Full success: an ExportTraceServiceResponse with partial_success
		// unset, as the spec asks (empty in protobuf).
		var out []byte
		if enc == otlpJSON {
			out = []byte("{}")
		}
		return otlpWrite(w, enc, http.StatusOK, out)
	}
	return otlpWrite(w, enc, http.StatusOK, partialSuccess(enc, int64(c.rejected), c.summary("rejected", c.rejected, c.rejectedReasons())))
}

// mapTraces maps every span of td into b (accepted events) and c.
func (s *Server) mapTraces(m *otlpMapper, td ptrace.Traces, tenant string, b *batch, c *traceCounts) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		ri, forbidden := m.resource(rs.Resource(), tenant)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				c.spans++
				outcome, err := m.mapSpan(&ri, sp)
				switch outcome {
				case spanMapped:
					// The event time is checked here, as /v1/events checks
					// it after the contract: a span the aggregator would
					// send to its DLQ is a rejected span.
					if err := b.times.check(m.ev.Timestamp); err != nil {
						c.reject(spanName(sp)+": "+err.Error()+" (from start_time_unix_nano)", false)
						continue
					}
					b.appendEvent(&m.ev)
					if m.dropped != 0 {
						c.drop(m.dropped)
					}
				case spanNoUsage:
					c.noUsage++
				case spanSkipped:
					c.skipped++
				case spanRejected:
					c.reject(spanName(sp)+": "+err.Error(), forbidden)
				}
			}
		}
	}
}

// appendEvent adds a valid event's record to b, as addEvent does.
func (b *batch) appendEvent(ev *schemas.Event) {
	if b.arena == nil {
		b.arena = make([]byte, 0, 64<<10)
	}
	k := len(b.arena)
	b.arena = append(b.arena, ev.Tenant...)
	b.arena = append(b.arena, 0)
	b.arena = append(b.arena, ev.Model...)
	v := len(b.arena)
	b.arena = schemas.AppendJSON(b.arena, ev)
	b.spans = append(b.spans, span{k: k, v: v, end: len(b.arena)})
}

// otlpTooLarge answers 413 for a body over MaxBodyBytes, as tooLarge.
func (s *Server) otlpTooLarge(w http.ResponseWriter, r *http.Request, enc otlpEncoding, tenant string, started bool) int {
	msg := fmt.Sprintf("cannot accept the request: the body exceeds %d bytes (after decompression too), export smaller batches", s.opts.MaxBodyBytes)
	s.refused(r, reasonTooLarge, http.StatusRequestEntityTooLarge, tenant, "", msg)
	return s.refuse(w, r, started, func() int { return s.otlpFail(w, enc, http.StatusRequestEntityTooLarge, msg) })
}

// rpcCode is the google.rpc.Code of an HTTP status, for the Status body
// OTLP/HTTP answers errors with.
func rpcCode(httpCode int) int32 {
	switch httpCode {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return 3 // INVALID_ARGUMENT
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusTooManyRequests:
		return 8 // RESOURCE_EXHAUSTED
	case http.StatusServiceUnavailable:
		return 14 // UNAVAILABLE
	case http.StatusMethodNotAllowed:
		return 12 // UNIMPLEMENTED
	}
	return 13 // INTERNAL
}

// otlpFail answers a request refused as a whole with a google.rpc.Status
// in enc, as OTLP/HTTP specifies for 4xx and 5xx answers.
func (s *Server) otlpFail(w http.ResponseWriter, enc otlpEncoding, code int, msg string) int {
	return otlpWrite(w, enc, code, statusBody(enc, rpcCode(code), msg))
}

// otlpWrite writes out with code in enc.
func otlpWrite(w http.ResponseWriter, enc otlpEncoding, code int, out []byte) int {
	h := w.Header()
	h.Set("Content-Type", enc.contentType())
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(code)
	w.Write(out)
	return code
}
