package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/render"
	"github.com/costpipe/costpipe/report"
	"github.com/costpipe/costpipe/warehouse"
)

// ContentTypeArrow is the media type of an Arrow IPC stream.
const ContentTypeArrow = "application/vnd.apache.arrow.stream"

// endpoint is one API endpoint: its name under /api/v1/, its parameters,
// and how it answers for a key bound to tenant. prepare checks the
// question (its parameters, read at now, and the tenant's scope) before
// the request waits for anything, so a question that can never be
// answered gets its 400 or 403 at once, even when every slot is busy;
// the compute it returns runs the queries.
type endpoint struct {
	name    string
	params  []string
	prepare func(tenant string, p urlParams, now time.Time) (compute, error)
}

// compute runs a prepared question's queries and builds its table.
type compute func(ctx context.Context) (*render.Table, error)

// endpoints lists the API.
func (s *Server) endpoints() []endpoint {
	eps := []endpoint{
		{"usage", usageParams, s.usage},
		{"latency", latencyParams, s.latency},
		{"top", topParams, s.top},
		{"series", seriesParams, s.series},
		{"growth", growthParams, s.growth},
		{"forecast", forecastParams, s.forecast},
		{"prices", pricesParams, s.prices},
	}
	if s.opts.Alerts != nil {
		eps = append(eps, endpoint{"alerts", alertsParams, s.alerts}, endpoint{"alerts/notifications", logParams, s.notifications})
	}
	return eps
}

// errTooLarge is an answer over Options.MaxResponseBytes.
var errTooLarge = errors.New("the answer is too large")

// errBusy is a request that found no free slot within QueryTimeout.
var errBusy = errors.New("busy")

// maxCells bounds the cells of a table an answer may build before its
// rendering meets MaxResponseBytes (series and latency steps, whose size
// is known before their rows are built): a cell takes about 56 bytes in
// memory (a 48-byte render.Value and its share of the row), so
// MaxResponseBytes/24 cells hold 2.3 times the response bound (78 MB at
// the default), and rendered they are mostly timestamps and decimal
// amounts of 20–25 bytes each. Building first took gigabytes (2,000,000
// values of a minute series: 3 GB).
func (s *Server) maxCells() int { return s.opts.MaxResponseBytes / 24 }

// boundedBuffer is a buffer that refuses to grow past max bytes. It has
// no WriteString or ReadFrom, so every write goes through Write.
type boundedBuffer struct {
	buf bytes.Buffer
	max int
}

// Write appends p, or fails with errTooLarge when it does not fit.
func (b *boundedBuffer) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.max {
		return 0, errTooLarge
	}
	return b.buf.Write(p)
}

// negotiate picks the format from the Accept header: of Arrow, CSV and
// JSON, the one with the highest quality value (q, 1 when not given; ties
// go to the one named first), never one with q=0; JSON when none is
// acceptable or none is named.
func negotiate(accept string) (render.Format, string) {
	format, ctype, best := render.FormatJSON, "application/json", 0.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil || q < 0 || q > 1 {
				continue // not a quality value: not an acceptable type either
			}
		}
		if q <= best {
			continue // q=0, or not preferred to the one before
		}
		switch mt {
		case ContentTypeArrow:
			format, ctype = render.FormatArrow, ContentTypeArrow
		case "text/csv":
			format, ctype = render.FormatCSV, "text/csv; charset=utf-8"
		case "application/json":
			format, ctype = render.FormatJSON, "application/json"
		default:
			continue
		}
		best = q
	}
	return format, ctype
}

// api serves one endpoint: authenticate, then answer (check the
// parameters, take the answer from the cache or compute it).
func (s *Server) api(e endpoint) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Cache-Control", "no-store")
		tenant, err := s.authenticate(r)
		if err != nil {
			unauthorized(rw, err)
			return
		}
		// Not r.URL.Query(): it leaves out the pairs it cannot decode, and
		// the answer would then be for a question not asked.
		q, err := parseQuery(r.URL.RawQuery)
		if err != nil {
			s.fail(rw, r, err)
			return
		}
		format, ctype := negotiate(r.Header.Get("Accept"))
		a := s.answer(r.Context(), e, tenant, q, format, ctype, time.Now().Add(s.opts.QueryTimeout))
		if a.err != nil {
			s.fail(rw, r, a.err)
			return
		}
		rw.Header().Set("Content-Type", a.ctype)
		rw.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
		rw.Header().Set("Vary", "Accept, Authorization")
		rw.Header().Set("X-Costpipe-Cache", string(a.how))
		rw.Header().Set("Server-Timing", a.timing())
		rw.Write(a.body)
	})
}

