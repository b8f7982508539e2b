// Package ingest is costpipe's HTTP ingest gateway: POST /v1/events takes
// events as a JSON object or array, NDJSON or CloudEvents (optionally
// gzip-encoded), checks each against the event contract and the caller's API
// key, and produces the valid ones to Kafka, answering 202 only once Kafka
// acknowledged every one (acks=all). POST /v1/traces takes OTLP/HTTP trace
// exports and turns each span with OpenTelemetry GenAI usage into one event
// on the same path (docs/otlp.md). See README.md for the HTTP API.
//
// A Server owns its Kafka client. Handler may serve many requests at once;
// Serve runs an HTTP server until its context ends, then drains in-flight
// requests. Memory is bounded: beyond Options.MaxInFlight requests or
// Options.MaxInFlightBytes of request data (bodies, and what they decode
// to, reserved before decoding), requests are answered 429 at once.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/costpipe/costpipe/schemas"
)

// produceGrace is how long past Options.ProduceTimeout a request still waits
// for Kafka, so the producer's own delivery timeout normally decides.
const produceGrace = time.Second

// readyTimeout bounds the Kafka check of GET /readyz.
const readyTimeout = 2 * time.Second

// readyFresh is how long a Kafka check answers GET /readyz: probes from
// every load balancer (or anyone on the public listener) cost Kafka at most
// one metadata request a second.
const readyFresh = time.Second

// Bounds of reading what is left of a refused body (see drainBody).
const (
	drainMinBytes = 4 << 20         // discard up to at least this much, whatever MaxBodyBytes
	drainTimeout  = 5 * time.Second // for at most this long
)

// Server is the HTTP ingest gateway. Create it with New; it is safe for
// concurrent use. Close releases its Kafka client.
type Server struct {
	opts       Options
	log        *slog.Logger
	client     *kgo.Client
	keys       *KeyRing // Options.Keys, then each reload's; nil Keys: InsecureNoAuth
	metrics    *metrics
	handler    http.Handler
	budget     byteBudget
	inflight   atomic.Int64
	draining   atomic.Bool
	serving    atomic.Bool
	closeOnce  sync.Once
	batches    sync.Pool // of *batch
	headers    []kgo.RecordHeader
	retryAfter string
	otlp       *otlpState // POST /v1/traces (otlp.go)
	perKey     keySlots   // requests receiving their body, by API key (admission.go)
	refusals   *refusals  // refused requests' metric and log lines (refusals.go)
	opsRoutes  http.Handler

	// The last Kafka check of GET /readyz (readyFresh); readySem lets one
	// request at a time run it.
	readySem chan struct{}
	readyMu  sync.Mutex
	readyAt  time.Time
	readyErr error
}

// New validates opts and returns a Server with its own Kafka client. It does
// not connect to Kafka yet: GET /readyz reports whether Kafka is reachable.
func New(opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		opts:       opts,
		log:        opts.Logger,
		metrics:    newMetrics(),
		budget:     byteBudget{max: opts.MaxInFlightBytes},
		headers:    []kgo.RecordHeader{{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeJSON)}},
		retryAfter: strconv.FormatInt(int64((opts.RetryAfter+time.Second-1)/time.Second), 10),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.perKey.max = opts.MaxReceivingPerKey
	s.refusals = newRefusals(s.metrics.reg)
	s.keys = NewKeyRing(opts.Keys, opts.KeysFile, "costpipe_ingest")
	s.metrics.reg.MustRegister(s.keys.Collectors()...)
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(opts.Brokers...),
		kgo.DefaultProduceTopic(opts.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(opts.ProduceTimeout),
		// Time-bounded delivery over idempotent deduplication: without
		// this, records already sent to a broker that went away are never
		// failed, and would hold the producer buffer forever. A record that
		// fails this way may still have landed; its request is answered 503
		// and the client's retry is deduplicated downstream by event_id.
		kgo.AllowIdempotentProduceCancellation(),
		kgo.ProducerLinger(opts.ProducerLinger),
		kgo.MaxBufferedBytes(int(2 * opts.MaxInFlightBytes)),
		kgo.MaxBufferedRecords(int(max(50_000, opts.MaxInFlightBytes/128))),
	}, opts.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot create Kafka client for brokers %q: %w", opts.Brokers, err)
	}
	s.client = cl
	s.metrics.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "costpipe_ingest_inflight_requests",
			Help: "Requests (POST /v1/events and /v1/traces) being processed.",
		}, func() float64 { return float64(s.inflight.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "costpipe_ingest_inflight_bytes",
			Help: "Bytes of the in-flight budget reserved by requests being processed: bodies and what they decode to.",
		}, func() float64 { return float64(s.budget.used.Load()) }),
	)
	s.readySem = make(chan struct{}, 1)
	metricsHandler := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/events", s.serveEvents)
	s.otlp = newOTLPState(&opts, s.metrics.reg)
	mux.HandleFunc("/v1/traces", s.serveTraces)
	mux.HandleFunc("/healthz", s.serveHealth)
	mux.HandleFunc("/readyz", s.serveReady)
	if !opts.PrivateMetrics {
		mux.Handle("/metrics", metricsHandler)
	}
	s.handler = mux
	ops := http.NewServeMux()
	ops.HandleFunc("/healthz", s.serveHealth)
	ops.HandleFunc("/readyz", s.serveReady)
	ops.Handle("/metrics", metricsHandler)
	s.opsRoutes = ops
	if need := opts.ShutdownDelay + opts.ReadTimeout + opts.ProduceTimeout + time.Second; opts.ShutdownTimeout < need {
		s.log.Warn("the shutdown timeout is shorter than a request can take to finish: a request still waiting for Kafka at shutdown may be cut off (its client then retries, and the aggregators drop the copies of events that did land)",
			"shutdown_timeout", opts.ShutdownTimeout, "needed", need, "as", "shutdown delay + read timeout + produce timeout + 1s")
	}
	s.batches.New = func() any { return newBatch() }
	return s, nil
}

