package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/costpipe/costpipe/render"
	dto "github.com/prometheus/client_model/go"
)

// ask sends one GET with key and returns its status, body and duration.
func ask(t *testing.T, base, path, key string) (int, string, time.Duration) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	start := time.Now()
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), time.Since(start)
}

// TestBadQuestionNotQueuedBehindSlots: while every query slot is taken, a
// question with a bad parameter is answered 400 and a tenant's question
// about another tenant 403 at once; they waited for a slot until the
// query timeout and got 503 "busy" with Retry-After, telling clients to
// retry what can never be answered.
func TestBadQuestionNotQueuedBehindSlots(t *testing.T) {
	t.Parallel()
	s, p, base, _, _ := serveProxied(t, func(o *Options) {
		o.CacheTTL = 0
		o.MaxConcurrent = 1
		o.QueryTimeout = 10 * time.Second
		o.WriteTimeout = o.QueryTimeout + 10*time.Second
	})
	p.Hold()
	held := askAll(base, "/api/v1/usage?since=30d&by=tenant")
	waitInFlight(t, s, 1)
	time.Sleep(50 * time.Millisecond) // the held question has the slot
	tenantKey := fmt.Sprintf("key-%x", acme)
	for _, c := range []struct {
		path, key string
		code      int
		want      string
	}{
		{"/api/v1/usage?since=week", "root", http.StatusBadRequest, `"param":"since"`},
		{"/api/v1/top?by=model&limit=0", "root", http.StatusBadRequest, `"param":"limit"`},
		{"/api/v1/usage?since=1d&where=tenant%3D" + globex, tenantKey, http.StatusForbidden, `"param":"where"`},
		{"/api/v1/growth?where=tenant%3D" + globex, tenantKey, http.StatusForbidden, `"param":"where"`},
		{"/api/v1/latency?since=1d&step=abc", "root", http.StatusBadRequest, `"param":"step"`},
	} {
		code, body, took := ask(t, base, c.path, c.key)
		// At once: well before the query timeout (10 s) that it waited for.
		if code != c.code || !strings.Contains(body, c.want) || took > 5*time.Second {
			t.Errorf("%s with every slot taken: %d %s after %v; want %d naming %s at once", c.path, code, strings.TrimSpace(body), took.Round(time.Millisecond), c.code, c.want)
		}
	}
	p.Release()
	if a := held()[0]; a.err != nil || a.code != http.StatusOK {
		t.Errorf("the held question: %d %q %v", a.code, a.body, a.err)
	}
}

// TestReadyWhileEveryConnectionIsBusy: with every connection of the pool
// taken by queries still running, /readyz answers 200 at once: ClickHouse
// answered queries a moment ago. Its ping waited for a connection until
// its 2 s timeout and reported the server not ready at peak load.
func TestReadyWhileEveryConnectionIsBusy(t *testing.T) {
	t.Parallel()
	s, p, base, _, _ := serveProxied(t, func(o *Options) {
		o.CacheTTL = 0
		o.MaxConcurrent = 8 // the pool's 8 connections, one a question
	})
	p.Hold()
	var paths []string
	for i := range 8 {
		paths = append(paths, fmt.Sprintf("/api/v1/usage?since=%dd&by=tenant", 20+i))
	}
	held := askAll(base, paths...)
	waitInFlight(t, s, 8)
	time.Sleep(200 * time.Millisecond) // each holds its connection
	code, body, took := ask(t, base, "/readyz", "")
	if code != http.StatusOK {
		t.Errorf("/readyz with every connection busy: %d %q after %v; want 200", code, strings.TrimSpace(body), took.Round(time.Millisecond))
	}
	p.Release()
	for i, a := range held() {
		if a.err != nil || a.code != http.StatusOK {
			t.Errorf("held question %d: %d %q %v", i, a.code, a.body, a.err)
		}
	}
}

// TestJoiningRequestKeepsItsDeadline: a request that joins a computation
// begun by a request with less time left (a batch's later question, whose
// deadline is the batch's) is answered when the computation ends within its
// own time, while the first request leaves at its own deadline; the
// computation was cancelled at the first requester's deadline and both
// were answered 503.
func TestJoiningRequestKeepsItsDeadline(t *testing.T) {
	t.Parallel()
	s, p, _, _, _ := serveProxied(t, func(*Options) {})
	var usage endpoint
	for _, e := range s.endpoints() {
		if e.name == "usage" {
			usage = e
		}
	}
	q := url.Values{"since": {"11d"}, "by": {"model"}}
	p.Hold()
	first := make(chan answered, 1)
	go func() {
		first <- s.answer(context.Background(), usage, "*", q, render.FormatJSON, "application/json", time.Now().Add(300*time.Millisecond))
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) { // the first request computes
		s.cache.mu.Lock()
		n := len(s.cache.inflight)
		s.cache.mu.Unlock()
		if n == 1 || time.Now().After(deadline) {
			break
		}
	}
	time.AfterFunc(time.Second, p.Release)
	a := s.answer(context.Background(), usage, "*", q, render.FormatJSON, "application/json", time.Now().Add(10*time.Second))
	if a.err != nil || a.how != cacheShared {
		t.Fatalf("the request that joined with 10 s left: %s, %v; want the shared answer", a.how, a.err)
	}
	if f := <-first; !errors.Is(f.err, context.DeadlineExceeded) {
		t.Errorf("the first request, 300 ms to answer: %v; want its own deadline's error", f.err)
	}
}

