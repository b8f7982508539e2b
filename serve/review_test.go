package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/costpipe/costpipe/alerts"
	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/internal/faultproxy"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/pipelines/sketch"
	"github.com/costpipe/costpipe/render"
	"github.com/costpipe/costpipe/warehouse"
)

// newServer is newTestServer's Server itself (not served), its options
// changed by edit.
func newServer(t *testing.T, w *warehouse.Warehouse, edit func(*Options)) *Server {
	t.Helper()
	opts := DefaultOptions()
	opts.Keys = testKeys(t)
	opts.Now = func() time.Time { return now }
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.Alerts = alerts.NewStore(w, func() time.Time { return now })
	if edit != nil {
		edit(&opts)
	}
	s, err := New(w, analytics.New(w, analytics.Options{Now: func() time.Time { return now }}), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// apiError decodes an error answer, failing unless its status is code.
func apiErrorOf(t *testing.T, a answer, code int) apiError {
	t.Helper()
	var e apiError
	if a.code != code || json.Unmarshal([]byte(a.body), &e) != nil {
		t.Fatalf("status %d %s; want %d with a JSON error", a.code, a.body, code)
	}
	return e
}

// TestGranularityNotFittingIsABadRequest: a fixed granularity the range
// does not fit (90 minutes ending on the hour are not whole hours) is the
// question's fault: 400 naming granularity with analytics' message, not
// 500 "the query failed".
func TestGranularityNotFittingIsABadRequest(t *testing.T) {
	t.Parallel()
	hs := newTestServer(t, fixture(t), nil)
	for _, path := range []string{
		"/api/v1/usage?since=90m&granularity=hour",
		"/api/v1/top?since=90m&granularity=day&by=model",
		"/api/v1/latency?since=90m&granularity=hour",
	} {
		e := apiErrorOf(t, get(t, hs, "root", path, ""), http.StatusBadRequest)
		if e.Param != "granularity" || !strings.Contains(e.Error, "needs a range on whole") {
			t.Errorf("%s: %+v; want param granularity and what to change", path, e)
		}
	}
	// In a batch, the question's 400 line.
	it := batchAnswers(t, get(t, hs, "root", batchPath("usage?since=90m&granularity=hour"), ""), 1)[0]
	if it.Status != http.StatusBadRequest || it.Param != "granularity" {
		t.Errorf("batch: %+v; want 400 naming granularity", it)
	}
}

// TestDroppedRowsAreABadRequest: a question reading minute rows of a month
// retention has dropped (February: its day rows are kept, its minute rows
// not) is analytics.ErrDropped: 400 with its message (which says what to
// ask instead), naming granularity for a fixed granularity and step for a
// latency series of minute steps.
func TestDroppedRowsAreABadRequest(t *testing.T) {
	t.Parallel()
	w := fixture(t)
	var h sketch.Histogram
	h.Add(100)
	idx, cnt := h.AppendArrays([]int16{}, []uint64{})
	feb := warehouse.Rollup{TS: time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC), Tenant: acme, Provider: "p", Model: "gpt-4o", SrcTopic: "t",
		SrcOffset: 1, Requests: 5, Cost: pricing.FromPicos(5e6),
		Latency: warehouse.Dist{Count: 1, SumMicros: 100000, MinMs: 100, MaxMs: 100, HistIdx: idx, HistCnt: cnt},
		TTFT:    warehouse.Dist{MinMs: math.Inf(1)}}
	if err := w.InsertRollups(context.Background(), warehouse.Day, []warehouse.Rollup{feb}); err != nil {
		t.Fatal(err)
	}
	hs := newTestServer(t, w, nil)
	for path, param := range map[string]string{
		"/api/v1/usage?from=2026-02-10T00:00:00Z&to=2026-02-10T01:00:00Z&granularity=minute": "granularity",
		"/api/v1/latency?from=2026-02-10T00:00:00Z&to=2026-02-10T00:05:00Z&step=1m":          "step",
	} {
		e := apiErrorOf(t, get(t, hs, "root", path, ""), http.StatusBadRequest)
		if e.Param != param || !strings.Contains(e.Error, "no longer holds 2026-02") || !strings.Contains(e.Error, "ask for") {
			t.Errorf("%s: %+v; want 400 naming %s with the dropped-rows message", path, e, param)
		}
	}
}

// TestNotificationsNeedAnyKey: a tenant's key on the notification log is
// 403 saying the log needs a key for every tenant, naming no parameter (no
// where was sent).
func TestNotificationsNeedAnyKey(t *testing.T) {
	t.Parallel()
	hs := newTestServer(t, fixture(t), nil)
	e := apiErrorOf(t, get(t, hs, keyOf(acme), "/api/v1/alerts/notifications", ""), http.StatusForbidden)
	if e.Param != "" || !strings.Contains(e.Error, "needs a key for every tenant (*)") {
		t.Errorf("tenant key on notifications: %+v; want its own message and no param", e)
	}
}

// TestNoEndpointListsTheRoutesServed: the 404 of an unknown endpoint (and
// of a batch question for one) lists the endpoints this server serves:
// alerts only when it serves them, and batch.
func TestNoEndpointListsTheRoutesServed(t *testing.T) {
	t.Parallel()
	w := fixture(t)
	for _, withAlerts := range []bool{false, true} {
		hs := newTestServer(t, w, func(o *Options) {
			if !withAlerts {
				o.Alerts = nil
			}
		})
		e := apiErrorOf(t, get(t, hs, "root", "/api/v1/nope", ""), http.StatusNotFound)
		it := batchAnswers(t, get(t, hs, "root", batchPath("nope?since=1d"), ""), 1)[0]
		for _, msg := range []string{e.Error, it.Error} {
			if !strings.Contains(msg, "batch") || strings.Contains(msg, "alerts") != withAlerts ||
				strings.Contains(msg, "alerts/notifications") != withAlerts {
				t.Errorf("alerts served %v: %q; want the routes served (batch; alerts and alerts/notifications only when served)", withAlerts, msg)
			}
		}
	}
}

// TestNegotiateQuality: a type with q=0 is not acceptable, and the highest
// q wins (ties: the order given).
func TestNegotiateQuality(t *testing.T) {
	t.Parallel()
	for accept, want := range map[string]render.Format{
		"text/csv;q=0, application/json":                            render.FormatJSON,
		"text/csv; q=0":                                             render.FormatJSON,
		"text/csv;q=0.5, application/vnd.apache.arrow.stream":       render.FormatArrow,
		"application/json;q=0.8, text/csv;q=0.9":                    render.FormatCSV,
		"text/csv, application/json":                                render.FormatCSV,
		"application/json, text/csv":                                render.FormatJSON,
		"text/html, text/csv;q=0.1":                                 render.FormatCSV,
		"text/csv;q=0.3, application/vnd.apache.arrow.stream;q=0.3": render.FormatCSV,
		"":                        render.FormatJSON,
		"application/json;q=0":    render.FormatJSON,
		"text/csv;q=1.0, */*;q=0": render.FormatCSV,
	} {
		if got, _ := negotiate(accept); got != want {
			t.Errorf("Accept %q: %s, want %s", accept, got, want)
		}
	}
}

// panicking is an endpoint whose computation panics.
func panicking(string, urlParams, time.Time) (compute, error) {
	return func(context.Context) (*render.Table, error) { panic("deliberate panic in a test endpoint") }, nil
}

// TestPanicIsAnError: a computation that panics is answered 500 (logged
// with its stack), with the cache on and off, and an identical request
// after it is answered too (the cache forgot the computation) instead of
// waiting forever.
func TestPanicIsAnError(t *testing.T) {
	t.Parallel()
	w := fixture(t)
	for _, ttl := range []time.Duration{5 * time.Second, 0} {
		var log syncBuffer
		s := newServer(t, w, func(o *Options) {
			o.CacheTTL = ttl
			o.Logger = slog.New(slog.NewTextHandler(&log, nil))
		})
		hs := httptest.NewServer(s.api(endpoint{name: "boom", prepare: panicking}))
		client := &http.Client{Timeout: 5 * time.Second}
		for i := range 2 {
			req, _ := http.NewRequest("GET", hs.URL+"/api/v1/boom", nil)
			req.Header.Set("Authorization", "Bearer root")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("cache TTL %v, request %d: %v; want a 500", ttl, i, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(b), "the query failed") {
				t.Errorf("cache TTL %v, request %d: %d %s; want 500", ttl, i, resp.StatusCode, b)
			}
		}
		if l := log.String(); !strings.Contains(l, "deliberate panic") || !strings.Contains(l, "review_test.go") {
			t.Errorf("cache TTL %v: the log does not have the panic with its stack:\n%s", ttl, l)
		}
		hs.Close()
	}
}

// TestBatchPanicIsALine: a panic while answering a batch question is that
// question's 500 line, not the end of the process: in the computation
// (with the cache on and off) and outside it (here metrics the answer
// counts itself in are missing).
func TestBatchPanicIsALine(t *testing.T) {
	t.Parallel()
	w := fixture(t)
	for _, c := range []struct {
		name string
		edit func(*Server)
		ttl  time.Duration
	}{
		{"computation, cache on", nil, 5 * time.Second},
		{"computation, cache off", nil, 0},
		{"outside the computation", func(s *Server) { s.metrics = nil }, 5 * time.Second},
	} {
		s := newServer(t, w, func(o *Options) { o.CacheTTL = c.ttl })
		eps := map[string]endpoint{"boom": {name: "boom", params: []string{"x"}, prepare: panicking}, "usage": {name: "usage", params: usageParams, prepare: s.usage}}
		if c.edit != nil {
			c.edit(s)
		}
		hs := httptest.NewServer(s.batch(eps))
		its := batchAnswers(t, get(t, hs, "root", batchPath("boom", "boom?x=1", "usage?since=1d"), ""), 3)
		for _, it := range its[:2] {
			if it.Status != http.StatusInternalServerError {
				t.Errorf("%s: %+v; want a 500 line", c.name, it)
			}
		}
		if c.edit == nil && its[2].Status != http.StatusOK {
			t.Errorf("%s: the question that does not panic: %+v; want 200", c.name, its[2])
		}
		hs.Close()
	}
}

// misses is the answers the server computed (costpipe_serve_cache_total
// {result="miss"}).
func misses(s *Server) int {
	var m dto.Metric
	s.metrics.cache.WithLabelValues(string(cacheMiss)).Write(&m)
	return int(m.GetCounter().GetValue())
}

// stuckWriter is a ResponseWriter whose Write blocks until release is
// closed, or fails at once when fail is set.
type stuckWriter struct {
	header  http.Header
	release chan struct{}
	fail    bool
	mu      sync.Mutex
	lines   int
}

func (w *stuckWriter) Header() http.Header { return w.header }
func (w *stuckWriter) WriteHeader(int)     {}
func (w *stuckWriter) Write(p []byte) (int, error) {
	if w.fail {
		return 0, errors.New("broken pipe")
	}
	<-w.release
	w.mu.Lock()
	w.lines += bytes.Count(p, []byte("\n"))
	w.mu.Unlock()
	return len(p), nil
}

// TestBatchBoundsUnwrittenAnswers: while the handler cannot write a batch's
// answers (a slow reader), its workers compute no more than one answer
// each ahead of it, and once a write fails they stop. Before, every
// question was computed and held (up to 32 × MaxResponseBytes).
func TestBatchBoundsUnwrittenAnswers(t *testing.T) {
	t.Parallel()
	w := fixture(t)
	var qs []string
	for d := 1; d <= 16; d++ {
		qs = append(qs, "usage?by=tenant&since="+strconv.Itoa(d)+"d")
	}
	const bound = batchParallel + 1 // one being written, one held by each worker
	settle := func(s *Server) int {
		for deadline, last, since := time.Now().Add(10*time.Second), -1, time.Now(); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if n := misses(s); n != last {
				last, since = n, time.Now()
			} else if time.Since(since) > time.Second {
				return n
			}
		}
		t.Fatal("the batch never settled")
		return 0
	}
	t.Run("slow reader", func(t *testing.T) {
		s := newServer(t, w, nil)
		rw := &stuckWriter{header: http.Header{}, release: make(chan struct{})}
		req := httptest.NewRequest("GET", batchPath(qs...), nil)
		req.Header.Set("Authorization", "Bearer root")
		served := make(chan struct{})
		go func() { s.Handler().ServeHTTP(rw, req); close(served) }()
		if n := settle(s); n > bound {
			t.Errorf("%d answers computed while none could be written; want at most %d", n, bound)
		}
		close(rw.release)
		<-served
		if rw.lines != len(qs) {
			t.Errorf("%d lines written once the reader read, want %d", rw.lines, len(qs))
		}
	})
	t.Run("write fails", func(t *testing.T) {
		s := newServer(t, w, nil)
		rw := &stuckWriter{header: http.Header{}, fail: true}
		req := httptest.NewRequest("GET", batchPath(qs...), nil)
		req.Header.Set("Authorization", "Bearer root")
		s.Handler().ServeHTTP(rw, req)
		if n := settle(s); n > bound {
			t.Errorf("%d answers computed after the first write failed; want at most %d", n, bound)
		}
	})
}

