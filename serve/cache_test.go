package serve

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// getNow is get as of the cache's clock, with an hour to compute.
func (c *answerCache) getNow(ctx context.Context, key string, compute func(context.Context) (rendered, error)) (rendered, cacheResult, error) {
	return c.get(ctx, key, c.now(), time.Now().Add(time.Hour), compute)
}

func TestAnswerCache(t *testing.T) {
	t.Parallel()
	clock := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	c := newAnswerCache(5*time.Second, 1<<20, func() time.Time { return clock })
	var computed atomic.Int32
	ctx := context.Background()
	compute := func(body string) func(context.Context) (rendered, error) {
		return func(context.Context) (rendered, error) {
			computed.Add(1)
			return rendered{body: []byte(body), ctype: "text/plain"}, nil
		}
	}
	check := func(key, want string, wantHow cacheResult, f func(context.Context) (rendered, error)) {
		t.Helper()
		r, how, err := c.getNow(ctx, key, f)
		if err != nil || string(r.body) != want || how != wantHow {
			t.Errorf("get(%q) = %q, %s, %v; want %q, %s", key, r.body, how, err, want, wantHow)
		}
	}
	check("a", "one", cacheMiss, compute("one"))
	check("a", "one", cacheHit, compute("two"))
	check("b", "three", cacheMiss, compute("three"))
	clock = clock.Add(5 * time.Second) // expired
	check("a", "four", cacheMiss, compute("four"))
	if n := computed.Load(); n != 3 {
		t.Errorf("computed %d times, want 3", n)
	}

	// Errors are not kept.
	boom := errors.New("boom")
	if _, _, err := c.getNow(ctx, "c", func(context.Context) (rendered, error) { return rendered{}, boom }); err != boom {
		t.Fatalf("err %v, want boom", err)
	}
	check("c", "five", cacheMiss, compute("five"))

	// Concurrent identical requests share one computation.
	computed.Store(0)
	release := make(chan struct{})
	var wg sync.WaitGroup
	hows := make([]cacheResult, 8)
	for i := range hows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, hows[i], _ = c.getNow(ctx, "d", func(context.Context) (rendered, error) {
				computed.Add(1)
				<-release
				return rendered{body: []byte("six"), ctype: "text/plain"}, nil
			})
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		_, started := c.inflight[sha256.Sum256([]byte("d"))]
		c.mu.Unlock()
		if started || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(20 * time.Millisecond) // let the others reach the flight (or the cache)
	close(release)
	wg.Wait()
	if n := computed.Load(); n != 1 {
		t.Errorf("8 concurrent identical requests computed %d times, want 1 (%v)", n, hows)
	}

	// Bounded: answers over a quarter of the cache are not kept, and the
	// oldest go first.
	small := newAnswerCache(time.Minute, 4000, func() time.Time { return clock })
	has := func(key string) bool { _, ok := small.entries[sha256.Sum256([]byte(key))]; return ok }
	small.getNow(ctx, "big", func(context.Context) (rendered, error) { return rendered{body: make([]byte, 1000)}, nil })
	if has("big") {
		t.Error("an answer over a quarter of the cache was kept")
	}
	for i := range 10 {
		small.getNow(ctx, fmt.Sprint(i), func(context.Context) (rendered, error) { return rendered{body: make([]byte, 550)}, nil })
	}
	if small.bytes > 4000 || len(small.entries) != 4 || !has("9") || has("0") {
		t.Errorf("bounded cache holds %d bytes in %d entries (newest kept: %v, oldest gone: %v); want ≤ 4000 in 4",
			small.bytes, len(small.entries), has("9"), !has("0"))
	}
}

// TestCacheKeepsTenantsApart: the same URL asked with the * key and then
// with a tenant's key is two answers (the tenant's is computed, never the
// cached all-tenants one); asked again, each key gets its own from the
// cache.
func TestCacheKeepsTenantsApart(t *testing.T) {
	t.Parallel()
	w := fixture(t)
	hs := newTestServer(t, w, nil)
	path := "/api/v1/usage?since=30d&by=tenant"
	do := func(key string) (string, string) {
		req, _ := http.NewRequest("GET", hs.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: status %d, %v: %s", path, resp.StatusCode, err, b)
		}
		return string(b), resp.Header.Get("X-Costpipe-Cache")
	}
	all, how := do("root")
	if how != "miss" || !strings.Contains(all, "globex") {
		t.Fatalf("root: cache %q, body %s; want a computed answer naming globex", how, all)
	}
	mine, how := do(keyOf(acme))
	if how != "miss" || strings.Contains(mine, "globex") || !strings.Contains(mine, acme) {
		t.Fatalf("acme after root: cache %q, body %s; want its own computed answer", how, mine)
	}
	if again, how := do(keyOf(acme)); how != "hit" || again != mine {
		t.Errorf("acme again: cache %q, same body %v; want a hit with the same body", how, again == mine)
	}
	if again, how := do("root"); how != "hit" || again != all {
		t.Errorf("root again: cache %q, same body %v; want a hit with the same body", how, again == all)
	}
}

// TestAbandonedAnswerIsNotKept: a computation every requester left is
// cancelled; if it still returns an answer (a part of it that the
// cancellation cut short may have degraded quietly), that answer is not
// kept: the next request computes afresh.
func TestAbandonedAnswerIsNotKept(t *testing.T) {
	t.Parallel()
	c := newAnswerCache(time.Minute, 1<<20, time.Now)
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := c.getNow(ctx, "k", func(cctx context.Context) (rendered, error) {
			<-release
			return rendered{body: []byte("partial"), ctype: "text/plain"}, nil // ignores cctx
		})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel() // the only requester leaves
	if err := <-done; err == nil {
		t.Fatal("the requester that left got no error")
	}
	close(release)
	time.Sleep(50 * time.Millisecond) // the abandoned computation ends
	computed := false
	r, how, err := c.getNow(context.Background(), "k", func(context.Context) (rendered, error) {
		computed = true
		return rendered{body: []byte("whole"), ctype: "text/plain"}, nil
	})
	if err != nil || !computed || how != cacheMiss || string(r.body) != "whole" {
		t.Errorf("after an abandoned computation: %q, %s, computed %v, %v; want computed afresh", r.body, how, computed, err)
	}
}