// TestFlightPastItsDeadlineIsNotJoined: a request arriving while a
// computation cancelled at its deadline winds down starts its own instead
// of joining it and failing with its deadline.
func TestFlightPastItsDeadlineIsNotJoined(t *testing.T) {
	t.Parallel()
	c := newAnswerCache(time.Minute, 1<<20, time.Now)
	release := make(chan struct{})
	slow := func(context.Context) (rendered, error) { <-release; return rendered{body: []byte("late")}, nil } // ignores its ctx
	go c.get(context.Background(), "k", time.Now(), time.Now().Add(100*time.Millisecond), slow)
	time.Sleep(300 * time.Millisecond) // past its deadline, still running
	r, how, err := c.get(context.Background(), "k", time.Now(), time.Now().Add(5*time.Second),
		func(context.Context) (rendered, error) { return rendered{body: []byte("fresh")}, nil })
	close(release)
	if err != nil || how != cacheMiss || string(r.body) != "fresh" {
		t.Errorf("a request after the first one's deadline: %q, %s, %v; want its own computation", r.body, how, err)
	}
}

// TestAnswerExpiresTTLAfterItsNow: a cached answer expires the TTL after
// the "now" its question was read at, not after its computation ended: a
// 20 s computation with a 5 s TTL is not kept (it was served for 5 s more
// as "the last 24 h"), a 2 s one is kept 3 s.
func TestAnswerExpiresTTLAfterItsNow(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	clock := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	c := newAnswerCache(5*time.Second, 1<<20, now)
	taking := func(d time.Duration) func(context.Context) (rendered, error) {
		return func(context.Context) (rendered, error) { advance(d); return rendered{body: []byte("x")}, nil }
	}
	if _, how, _ := c.getNow(context.Background(), "slow", taking(20*time.Second)); how != cacheMiss {
		t.Fatalf("first: %s", how)
	}
	if _, how, _ := c.getNow(context.Background(), "slow", taking(0)); how != cacheMiss {
		t.Errorf("after a 20 s computation with a 5 s TTL: %s, want a miss (it was never fresh)", how)
	}
	c.getNow(context.Background(), "quick", taking(2*time.Second))
	advance(2 * time.Second) // 4 s after its now
	if _, how, _ := c.getNow(context.Background(), "quick", taking(0)); how != cacheHit {
		t.Errorf("4 s after the now of a 2 s computation: %s, want a hit", how)
	}
	advance(time.Second) // 5 s after
	if _, how, _ := c.getNow(context.Background(), "quick", taking(0)); how != cacheMiss {
		t.Errorf("5 s after the now of a 2 s computation: %s, want a miss", how)
	}
}

// TestClientThatLeftIsNot503: a client that gives up on a slow answer is
// counted code="499", not as the server's 503 "the query took too long"
// (which an SLO alert on 503s would then page on).
func TestClientThatLeftIsNot503(t *testing.T) {
	t.Parallel()
	s, p, base, _, _ := serveProxied(t, func(o *Options) { o.CacheTTL = 0 })
	p.Hold()
	req, _ := http.NewRequest("GET", base+"/api/v1/usage?since=12d&by=model", nil)
	req.Header.Set("Authorization", "Bearer root")
	if _, err := (&http.Client{Timeout: 300 * time.Millisecond}).Do(req); err == nil {
		t.Fatal("an answer through a held ClickHouse")
	}
	count := func(code string) float64 {
		var m dto.Metric
		if err := s.metrics.requests.WithLabelValues("/api/v1/usage", code).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	// The request is counted once its handler returns (after the client left).
	for deadline := time.Now().Add(10 * time.Second); count("499")+count("503") == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n499, n503 := count("499"), count("503"); n499 != 1 || n503 != 0 {
		t.Errorf("a client that left: code 499 counted %v, 503 %v; want 1 and 0", n499, n503)
	}
	p.Release()
}