// TestAbandonedComputationIsCancelled: with the cache on, a computation
// runs for its waiters: while one is left it goes on, and when the last
// has gone it is cancelled and frees its slot, instead of running on
// without anyone until the query timeout.
func TestAbandonedComputationIsCancelled(t *testing.T) {
	t.Parallel()
	s, p := proxiedServer(t, 4, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		o.QueryTimeout = 20 * time.Second
		o.MaxConcurrent = 2
	})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	const path = "/api/v1/usage?since=30d&by=tenant"
	if a := get(t, hs, "root", "/api/v1/usage?since=1d", ""); a.code != 200 { // a connection open
		t.Fatalf("warming up: %d %s", a.code, a.body)
	}
	p.Hold()
	defer p.Release()
	var cancels []context.CancelFunc
	var wg sync.WaitGroup
	for range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		req, _ := http.NewRequestWithContext(ctx, "GET", hs.URL+path, nil)
		req.Header.Set("Authorization", "Bearer root")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := hs.Client().Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	waitInFlight(t, s, 2)
	for deadline := time.Now().Add(5 * time.Second); len(s.slots) != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d slots taken, want the shared computation's 1", len(s.slots))
		}
	}
	cancels[0]()
	time.Sleep(300 * time.Millisecond)
	if len(s.slots) != 1 {
		t.Fatal("the computation ended while a requester still waited for it")
	}
	cancels[1]()
	wg.Wait()
	for deadline := time.Now().Add(3 * time.Second); len(s.slots) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the computation still holds its slot 3 s after its last requester left; want it cancelled")
		}
	}
}