// unauthorized answers 401 with the Bearer challenge.
func unauthorized(rw http.ResponseWriter, err error) {
	rw.Header().Set("WWW-Authenticate", `Bearer realm="costpipe"`)
	writeError(rw, http.StatusUnauthorized, "", err.Error())
}

// answered is one endpoint's answer: the rendered body and how it was
// obtained (and when this request computed it, its wait for a slot and
// its work: querying and rendering), or the error.
type answered struct {
	rendered
	how cacheResult
	err error
}

// answer is e's answer to the query parameters q for a key bound to
// tenant, in format: checked, then from the answer cache or computed
// (waiting for a slot, running, rendering into a bounded buffer) by
// deadline. Every API answer, single or in a batch, goes through here, so
// a batch item is the same answer as the single request. It returns when
// ctx ends too (the client left, a shutdown), with its cause; a
// computation shared through the cache goes on while another request
// waits for it. The computation's deadline is the latest of its
// requests': a request that joins it keeps its own time (a batch's later
// questions carry the batch's deadline, seconds away, and a request
// joining one of them was answered 503 at it).
func (s *Server) answer(ctx context.Context, e endpoint, tenant string, q url.Values, format render.Format, ctype string, deadline time.Time) answered {
	p, err := newParams(q, e.params)
	if err != nil {
		return answered{err: err, how: cacheMiss}
	}
	now := s.opts.Now()
	run, err := e.prepare(tenant, p, now)
	if err != nil {
		return answered{err: err, how: cacheMiss}
	}
	var a answered
	// The cache key holds the key's tenant: a tenant's answers are never
	// served to another key.
	key := e.name + "\x00" + tenant + "\x00" + q.Encode() + "\x00" + string(format)
	a.rendered, a.how, a.err = s.cache.get(ctx, key, now, deadline, func(ctx context.Context) (rendered, error) {
		// A computation others may share runs without its first
		// requester's cancellation (the cache cancels it when no request
		// waits any more), until the latest deadline of its requests.
		start := time.Now()
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return rendered{}, s.noSlot(ctx)
		case <-s.stop.Done():
			return rendered{}, errShuttingDown
		}
		defer func() { <-s.slots }()
		var r rendered
		r.wait = time.Since(start)
		t, err := s.stoppable(run)(ctx)
		s.outage.note(err)
		if err != nil {
			return r, questionFault(err, p)
		}
		buf := &boundedBuffer{max: s.opts.MaxResponseBytes}
		if err := render.Write(buf, format, t); err != nil {
			return r, err
		}
		r.body, r.ctype = buf.buf.Bytes(), ctype
		r.work = time.Since(start) - r.wait
		return r, nil
	})
	s.metrics.cache.WithLabelValues(string(a.how)).Inc()
	return a
}

// noSlot is the error of a request whose context ended while it waited
// for a slot: a shutdown's, errBusy at the deadline, else the cause.
func (s *Server) noSlot(ctx context.Context) error {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, errShuttingDown) || s.stop.Err() != nil:
		return errShuttingDown
	case errors.Is(cause, context.DeadlineExceeded):
		return errBusy
	}
	return cause
}

// questionError is an error of the question itself that only answering
// it finds (analytics.ErrGranularity, analytics.ErrDropped): answered 400
// with Msg, which says what to ask instead and names no tenant, naming
// Param when one fits.
type questionError struct {
	Param, Msg string
	err        error
}

// Error returns the message.
func (e *questionError) Error() string { return e.Msg }

// Unwrap returns the analytics error.
func (e *questionError) Unwrap() error { return e.err }

// questionFault makes err a *questionError when it is the question's
// fault: a fixed granularity that does not fit the range (param
// granularity), or one table's rows asked over months retention has
// dropped (param step for a question with steps, else granularity when
// given). Other errors are returned as they are.
func questionFault(err error, p urlParams) error {
	var de *analytics.DroppedError
	switch {
	case errors.As(err, &de):
		qe := &questionError{Msg: de.Error(), err: err}
		if p.IsSet("step") {
			qe.Param = "step"
		} else if p.IsSet("granularity") {
			qe.Param = "granularity"
		}
		return qe
	case errors.Is(err, analytics.ErrGranularity):
		return &questionError{Param: "granularity", Msg: analytics.GranularityCause(err).Error(), err: err}
	}
	return err
}