// Handler returns the gateway's routes: POST /v1/events, POST /v1/traces
// (OTLP/HTTP, otlp.go), GET /healthz, GET /readyz and, unless
// Options.PrivateMetrics, GET /metrics.
func (s *Server) Handler() http.Handler { return s.handler }

// OpsHandler returns the routes for an operator's listener: GET /metrics,
// /healthz and /readyz.
func (s *Server) OpsHandler() http.Handler { return s.opsRoutes }

// ReloadKeys reads Options.KeysFile again and, when it parses, makes its
// keys the ones requests are checked against (KeyRing.Reload): a file that
// cannot be read or parsed changes nothing, and
// costpipe_ingest_keys_reload_total{result="error"} counts it. It returns
// the number of keys in use.
func (s *Server) ReloadKeys() (int, error) {
	if s.opts.Keys == nil {
		return 0, errors.New("cannot reload API keys: the gateway runs without them (--insecure-no-auth)")
	}
	return s.keys.Reload()
}

// Serve answers HTTP requests on ln until ctx ends, then shuts down within
// Options.ShutdownTimeout of that: GET /readyz answers 503 at once, while
// requests, on new connections too, are still served for
// Options.ShutdownDelay, so that load balancers see the 503 and stop
// sending; then Serve stops accepting connections, waits for in-flight
// requests to finish, and flushes the producer, giving records not yet
// acknowledged (their requests were answered 503) at most ProduceTimeout
// and what is left of the timeout. It returns nil after a complete drain,
// an error when requests had to be cut off or the listener failed. Serve
// may be called once; it closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !s.serving.CompareAndSwap(false, true) {
		ln.Close()
		return errors.New("cannot serve: the server is already serving")
	}
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: min(s.opts.ReadTimeout, 10*time.Second),
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.ReadTimeout + s.opts.ProduceTimeout + produceGrace + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	if s.opts.Logger != nil {
		hs.ErrorLog = slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.draining.Store(true)
		return fmt.Errorf("cannot serve HTTP on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if d := s.opts.ShutdownDelay; d > 0 {
		// Answers say Connection: close from now on, so that clients
		// reconnect, through the load balancer, elsewhere.
		hs.SetKeepAlivesEnabled(false)
		s.log.Info("ingest shutting down: /readyz answers 503, requests are served until the delay ends", "delay", d)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			return fmt.Errorf("cannot serve HTTP on %s: %w", ln.Addr(), err)
		}
	}
	s.log.Info("ingest draining", "inflight_requests", s.inflight.Load(), "timeout", s.opts.ShutdownTimeout-s.opts.ShutdownDelay)
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
		<-errc
		return fmt.Errorf("cannot drain in-flight requests within the shutdown timeout (%s from the signal): %w", s.opts.ShutdownTimeout, err)
	}
	<-errc
	// Every request answered 202 had its records acknowledged already;
	// what may remain belongs to requests answered 503 or abandoned by
	// their client, so a flush that cannot finish is not an error.
	fctx, fcancel := context.WithTimeout(sctx, s.opts.ProduceTimeout)
	defer fcancel()
	if err := s.client.Flush(fctx); err != nil {
		s.log.Warn("cannot flush the Kafka producer; its records were answered 503 already", "err", err)
	}
	s.log.Info("ingest drained")
	return nil
}