// serveProxied serves the fixture through a fault proxy in front of
// ClickHouse, with the options changed by edit (shutdownServer's), and
// Serve running until the returned cancel. It opens the pool's connections
// first: a connection's handshake held back by the proxy would fail on its
// own (dial timeout), not as a long query; slow answers make the questions
// overlap, each on a connection.
func serveProxied(t *testing.T, edit func(*Options)) (s *Server, p *faultproxy.Proxy, base string, cancel context.CancelFunc, served <-chan error) {
	t.Helper()
	s, p = proxiedServer(t, 8, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		o.QueryTimeout = 30 * time.Second
		o.WriteTimeout = o.QueryTimeout + 10*time.Second
		edit(o)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		p.Release()
		for deadline := time.Now().Add(10 * time.Second); s.inFlight() > 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	})
	base = "http://" + ln.Addr().String()
	p.Delay(300 * time.Millisecond)
	for _, a := range askAll(base, "/api/v1/usage?since=1d", "/api/v1/usage?since=2d", "/api/v1/latency?since=1d", "/api/v1/series?since=1d")() {
		if a.err != nil || a.code != http.StatusOK {
			t.Fatalf("warming up: %d %q %v", a.code, a.body, a.err)
		}
	}
	p.Delay(0)
	return s, p, base, cancel, done
}

