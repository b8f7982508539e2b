// Package serve is `costpipe serve`: one HTTP process with a JSON (and
// Arrow, and CSV) query API over the analytics layer, the dashboard page
// that reads it, and the operational endpoints.
//
//	GET /api/v1/usage, /latency, /top, /series, /growth, /forecast, /prices
//	GET /api/v1/alerts, /alerts/notifications  when Options.Alerts is set
//	GET /api/v1/batch  several of those questions in one request (NDJSON)
//	GET /healthz, /readyz, /metrics
//	GET /            the dashboard (embedded: web/)
//
// Every path answers GET and HEAD; another method is 405 with Allow.
//
// The API takes `costpipe query`'s parameters as URL query parameters and
// answers through package report, the code the CLI runs, so both give the
// same numbers in the same encoding (render's JSON, CSV and Arrow
// writers). Every API request needs "Authorization: Bearer KEY" with a key
// of the ingest gateway's key file: a tenant's key reads only that tenant
// (its where is forced; another tenant is 403), a "*" key every tenant.
//
// A Server is safe for concurrent use. Serve runs until its context ends,
// then shuts down within Options.ShutdownTimeout: the requests in flight
// run on until shortly before it, then are cancelled and answered 503.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/producers/ingest"
	"github.com/costpipe/costpipe/render"
	"github.com/costpipe/costpipe/report"
	"github.com/costpipe/costpipe/warehouse"
)

// Server serves the API, the dashboard and the operational endpoints.
type Server struct {
	w       *warehouse.Warehouse
	q       *analytics.Querier
	opts    Options
	slots   chan struct{}
	metrics *metrics
	cache   *answerCache // nil when Options.CacheTTL is 0
	handler http.Handler

	keys *ingest.KeyRing // Options.Keys, then each reload's

	outage *outage // ClickHouse's reachability, for the log and /readyz

	// ping serializes /readyz's pings; pinged and pingErr are the last
	// one's time and outcome.
	ping    sync.Mutex
	pinged  time.Time
	pingErr error

	noEndpoint error // errNoEndpoint listing the endpoints served

	// stop ends when a shutdown cancels the work still running (Serve,
	// shortly before ShutdownTimeout), with cause errShuttingDown. The
	// requests' contexts derive from it (http.Server.BaseContext), and each
	// endpoint's work ends with it too (stoppable): a computation shared
	// through the answer cache runs without its requester's cancellation.
	stop     context.Context
	stopWork context.CancelCauseFunc
	running  atomic.Int64 // requests being answered by Serve
}

// errShuttingDown is the error of work cancelled by a shutdown. It is a
// context.Canceled, which the API answers 503 with Retry-After.
var errShuttingDown = fmt.Errorf("the server is shutting down: %w", context.Canceled)