// Close closes the Kafka client, failing records not yet acknowledged. Call
// it after Serve returned (or when Handler is no longer used). It is safe to
// call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.draining.Store(true)
		s.client.Close()
	})
}

// serveHealth answers 200 while the process runs.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// serveReady answers 200 when Kafka answered a metadata request for the
// topic within 2 s (a check at most readyFresh old) and the server is not
// draining, else 503. The body names the kind of failure only ("Kafka
// unreachable"): the listener may be public, and the brokers' addresses
// and errors go to the log.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.ready(r.Context()); err != nil {
		w.Header().Set("Retry-After", s.retryAfter)
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready: "+readyReason(err)+"\n")
		return
	}
	io.WriteString(w, "ok\n")
}

// errDraining is ready's answer once Serve's context has ended.
var errDraining = errors.New("shutting down")

// notReady is a failed Kafka check: reason for the client, err for the log.
type notReady struct {
	reason string
	err    error
}

func (e *notReady) Error() string { return e.err.Error() }
func (e *notReady) Unwrap() error { return e.err }

// readyReason is what GET /readyz tells its client of err.
func readyReason(err error) string {
	var nr *notReady
	switch {
	case errors.As(err, &nr):
		return nr.reason
	case errors.Is(err, errDraining):
		return "shutting down"
	}
	return "check interrupted"
}

// ready reports whether the gateway can take events: not draining, and
// Kafka answered the last check, run again when it is over readyFresh old
// (one at a time; the others wait for it or their context).
func (s *Server) ready(ctx context.Context) error {
	if s.draining.Load() {
		return errDraining
	}
	if ok, err := s.readyCached(); ok {
		return err
	}
	select {
	case s.readySem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.readySem }()
	if ok, err := s.readyCached(); ok { // another request just checked
		return err
	}
	err := s.checkKafka(ctx)
	if ctx.Err() != nil {
		return ctx.Err() // the client left: nothing learnt about Kafka
	}
	s.readyMu.Lock()
	was := s.readyErr
	s.readyAt, s.readyErr = time.Now(), err
	s.readyMu.Unlock()
	switch {
	case err != nil && (was == nil || was.Error() != err.Error()):
		s.log.Warn("not ready", "err", err)
	case err == nil && was != nil:
		s.log.Info("ready again: Kafka answers")
	}
	return err
}

// readyCached is the last Kafka check's answer while it is fresh.
func (s *Server) readyCached() (bool, error) {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if s.readyAt.IsZero() || time.Since(s.readyAt) >= readyFresh {
		return false, nil
	}
	return true, s.readyErr
}

// checkKafka asks Kafka for the topic's metadata within readyTimeout.
func (s *Server) checkKafka(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(s.opts.Topic)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, s.client)
	if err != nil {
		return &notReady{"Kafka unreachable", fmt.Errorf("cannot reach Kafka brokers %q: %w", s.opts.Brokers, err)}
	}
	if len(resp.Topics) != 1 {
		return &notReady{"topic not found", fmt.Errorf("cannot find topic %q: Kafka returned %d topics", s.opts.Topic, len(resp.Topics))}
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		return &notReady{"topic not usable", fmt.Errorf("cannot use topic %q: %w", s.opts.Topic, err)}
	}
	return nil
}

// serveEvents is POST /v1/events.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := s.events(w, r)
	s.metrics.request(code)
	s.metrics.requestSeconds.Observe(time.Since(start).Seconds())
}