// TestShutdownAnswersShuttingDown: at a shutdown, a request waiting for a
// slot (cache off) and the batch questions not begun are answered "the
// server is shutting down", not "busy" or "the client left".
func TestShutdownAnswersShuttingDown(t *testing.T) {
	t.Parallel()
	t.Run("waiting for a slot", func(t *testing.T) {
		s, p, base, cancel, served := serveProxied(t, func(o *Options) {
			o.CacheTTL = 0
			o.MaxConcurrent = 1
			o.ShutdownTimeout = 2 * time.Second
		})
		p.Hold()
		wait := askAll(base, "/api/v1/usage?since=30d&by=tenant", "/api/v1/usage?since=29d&by=tenant")
		waitInFlight(t, s, 2)
		time.Sleep(100 * time.Millisecond)
		cancel()
		<-served
		for i, a := range wait() {
			if a.err != nil || a.code != http.StatusServiceUnavailable || !strings.Contains(a.body, "the server is shutting down") {
				t.Errorf("request %d at shutdown: %d %q %v; want 503 the server is shutting down", i, a.code, a.body, a.err)
			}
		}
	})
	t.Run("batch", func(t *testing.T) {
		s, p, base, cancel, served := serveProxied(t, func(o *Options) { o.ShutdownTimeout = 2 * time.Second })
		p.Hold()
		var qs []string
		for d := 20; d < 20+batchParallel+2; d++ {
			qs = append(qs, "usage?by=tenant&since="+strconv.Itoa(d)+"d")
		}
		wait := askAll(base, batchPath(qs...))
		waitInFlight(t, s, 1)
		time.Sleep(200 * time.Millisecond) // the first questions are running
		cancel()
		<-served
		a := wait()[0]
		its := batchAnswers(t, answer{a.code, ContentTypeNDJSON, a.body}, len(qs))
		for _, it := range its {
			if it.Status != http.StatusServiceUnavailable || !strings.Contains(it.Error, "the server is shutting down") {
				t.Errorf("batch question at shutdown: %+v; want 503 the server is shutting down", it)
			}
		}
	})
}