// New returns a Server answering from q, whose warehouse w /readyz pings.
// w and q stay owned by the caller and must outlive the Server.
func New(w *warehouse.Warehouse, q *analytics.Querier, opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Catalog == nil {
		opts.Catalog = pricing.Default()
	}
	s := &Server{w: w, q: q, opts: opts, slots: make(chan struct{}, opts.MaxConcurrent), metrics: newMetrics(q.SummaryFallbacks),
		outage: &outage{log: opts.Logger, clock: time.Now}}
	s.stop, s.stopWork = context.WithCancelCause(context.Background())
	s.keys = ingest.NewKeyRing(opts.Keys, opts.KeysFile, "costpipe_serve")
	s.metrics.reg.MustRegister(s.keys.Collectors()...)
	if opts.CacheTTL > 0 {
		s.cache = newAnswerCache(opts.CacheTTL, opts.MaxCacheBytes, opts.Now)
		s.cache.maxFlight = 2 * opts.QueryTimeout
	}
	// Paths are registered without a method and each handler checks it
	// (allowGet), so another method on a known path is 405 with Allow: with
	// "GET /api/v1/usage" the catch-alls "/api/" and "/" took POST and
	// answered 404 and the page.
	mux := http.NewServeMux()
	eps := map[string]endpoint{}
	var names []string // the endpoints served, for errNoEndpoint
	for _, e := range s.endpoints() {
		names = append(names, e.name)
		mux.Handle("/api/v1/"+e.name, s.instrument("/api/v1/"+e.name, allowGet(s.api(e), true)))
		eps[e.name] = e
	}
	mux.Handle("/api/v1/batch", s.instrument("/api/v1/batch", allowGet(s.batch(eps), true)))
	names = append(names, "batch")
	s.noEndpoint = fmt.Errorf("%w: the API has /api/v1/%s and %s (GET)", errNoEndpoint, strings.Join(names[:len(names)-1], ", "), names[len(names)-1])
	mux.Handle("/api/", s.instrument("other", http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		writeError(rw, http.StatusNotFound, "", s.noEndpoint.Error())
	})))
	mux.Handle("/healthz", s.instrument("/healthz", allowGet(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		rw.Write([]byte("ok\n"))
	}), false)))
	mux.Handle("/readyz", s.instrument("/readyz", allowGet(http.HandlerFunc(s.readyz), false)))
	mux.Handle("/metrics", allowGet(s.metrics.handler(), false))
	web, err := fs.Sub(webFS, "web")
	if err != nil {
		return nil, err
	}
	mux.Handle("/", s.instrument("/", dashboard(web)))
	s.handler = mux
	return s, nil
}

// stoppable makes run end when a shutdown cancels the work still running
// (s.stop), whatever context it runs under: answer runs a computation that
// others may share under context.WithoutCancel of the first requester's,
// so the cancellation of the requests' contexts does not reach it. Its
// error is then errShuttingDown (unless it is the request's own fault),
// which the API answers 503 with Retry-After, a batch's question too.
func (s *Server) stoppable(run compute) compute {
	return func(ctx context.Context) (*render.Table, error) {
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		defer context.AfterFunc(s.stop, func() { cancel(context.Cause(s.stop)) })()
		t, err := run(ctx)
		var pe *report.ParamError
		if err != nil && errors.Is(context.Cause(ctx), errShuttingDown) && !errors.As(err, &pe) && !errors.Is(err, analytics.ErrTooManySteps) {
			// Not ClickHouse's error about its closed connection: that
			// would be a 500, or an outage in the log.
			err = errShuttingDown
		}
		return t, err
	}
}

// ReloadKeys reads Options.KeysFile again and, when it parses, makes its
// keys the ones requests are checked against: a new key works from the
// next request on, a removed one gets 401. Requests already authenticated
// keep their tenant, and no request waits for or fails because of a
// reload. A file that cannot be read or parsed changes nothing: the old
// keys stay, the error is logged and returned, and
// costpipe_serve_keys_reload_total{result="error"} counts it. It returns
// the number of keys now in use.
func (s *Server) ReloadKeys() (int, error) {
	n, err := s.keys.Reload()
	if err != nil {
		s.opts.Logger.Error("cannot reload API keys; keeping the old ones", "file", s.opts.KeysFile, "keys", n, "err", err)
		return n, err
	}
	s.opts.Logger.Info("API keys reloaded", "file", s.opts.KeysFile, "keys", n)
	return n, nil
}

// allowGet answers 405 Method Not Allowed, with "Allow: GET, HEAD", to a
// request of another method than GET or HEAD, and passes those to h. With
// api the error is the API's JSON, else plain text.
func allowGet(h http.Handler, api bool) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			h.ServeHTTP(rw, r)
			return
		}
		methodNotAllowed(rw, r, api)
	})
}