// events handles one POST /v1/events and returns the status it answered.
func (s *Server) events(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return s.refuse(w, r, false, func() int {
			return s.fail(w, http.StatusMethodNotAllowed, "cannot "+r.Method+" /v1/events: use POST")
		})
	}
	tenant, key, err := s.authenticate(r)
	if err != nil {
		ae := err.(*authError)
		s.refused(r, ae.reason, http.StatusUnauthorized, "", ae.key, ae.msg)
		w.Header().Set("WWW-Authenticate", `Bearer realm="costpipe"`)
		return s.refuse(w, r, false, func() int { return s.fail(w, http.StatusUnauthorized, ae.msg) })
	}
	f, err := parseFormat(r.Header.Get("Content-Type"))
	var gzipped bool
	if err == nil {
		gzipped, err = parseEncoding(r.Header.Get("Content-Encoding"))
	}
	if err != nil {
		s.refused(r, reasonUnsupported, http.StatusUnsupportedMediaType, tenant, "", err.Error())
		return s.refuse(w, r, false, func() int { return s.fail(w, http.StatusUnsupportedMediaType, err.Error()) })
	}
	if r.ContentLength > s.opts.MaxBodyBytes {
		return s.tooLarge(w, r, tenant, false)
	}

	// Admission: answer at once rather than queue, so memory stays bounded.
	if reason := s.admit(key); reason != "" {
		msg := s.admitError(reason)
		s.refused(r, reason, http.StatusTooManyRequests, tenant, "", msg)
		return s.refuse(w, r, false, func() int { return s.unavailable(w, http.StatusTooManyRequests, nil, msg) })
	}
	h := s.hold(key)
	defer h.release()
	body, started, err := h.readBody(w, r, gzipped)
	switch {
	case errors.Is(err, errTooLarge):
		return s.tooLarge(w, r, tenant, true)
	case errors.Is(err, errNeverFits):
		msg := s.neverFits()
		s.refused(r, reasonTooLarge, http.StatusRequestEntityTooLarge, tenant, "", msg)
		return s.refuse(w, r, true, func() int { return s.fail(w, http.StatusRequestEntityTooLarge, msg) })
	case errors.Is(err, errOverloaded):
		msg := s.admitError(reasonMaxInFlightBytes)
		s.refused(r, reasonMaxInFlightBytes, http.StatusTooManyRequests, tenant, "", msg)
		return s.refuse(w, r, started, func() int { return s.unavailable(w, http.StatusTooManyRequests, nil, msg) })
	case errors.Is(err, errSlowBody):
		msg := s.slowBody()
		s.refused(r, reasonBadBody, http.StatusRequestTimeout, tenant, "", msg)
		return s.refuse(w, r, true, func() int { return s.fail(w, http.StatusRequestTimeout, msg) })
	case err != nil:
		s.refused(r, reasonBadBody, http.StatusBadRequest, tenant, "", err.Error())
		return s.refuse(w, r, true, func() int { return s.fail(w, http.StatusBadRequest, err.Error()) })
	}
	s.metrics.requestBodySize.Observe(float64(len(body)))

	// The records made of the body are held too (eventsCost), at most
	// what leaves the request room to run alone: their true size is
	// counted once decoded (trueUp).
	forBatch := min(eventsCost(body), s.budget.max-h.reserved)
	if code := s.reserveDecoded(r, tenant, forBatch, "", &h.reserved, func(code int, msg string) int {
		return s.unavailable(w, code, nil, msg)
	}); code != 0 {
		return code
	}

	b := s.batches.Get().(*batch)
	b.reset(tenant, s.timeBounds())
	reuse := true
	defer func() {
		if reuse {
			s.batches.Put(b)
		}
	}()
	if err := b.decode(f, body); err != nil {
		s.refused(r, reasonBadBody, http.StatusBadRequest, tenant, "", err.Error())
		return s.fail(w, http.StatusBadRequest, err.Error())
	}
	s.trueUp(b, forBatch, &h.reserved)
	s.metrics.rejected.Add(float64(b.nRejected - b.forbidden))
	s.metrics.forbidden.Add(float64(b.forbidden))
	if b.forbidden > 0 {
		msg := fmt.Sprintf("cannot accept the request: %d event(s) belong to a tenant the API key may not write; no event was accepted",
			b.forbidden)
		s.refused(r, reasonForbiddenTenant, http.StatusForbidden, tenant, "", firstForbidden(b, msg))
		return s.respond(w, http.StatusForbidden, &Response{
			Rejected:      b.rejected,
			RejectedCount: b.nRejected,
			Error:         msg,
		})
	}
	n := len(b.spans)
	if n > 0 {
		var settled bool
		if err, settled = s.produce(r.Context(), b); err != nil {
			reuse = settled
			s.metrics.failed.Add(float64(n))
			s.log.Warn("cannot produce events", "events", n, "err", err)
			return s.unavailable(w, http.StatusServiceUnavailable, b,
				publicError(err)+"; no event was accepted, retry the request (events are deduplicated by event_id)")
		}
		s.metrics.accepted.Add(float64(n))
	}
	code := http.StatusAccepted
	if b.nRejected > 0 {
		code = http.StatusBadRequest
		s.refused(r, reasonInvalidEvents, code, tenant, "",
			fmt.Sprintf("%d of %d event(s) invalid, the others accepted; the first: %s", b.nRejected, b.nRejected+n, b.rejected[0].Error))
	}
	return s.respond(w, code, &Response{Accepted: n, Rejected: b.rejected, RejectedCount: b.nRejected})
}