// TestCacheBoundCountsWhatItKeeps: many tiny answers under long keys (a
// key carries the whole query string) take about what the byte bound
// says, not their keys' size on top of it: 1,024 one-byte answers under
// 32 KiB keys took 32 MiB in a cache bounded at 1 MiB.
func TestCacheBoundCountsWhatItKeeps(t *testing.T) {
	// Not parallel: it measures the heap, which other tests would move.
	clock := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	const bound = 1 << 20
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	c := newAnswerCache(time.Minute, bound, func() time.Time { return clock })
	long := strings.Repeat("where=model%3D", 32<<10/14)
	for i := range 1024 {
		c.getNow(context.Background(), long+strconv.Itoa(i), func(context.Context) (rendered, error) {
			return rendered{body: []byte{'x'}, ctype: "text/plain"}, nil
		})
	}
	grown := int64(heap()) - int64(before)
	if grown > 4*bound {
		t.Errorf("the cache bounded at %d bytes holds %d entries in %d bytes of heap", bound, len(c.entries), grown)
	}
	if c.bytes > bound {
		t.Errorf("the cache counts %d bytes, over its bound %d", c.bytes, bound)
	}
	runtime.KeepAlive(c)
}

// TestCachePutIsCheap: keeping an answer does not scan every entry (4,096
// answers under 8 KiB keys took seconds, under the cache's lock), and
// expired entries go from the front.
func TestCachePutIsCheap(t *testing.T) {
	// Not parallel: it bounds 4,096 puts in wall time under the race detector.
	clock := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	c := newAnswerCache(time.Minute, 64<<20, func() time.Time { return clock })
	long := strings.Repeat("k", 8<<10)
	put := func(i int) {
		c.getNow(context.Background(), long+strconv.Itoa(i), func(context.Context) (rendered, error) {
			return rendered{body: []byte{'x'}}, nil
		})
	}
	start := time.Now()
	for i := range maxCacheEntries {
		put(i)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("%d answers took %v to keep; want well under a second", maxCacheEntries, took)
	}
	if len(c.entries) != maxCacheEntries {
		t.Errorf("%d entries, want %d", len(c.entries), maxCacheEntries)
	}
	clock = clock.Add(time.Minute) // every one expired
	put(-1)
	if len(c.entries) != 1 || c.bytes != 1+entryOverhead {
		t.Errorf("after the TTL: %d entries of %d bytes; want only the new one", len(c.entries), c.bytes)
	}
}