// methodNotAllowed answers 405 with "Allow: GET, HEAD", naming the method
// and the path (the path is the one the mux matched, not arbitrary text).
func methodNotAllowed(rw http.ResponseWriter, r *http.Request, api bool) {
	rw.Header().Set("Allow", "GET, HEAD")
	msg := fmt.Sprintf("method %s not allowed: %s answers GET (and HEAD)", r.Method, r.URL.Path)
	if api {
		writeError(rw, http.StatusMethodNotAllowed, "", msg)
		return
	}
	http.Error(rw, msg, http.StatusMethodNotAllowed)
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// readyFresh is how recent an answer from ClickHouse (a query's or a
// ping's) makes the server ready without a ping of its own.
const readyFresh = 10 * time.Second

// readyz answers 200 when ClickHouse answered within readyFresh (a query
// or a ping, and nothing found it unreachable since) or answers a ping
// within 2 s, else 503 (logged as the API's failures are: see outage).
// The API's queries are the evidence while they succeed: a ping on the
// same pool waited for a connection when every one was taken by queries
// and was then reported "not ready" at peak load. One ping runs at a
// time, and the probes arriving meanwhile take its result (within a
// second), so a flood of probes takes one connection, not the pool.
func (s *Server) readyz(rw http.ResponseWriter, r *http.Request) {
	if err := s.ready(r.Context()); err != nil {
		http.Error(rw, "not ready: ClickHouse does not answer\n", http.StatusServiceUnavailable)
		return
	}
	rw.Write([]byte("ready\n"))
}

// ready is readyz's finding (see readyz).
func (s *Server) ready(ctx context.Context) error {
	if s.outage.answeredWithin(readyFresh) {
		return nil
	}
	s.ping.Lock()
	defer s.ping.Unlock()
	if s.outage.answeredWithin(readyFresh) {
		return nil
	}
	if !s.pinged.IsZero() && time.Since(s.pinged) < time.Second {
		return s.pingErr
	}
	// Not the probe's context: a probe that gives up (Kubernetes' default
	// timeout is 1 s) would fail the ping, and the probes sharing it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	err := s.w.Ping(ctx)
	s.outage.note(err)
	if err != nil && !warehouse.Unavailable(err) {
		s.opts.Logger.Warn("readyz: ClickHouse does not answer", "err", err)
	}
	s.pinged, s.pingErr = time.Now(), err
	return err
}

// shutdownGrace is how long before the shutdown timeout the work still
// running is cancelled: 2 s, or half of a shorter timeout. It leaves the
// cancelled requests time to answer 503 and http.Server.Shutdown, which
// looks for idle connections every 500 ms at most, time to see them done.
func shutdownGrace(timeout time.Duration) time.Duration { return min(2*time.Second, timeout/2) }

// Serve serves on ln until ctx ends, then shuts down within
// Options.ShutdownTimeout: it stops accepting connections (ln is closed),
// lets the requests in flight run on until shutdownGrace before the
// timeout, then cancels their work (also computations shared through the
// answer cache), so each is answered 503 with Retry-After, and returns once
// every connection is done. The error is nil after such a shutdown, and an
// error when a request still had not ended at the timeout (its connection
// is then closed) or serving failed. A Server serves once: the
// cancellation is final.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			s.running.Add(1)
			defer s.running.Add(-1)
			s.handler.ServeHTTP(rw, r)
		}),
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadHeaderTimeout + 5*time.Second, // GET requests have no body to speak of
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return s.stop },
	}
	defer s.stopWork(errShuttingDown)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("cannot serve: %w", err)
	case <-ctx.Done():
	}
	timeout := s.opts.ShutdownTimeout
	cancelAt := timeout - shutdownGrace(timeout)
	s.opts.Logger.Info("shutting down: accepting no more connections, finishing the requests in flight",
		"requests", s.running.Load(), "cancel_after", cancelAt.String(), "timeout", timeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stopWork := time.AfterFunc(cancelAt, func() {
		if n := s.running.Load(); n > 0 {
			s.opts.Logger.Warn("shutting down: cancelling the requests still running (answered 503 with Retry-After)", "requests", n, "after", cancelAt.String())
		}
		s.stopWork(errShuttingDown)
	})
	defer stopWork.Stop()
	err := hs.Shutdown(sctx)
	if err != nil {
		hs.Close() // the requests that ignored their cancellation lose their connection
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("cannot shut down gracefully within %v (%d requests did not end when cancelled; their connections are closed): %w", timeout, s.running.Load(), err)
	}
	return nil
}