// firstForbidden is msg with the first forbidden event's reason, for the log.
func firstForbidden(b *batch, msg string) string {
	for _, rj := range b.rejected {
		if strings.HasPrefix(rj.Error, "cannot write tenant") {
			return msg + "; the first: " + rj.Error
		}
	}
	return msg
}

// authError is why a request has no valid API key.
type authError struct {
	reason string // reasonMissingKey, reasonBadAuthorization or reasonUnknownKey
	msg    string
	key    string // the unknown key, for its fingerprint in the log; never shown
}

func (e *authError) Error() string { return e.msg }

// authenticate returns the tenant of the request's API key and the key's
// hash (zero with Options.InsecureNoAuth), or an *authError.
func (s *Server) authenticate(r *http.Request) (string, keyHash, error) {
	keys := s.keys.Keys()
	if keys == nil {
		return AnyTenant, keyHash{}, nil // Options.InsecureNoAuth
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", keyHash{}, &authError{reason: reasonMissingKey, msg: "cannot authenticate: missing API key, send \"Authorization: Bearer KEY\""}
	}
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
		return "", keyHash{}, &authError{reason: reasonBadAuthorization, msg: "cannot authenticate: the Authorization header is not \"Bearer KEY\""}
	}
	key = strings.TrimSpace(key)
	tenant, hash, ok := keys.lookup(key)
	if !ok {
		return "", keyHash{}, &authError{reason: reasonUnknownKey, msg: "cannot authenticate: unknown API key", key: key}
	}
	return tenant, hash, nil
}

// produceError is a produce that failed: public is what the client is
// told, cause what the log says besides (a client error can name broker
// addresses, which the gateway's answers never do: its listener may be
// public, as /readyz's answers do not either).
type produceError struct {
	public string
	cause  error
}

func (e *produceError) Error() string { return e.public + ": " + e.cause.Error() }
func (e *produceError) Unwrap() error { return e.cause }

// publicError is err as a client may read it.
func publicError(err error) string {
	if pe := (*produceError)(nil); errors.As(err, &pe) {
		return pe.public
	}
	return err.Error()
}

// produce sends b's records and waits until Kafka acknowledged them all, one
// failed, or the produce timeout passed. settled reports whether the
// producer is done with b's records, so b may be reused.
func (s *Server) produce(ctx context.Context, b *batch) (err error, settled bool) {
	n := len(b.spans)
	if cap(b.recs) < n {
		b.recs = make([]kgo.Record, n)
	}
	b.recs = b.recs[:n] // zeroed by batch.reset
	fl := &flight{done: make(chan struct{})}
	fl.pending.Store(int64(n))
	start := time.Now()
	for i, sp := range b.spans {
		rec := &b.recs[i]
		rec.Key = b.arena[sp.k:sp.v:sp.v]
		rec.Value = b.arena[sp.v:sp.end:sp.end]
		rec.Headers = s.headers
		// Never a request's context: the producer cancels a whole batch of
		// records, other requests' too, when its first record's context
		// ends. Records end by the delivery timeout instead, and a full
		// producer buffer fails at once (TryProduce), never blocks.
		s.client.TryProduce(context.Background(), rec, fl.promise)
	}
	timer := time.NewTimer(s.opts.ProduceTimeout + produceGrace)
	defer timer.Stop()
	select {
	case <-fl.done:
		s.metrics.produceSeconds.Observe(time.Since(start).Seconds())
		if fl.err != nil {
			return &produceError{public: fmt.Sprintf("cannot produce %d events to topic %q: Kafka did not take them (the gateway's log has the cause)", n, s.opts.Topic),
				cause: fl.err}, true
		}
		return nil, true
	case <-timer.C:
		s.metrics.produceSeconds.Observe(time.Since(start).Seconds())
		return fmt.Errorf("cannot produce %d events to topic %q: Kafka did not acknowledge them within %s",
			n, s.opts.Topic, s.opts.ProduceTimeout), false
	case <-ctx.Done():
		return fmt.Errorf("cannot produce %d events to topic %q: %w", n, s.opts.Topic, ctx.Err()), false
	}
}