// timing is the answer's Server-Timing header: how it was obtained and,
// when this request computed it, the time it waited for a slot and the
// time its queries and rendering took. Browsers show it in their network
// panel and expose it to the page (PerformanceResourceTiming), so a slow
// panel can be told from a slow network or a busy page.
func (a answered) timing() string {
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) }
	if a.how != cacheMiss {
		return "cache;desc=" + string(a.how)
	}
	return "cache;desc=miss, wait;dur=" + ms(a.wait) + ", query;dur=" + ms(a.work)
}

// fail answers err (see classify). A 503 says when to try again.
func (s *Server) fail(rw http.ResponseWriter, r *http.Request, err error) {
	code, param, msg := s.classify(r, err)
	if code == http.StatusServiceUnavailable {
		rw.Header().Set("Retry-After", retryAfter)
	}
	writeError(rw, code, param, msg)
}

// statusClientClosed is the status recorded for a request whose client
// left before its answer (nginx's 499): costpipe_serve_requests_total
// counts those apart from the server's 503s.
const statusClientClosed = 499

// retryAfter is the Retry-After of a 503, in seconds: a busy server or an
// unreachable ClickHouse is worth asking again soon.
const retryAfter = "5"

// classify maps err to an answer: a parameter error, a query string
// that is not URL-encoded or a question analytics finds wrong (a
// granularity that does not fit, rows no longer kept: questionError) 400
// naming the parameter, a forbidden tenant 403, ClickHouse unreachable
// (warehouse.Unavailable: logged by the outage tracker, a line a minute),
// a deadline or a shutdown 503, anything else (a panic too, logged with
// its stack) 500 with a generic message (the details, which may quote SQL,
// go to the log only).
func (s *Server) classify(r *http.Request, err error) (code int, param, msg string) {
	var pe *report.ParamError
	var qe *queryError
	var fe *questionError
	var pnc *panicError
	switch {
	case errors.As(err, &qe):
		return http.StatusBadRequest, qe.Param, qe.Msg // it quotes no value
	case errors.As(err, &fe):
		return http.StatusBadRequest, fe.Param, fe.Msg
	case errors.As(err, &pe):
		msg := pe.Msg
		if pe.Param == "where" {
			// Never quote a where value back: it may name a tenant.
			msg = "invalid where: want DIMENSION=VALUE with DIMENSION one of tenant, application, provider, model, error_type, service_tier or context_band"
		}
		return http.StatusBadRequest, pe.Param, msg
	case errors.Is(err, errForbidden):
		return http.StatusForbidden, "where", err.Error()
	case errors.Is(err, errNeedsAnyKey):
		return http.StatusForbidden, "", err.Error()
	case errors.Is(err, errNoEndpoint):
		return http.StatusNotFound, "", err.Error()
	case errors.Is(err, analytics.ErrTooManyGroups):
		return http.StatusBadRequest, "by", "too many groups: group by fewer dimensions or filter (where=)"
	case errors.Is(err, analytics.ErrTooManySteps):
		return http.StatusBadRequest, "step", "too many steps: use a larger step or a shorter range (at most 10000 steps)"
	case errors.Is(err, errBusy), warehouse.PoolExhausted(err):
		return http.StatusServiceUnavailable, "", "busy: too many requests at once, try again"
	case errors.Is(err, errTooLarge), errors.Is(err, report.ErrTooLarge):
		return http.StatusBadRequest, "", "the answer is larger than the server's response bound: narrow the range, group by fewer dimensions or filter"
	case warehouse.Unavailable(err):
		return http.StatusServiceUnavailable, "", "ClickHouse is unreachable: try again shortly"
	case errors.Is(err, errShuttingDown):
		return http.StatusServiceUnavailable, "", "the server is shutting down: try again"
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil && s.stop.Err() == nil:
		// Nobody reads this answer: the code is for the metrics and the
		// log, where a 503 "took too long" would blame the server.
		return statusClientClosed, "", "the client closed the request"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "", "the query took too long: narrow the range or try again"
	case errors.As(err, &pnc):
		s.opts.Logger.Error("API request failed: computing the answer panicked", "path", r.URL.Path, "panic", fmt.Sprint(pnc.value), "stack", string(pnc.stack))
		return http.StatusInternalServerError, "", msgFailed
	}
	s.opts.Logger.Error("API request failed", "path", r.URL.Path, "err", err)
	return http.StatusInternalServerError, "", msgFailed
}

