package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
// and how it answers for a key bound to tenant.
type endpoint struct {
	name   string
	params []string
	run    func(ctx context.Context, tenant string, p urlParams) (*render.Table, error)
}

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
// is known before their rows are built): a cell takes about 136 bytes in
// memory, so MaxResponseBytes/24 cells already hold 5.7 times the response
// bound (190 MB at the default), and rendered they are mostly timestamps
// and decimal amounts of 20–25 bytes each. Building first took gigabytes
// (2,000,000 values of a minute series: 3 GB).
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

// negotiate picks the format from the Accept header: Arrow or CSV when
// asked for, JSON otherwise.
func negotiate(accept string) (render.Format, string) {
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case ContentTypeArrow:
			return render.FormatArrow, ContentTypeArrow
		case "text/csv":
			return render.FormatCSV, "text/csv; charset=utf-8"
		case "application/json":
			return render.FormatJSON, "application/json"
		}
	}
	return render.FormatJSON, "application/json"
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
// obtained, or the error.
type answered struct {
	body       []byte
	ctype      string
	how        cacheResult
	wait, work time.Duration // when this request computed it: waiting for a slot, querying and rendering
	err        error
}

// answer is e's answer to the query parameters q for a key bound to
// tenant, in format: checked, then from the answer cache or computed
// (waiting for a slot, running, rendering into a bounded buffer) by
// deadline. Every API answer, single or in a batch, goes through here, so
// a batch item is the same answer as the single request.
func (s *Server) answer(ctx context.Context, e endpoint, tenant string, q url.Values, format render.Format, ctype string, deadline time.Time) answered {
	p, err := newParams(q, e.params)
	if err != nil {
		return answered{err: err, how: cacheMiss}
	}
	var a answered
	// The cache key holds the key's tenant: a tenant's answers are never
	// served to another key.
	key := e.name + "\x00" + tenant + "\x00" + q.Encode() + "\x00" + string(format)
	a.body, a.ctype, a.how, a.err = s.cache.get(key, func() ([]byte, string, error) {
		// A computation others may share does not end with the first
		// requester's connection; it has its own deadline.
		if s.cache != nil {
			ctx = context.WithoutCancel(ctx)
		}
		ctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		start := time.Now()
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, "", errBusy
		}
		defer func() { <-s.slots }()
		a.wait = time.Since(start)
		defer func() { a.work = time.Since(start) - a.wait }()
		t, err := e.run(ctx, tenant, p)
		s.outage.note(err)
		if err != nil {
			return nil, "", err
		}
		buf := &boundedBuffer{max: s.opts.MaxResponseBytes}
		if err := render.Write(buf, format, t); err != nil {
			return nil, "", err
		}
		return buf.buf.Bytes(), ctype, nil
	})
	s.metrics.cache.WithLabelValues(string(a.how)).Inc()
	return a
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

// retryAfter is the Retry-After of a 503, in seconds: a busy server or an
// unreachable ClickHouse is worth asking again soon.
const retryAfter = "5"

// classify maps err to an answer: a parameter error or a query string
// that is not URL-encoded 400 naming the parameter, a forbidden tenant 403,
// ClickHouse unreachable (warehouse.Unavailable: logged by the outage
// tracker, a line a minute) or a deadline 503, anything else 500 with
// a generic message (the details, which may quote SQL, go to the log
// only).
func (s *Server) classify(r *http.Request, err error) (code int, param, msg string) {
	var pe *report.ParamError
	var qe *queryError
	switch {
	case errors.As(err, &qe):
		return http.StatusBadRequest, qe.Param, qe.Msg // it quotes no value
	case errors.As(err, &pe):
		msg := pe.Msg
		if pe.Param == "where" {
			// Never quote a where value back: it may name a tenant.
			msg = "invalid where: want DIMENSION=VALUE with DIMENSION one of tenant, application, provider, model, error_type, service_tier or context_band"
		}
		return http.StatusBadRequest, pe.Param, msg
	case errors.Is(err, errForbidden):
		return http.StatusForbidden, "where", err.Error()
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
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "", "the query took too long: narrow the range or try again"
	}
	s.opts.Logger.Error("API request failed", "path", r.URL.Path, "err", err)
	return http.StatusInternalServerError, "", "the query failed; the server log has the details"
}

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

func (s *Server) usage(ctx context.Context, tenant string, p urlParams) (*render.Table, error) {
	u, err := report.ParseUsage(p, s.opts.Now())
	if err != nil {
		return nil, err
	}
	if err := scopeRange(tenant, &u.Range); err != nil {
		return nil, err
	}
	u.Query.Where = u.Where
	return report.UsageTable(ctx, s.q, u, false)
}

func (s *Server) latency(ctx context.Context, tenant string, p urlParams) (*render.Table, error) {
	u, err := report.ParseUsage(p, s.opts.Now())
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
	if step > 0 {
		return report.LatencySeriesTable(ctx, s.q, u, steps, step, s.maxCells())
	}
	return report.LatencyTable(ctx, s.q, u, false)
}

func (s *Server) top(ctx context.Context, tenant string, p urlParams) (*render.Table, error) {
	t, err := report.ParseTop(p, s.opts.Now(), 1000)
	if err != nil {
		return nil, err
	}
	if err := scopeRange(tenant, &t.Range); err != nil {
		return nil, err
	}
	return report.TopTable(ctx, s.q, t)
}

func (s *Server) series(ctx context.Context, tenant string, p urlParams) (*render.Table, error) {
	sr, err := report.ParseSeries(p, s.opts.Now())
	if err != nil {
		return nil, err
	}
	if err := scopeRange(tenant, &sr.Range); err != nil {
		return nil, err
	}
	sr.MaxCells = s.maxCells()
	return report.SeriesTable(ctx, s.q, sr)
}

func (s *Server) growth(ctx context.Context, tenant string, p urlParams) (*render.Table, error) {
	g, err := report.ParseGrowth(p, s.opts.Now())
	if err != nil {
		return nil, err
	}
	if err := scopeTrend(tenant, &g.Trend); err != nil {
		return nil, err
	}
	return report.GrowthTable(ctx, s.q, g)
}

func (s *Server) forecast(ctx context.Context, tenant string, p urlParams) (*render.Table, error) {
	f, err := report.ParseForecast(p, s.opts.Now())
	if err != nil {
		return nil, err
	}
	if err := scopeTrend(tenant, &f.Trend); err != nil {
		return nil, err
	}
	return report.ForecastTable(ctx, s.q, f)
}

func (s *Server) prices(ctx context.Context, tenant string, p urlParams) (*render.Table, error) {
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
	rows, err := report.CoverageRows(ctx, s.q, s.opts.Catalog, c, s.opts.Now())
	if err != nil {
		return nil, err
	}
	return report.CoverageTable(rows, s.opts.Catalog), nil
}
