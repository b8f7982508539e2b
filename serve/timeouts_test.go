package serve

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
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
		if code != c.code || !strings.Contains(body, c.want) || took > time.Second {
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
	if code != http.StatusOK || took > time.Second {
		t.Errorf("/readyz with every connection busy: %d %q after %v; want 200 at once", code, strings.TrimSpace(body), took.Round(time.Millisecond))
	}
	p.Release()
	for i, a := range held() {
		if a.err != nil || a.code != http.StatusOK {
			t.Errorf("held question %d: %d %q %v", i, a.code, a.body, a.err)
		}
	}
}