// msgFailed is the message of a 500: the details, which may quote SQL, go
// to the log only.
const msgFailed = "the query failed; the server log has the details"

// apiError is the body of an error answer.
type apiError struct {
	Error string `json:"error"`
	Param string `json:"param,omitempty"`
}

// writeError answers code with a JSON error naming param (if any).
func writeError(rw http.ResponseWriter, code int, param, msg string) {
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(code)
	json.NewEncoder(rw).Encode(apiError{Error: msg, Param: param})
}

// scoped runs restrict on a range and keeps its conditions in step.
func scopeRange(tenant string, r *report.Range) error {
	where, err := restrict(tenant, r.Where, &r.Conds)
	r.Where = where
	return err
}

// scopeTrend runs restrict on a trend request.
func scopeTrend(tenant string, t *report.Trend) error {
	where, err := restrict(tenant, t.Where, &t.Conds)
	t.Where = where
	return err
}

func (s *Server) usage(tenant string, p urlParams, now time.Time) (compute, error) {
	u, err := report.ParseUsage(p, now)
	if err != nil {
		return nil, err
	}
	if err := scopeRange(tenant, &u.Range); err != nil {
		return nil, err
	}
	u.Query.Where = u.Where
	return func(ctx context.Context) (*render.Table, error) { return report.UsageTable(ctx, s.q, u, false) }, nil
}

func (s *Server) latency(tenant string, p urlParams, now time.Time) (compute, error) {
	u, err := report.ParseUsage(p, now)
	if err != nil {
		return nil, err
	}
	if err := scopeRange(tenant, &u.Range); err != nil {
		return nil, err
	}
	u.Query.Where = u.Where
	step, steps, err := report.ParseLatencyStep(p, u)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (*render.Table, error) {
		if step > 0 {
			return report.LatencySeriesTable(ctx, s.q, u, steps, step, s.maxCells())
		}
		return report.LatencyTable(ctx, s.q, u, false)
	}, nil
}

func (s *Server) top(tenant string, p urlParams, now time.Time) (compute, error) {
	t, err := report.ParseTop(p, now, 1000)
	if err != nil {
		return nil, err
	}
	if err := scopeRange(tenant, &t.Range); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (*render.Table, error) { return report.TopTable(ctx, s.q, t) }, nil
}

func (s *Server) series(tenant string, p urlParams, now time.Time) (compute, error) {
	sr, err := report.ParseSeries(p, now)
	if err != nil {
		return nil, err
	}
	if err := scopeRange(tenant, &sr.Range); err != nil {
		return nil, err
	}
	sr.MaxCells = s.maxCells()
	return func(ctx context.Context) (*render.Table, error) { return report.SeriesTable(ctx, s.q, sr) }, nil
}

func (s *Server) growth(tenant string, p urlParams, now time.Time) (compute, error) {
	g, err := report.ParseGrowth(p, now)
	if err != nil {
		return nil, err
	}
	if err := scopeTrend(tenant, &g.Trend); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (*render.Table, error) { return report.GrowthTable(ctx, s.q, g) }, nil
}

func (s *Server) forecast(tenant string, p urlParams, now time.Time) (compute, error) {
	f, err := report.ParseForecast(p, now)
	if err != nil {
		return nil, err
	}
	if err := scopeTrend(tenant, &f.Trend); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (*render.Table, error) { return report.ForecastTable(ctx, s.q, f) }, nil
}

func (s *Server) prices(tenant string, p urlParams, now time.Time) (compute, error) {
	c, err := report.ParseCoverage(p)
	if err != nil {
		return nil, err
	}
	if c.Where, err = restrict(tenant, c.Where, nil); err != nil {
		return nil, err
	}
	if v := p.Value("all"); v != "" {
		if c.All, err = strconv.ParseBool(v); err != nil {
			return nil, &report.ParamError{Param: "all", Msg: "invalid all: want true or false"}
		}
	}
	return func(ctx context.Context) (*render.Table, error) {
		rows, err := report.CoverageRows(ctx, s.q, s.opts.Catalog, c, now)
		if err != nil {
			return nil, err
		}
		return report.CoverageTable(rows, s.opts.Catalog), nil
	}, nil
}