// flight tracks the records of one request until the producer settled them.
type flight struct {
	pending atomic.Int64
	done    chan struct{}
	errOnce sync.Once
	err     error // the first failure; read after done is closed
}

// promise is the kgo promise of every record of the flight.
func (f *flight) promise(_ *kgo.Record, err error) {
	if err != nil {
		f.errOnce.Do(func() { f.err = err })
	}
	if f.pending.Add(-1) == 0 {
		close(f.done)
	}
}

// fail answers a request refused as a whole.
func (s *Server) fail(w http.ResponseWriter, code int, msg string) int {
	return s.respond(w, code, &Response{Error: msg})
}

// tooLarge answers 413 for a body over MaxBodyBytes, by its declared
// length or once reading it began (started), through refuse.
func (s *Server) tooLarge(w http.ResponseWriter, r *http.Request, tenant string, started bool) int {
	msg := fmt.Sprintf("cannot accept the request: the body exceeds %d bytes (after decompression too), split it", s.opts.MaxBodyBytes)
	s.refused(r, reasonTooLarge, http.StatusRequestEntityTooLarge, tenant, "", msg)
	return s.refuse(w, r, started, func() int { return s.fail(w, http.StatusRequestEntityTooLarge, msg) })
}

// neverFits is the error of a 413 for a body whose buffer would exceed the
// whole byte budget.
func (s *Server) neverFits() string {
	return fmt.Sprintf("cannot accept the request: reading its body needs more buffer than --max-inflight-bytes (%d) lets one request hold "+
		"(a body of unknown length can need twice its size while it is read); send smaller batches", s.opts.MaxInFlightBytes)
}

// slowBody is the error of a request whose body did not arrive in time.
func (s *Server) slowBody() string {
	return fmt.Sprintf("cannot read the request body: it did not arrive within %s (--read-timeout); send it again", s.opts.ReadTimeout)
}

// drainMax is how many bytes of a refused body drainBody discards at most:
// twice MaxBodyBytes, at least 4 MiB.
func (s *Server) drainMax() int64 { return max(2*s.opts.MaxBodyBytes, drainMinBytes) }

// drainBody sends the answer already written, then reads and discards the
// rest of r's body, at most drainMax bytes and for at most 5 s (or
// ReadTimeout if shorter). Closing a connection with unread data makes the
// kernel reset it, and a client that sends its whole body before reading
// the answer (Python's urllib, many SDKs) then sees "connection reset"
// instead of the answer. Every refusal before the body is read whole comes
// here (refuse). Past either bound the connection is closed anyway.
func (s *Server) drainBody(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return
	}
	_ = rc.SetReadDeadline(time.Now().Add(min(drainTimeout, s.opts.ReadTimeout)))
	n, err := io.CopyN(io.Discard, r.Body, s.drainMax())
	if err == nil {
		s.log.Debug("closing a connection with more of a refused body unread", "discarded_bytes", n)
	}
}

// unavailable answers 429 or 503 with Retry-After; b, when set, lists the
// invalid events of the request too.
func (s *Server) unavailable(w http.ResponseWriter, code int, b *batch, msg string) int {
	w.Header().Set("Retry-After", s.retryAfter)
	resp := &Response{Error: msg}
	if b != nil {
		resp.Rejected, resp.RejectedCount = b.rejected, b.nRejected
	}
	return s.respond(w, code, resp)
}

// respond writes resp as JSON with code.
func (s *Server) respond(w http.ResponseWriter, code int, resp *Response) int {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	var out []byte
	if len(resp.Rejected) == 0 && resp.Error == "" && resp.RejectedCount == 0 {
		// The common answer, without encoding/json.
		out = append(out, `{"accepted":`...)
		out = strconv.AppendInt(out, int64(resp.Accepted), 10)
		out = append(out, `,"rejected":[],"rejected_count":0}`...)
	} else {
		if resp.Rejected == nil {
			resp.Rejected = []Rejection{}
		}
		var err error
		if out, err = json.Marshal(resp); err != nil { // cannot happen: plain strings and ints
			out = []byte(`{"accepted":0,"rejected":[],"rejected_count":0,"error":"cannot encode the response"}`)
		}
	}
	out = append(out, '\n')
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(code)
	w.Write(out)
	return code
}
