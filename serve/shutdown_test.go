package serve

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/costpipe/costpipe/internal/faultproxy"
)

// shutdownServer serves the fixture through a fault proxy in front of
// ClickHouse, with the answer cache on (shared computations run without
// their requester's cancellation), a query timeout far longer than the
// shutdown timeout, and Serve running until the returned cancel.
func shutdownServer(t *testing.T, shutdown time.Duration) (s *Server, p *faultproxy.Proxy, base string, cancel context.CancelFunc, served <-chan error) {
	t.Helper()
	return serveProxied(t, func(o *Options) { o.ShutdownTimeout = shutdown })
}

// shutdownAnswer is what a client got: the status, Retry-After, the body,
// when, or the error.
type shutdownAnswer struct {
	code       int
	retryAfter string
	body       string
	at         time.Time
	err        error
}

// askAll sends GETs of paths at once (each with the * key, at most 10 s
// each) and returns a wait for their answers.
func askAll(base string, paths ...string) func() []shutdownAnswer {
	out := make([]shutdownAnswer, len(paths))
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for i, path := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", base+path, nil)
			req.Header.Set("Authorization", "Bearer root")
			resp, err := client.Do(req)
			if err != nil {
				out[i] = shutdownAnswer{err: err, at: time.Now()}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			out[i] = shutdownAnswer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(b), at: time.Now(), err: err}
		}()
	}
	return func() []shutdownAnswer { wg.Wait(); return out }
}

// inFlight is the requests being answered (the metric's gauge).
func (s *Server) inFlight() int {
	var m dto.Metric
	if err := s.metrics.inflight.Write(&m); err != nil {
		panic(err)
	}
	return int(m.GetGauge().GetValue())
}

// waitInFlight waits until n requests are being answered.
func waitInFlight(t *testing.T, s *Server, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if s.inFlight() == n {
			return
		}
	}
	t.Fatalf("%d requests never were in flight at once", n)
}

// TestShutdownCancelsRunningRequests: with queries running that would take
// longer than the shutdown timeout (ClickHouse's answers held back), the
// end of Serve's context lets them run until shortly before the timeout,
// then cancels them, also the computations shared through the answer cache
// (which do not end with their requester): each request is answered 503
// with Retry-After (a batch's questions are its lines' 503), and Serve
// returns nil within the timeout. Before, Serve waited the whole timeout,
// returned "cannot shut down gracefully: context deadline exceeded" (exit
// status 1) and the clients got no answer.
func TestShutdownCancelsRunningRequests(t *testing.T) {
	// Not parallel: it bounds the shutdown in wall time.
	const timeout = 3 * time.Second
	s, p, base, cancel, served := shutdownServer(t, timeout)
	p.Hold()
	const usage = "/api/v1/usage?since=30d&by=tenant"
	wait := askAll(base,
		usage, // computes
		usage, // shares the computation of the first (or the reverse)
		batchPath("usage?since=30d&by=tenant", "top?since=7d&by=model"),
	)
	waitInFlight(t, s, 3)
	time.Sleep(100 * time.Millisecond) // into their queries
	start := time.Now()
	cancel()
	var err error
	select {
	case err = <-served:
	case <-time.After(timeout + 2*time.Second):
		t.Fatalf("Serve did not return within the shutdown timeout (%v) and 2 s", timeout)
	}
	took := time.Since(start)
	if err != nil {
		t.Errorf("Serve after %v: %v; want nil (a shutdown that completed)", took.Round(time.Millisecond), err)
	}
	if took > timeout {
		t.Errorf("Serve returned after %v, past the shutdown timeout %v", took.Round(time.Millisecond), timeout)
	}
	answers := wait()
	for i, a := range answers[:2] {
		if a.err != nil || a.code != http.StatusServiceUnavailable || a.retryAfter != retryAfter {
			t.Errorf("request %d in flight at shutdown: %d, Retry-After %q, %q, %v; want 503 with Retry-After %s", i, a.code, a.retryAfter, a.body, a.err, retryAfter)
		}
	}
	if a := answers[2]; a.err != nil || a.code != http.StatusOK {
		t.Errorf("batch in flight at shutdown: %d %q %v; want 200 with a 503 line per question", a.code, a.body, a.err)
	} else {
		for _, line := range strings.Split(strings.TrimSpace(a.body), "\n") {
			if !strings.Contains(line, `"status":503`) {
				t.Errorf("batch line %s; want status 503", line)
			}
		}
		if n := strings.Count(a.body, "\n"); n != 2 {
			t.Errorf("batch answered %d lines, want 2:\n%s", n, a.body)
		}
	}
	// They ran on until shortly before the timeout: no earlier than its
	// half (the cancellation comes min(2 s, timeout/2) before it).
	for i, a := range answers {
		if a.err == nil && a.at.Sub(start) < timeout/2-100*time.Millisecond {
			t.Errorf("request %d answered %v into the shutdown; want it to run on until shortly before the timeout", i, a.at.Sub(start).Round(time.Millisecond))
		}
	}
}

// TestShutdownLetsRequestsFinish: a request that finishes within the
// shutdown timeout gets its answer, and Serve returns nil when it has.
func TestShutdownLetsRequestsFinish(t *testing.T) {
	// Not parallel: it bounds the shutdown in wall time.
	const timeout = 3 * time.Second
	s, p, base, cancel, served := shutdownServer(t, timeout)
	p.Hold()
	wait := askAll(base, "/api/v1/usage?since=30d&by=tenant")
	waitInFlight(t, s, 1)
	start := time.Now()
	cancel()
	time.Sleep(200 * time.Millisecond)
	p.Release()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(timeout + 2*time.Second):
		t.Fatal("Serve did not return")
	}
	if a := wait()[0]; a.err != nil || a.code != http.StatusOK {
		t.Errorf("request finishing in the drain: %d %q %v; want 200", a.code, a.body, a.err)
	}
	if took := time.Since(start); took > timeout/2 {
		t.Errorf("Serve returned %v after the requests finished; want at once", took)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still accepting connections after shutdown")
	}
}

// TestShutdownDefaults: the default shutdown timeout fits Kubernetes'
// default grace period (30 s) with room for the process to exit.
func TestShutdownDefaults(t *testing.T) {
	t.Parallel()
	if d := DefaultOptions().ShutdownTimeout; d > 28*time.Second || d < 10*time.Second {
		t.Errorf("default shutdown timeout %v; want it within Kubernetes' 30 s grace period, less room to exit", d)
	}
}
