package serve

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
)

// TestClickHouseOutage: with ClickHouse unreachable (connections cut and
// refused between the server and a real ClickHouse), API requests are 503
// with Retry-After and a message that says so, /readyz is 503, the log has
// one line a minute with the count, not one per request, and one line
// when ClickHouse answers again; the same Server then answers 200 without
// a restart.
func TestClickHouseOutage(t *testing.T) {
	t.Parallel()
	var logBuf syncBuffer
	s, p := proxiedServer(t, 0, func(o *Options) {
		o.CacheTTL = 0
		o.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
	})
	var mu sync.Mutex
	clock := time.Date(2026, 3, 21, 12, 0, 0, 0, time.UTC)
	s.outage.clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()

	do := func(path string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", hs.URL+path, nil)
		req.Header.Set("Authorization", "Bearer root")
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	const usage = "/api/v1/usage?since=30d&by=tenant"
	lines := func(msg string) []string {
		var out []string
		for _, l := range strings.Split(logBuf.String(), "\n") {
			if strings.Contains(l, msg) {
				out = append(out, l)
			}
		}
		return out
	}
	const down, up = "ClickHouse is unreachable", "ClickHouse answers again"

	if code, _, body := do(usage); code != 200 {
		t.Fatalf("before the outage: %d %s", code, body)
	}
	p.Refuse(true)
	p.Cut()
	for i := 0; i < 3; i++ {
		path := usage
		if i == 2 {
			path = "/api/v1/usage?since=30d&by=model" // read from the per-model summaries
		}
		code, h, body := do(path)
		if code != http.StatusServiceUnavailable || h.Get("Retry-After") != "5" || !strings.Contains(body, `"ClickHouse is unreachable: try again shortly"`) {
			t.Fatalf("request %d in the outage: %d, Retry-After %q, %s; want 503, 5 and the reason", i+1, code, h.Get("Retry-After"), body)
		}
	}
	if code, _, _ := do("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz in the outage: %d, want 503", code)
	}
	if got := lines(down); len(got) != 1 || !strings.Contains(got[0], "failures=1") {
		t.Fatalf("log lines of the outage's first minute (4 failures): %q; want one, at the first failure", got)
	}
	if got := lines("per-model summaries"); len(got) != 0 {
		t.Fatalf("the outage is logged as a fault of the per-model summaries: %q", got)
	}
	if strings.Contains(logBuf.String(), "API request failed") {
		t.Fatalf("the outage is logged as request errors too:\n%s", logBuf.String())
	}
	advance(61 * time.Second)
	do(usage)
	if got := lines(down); len(got) != 2 || !strings.Contains(got[1], "failures=4") {
		t.Fatalf("log lines a minute into the outage: %q; want a second one counting the 4 failures since the first", got)
	}

	p.Refuse(false)
	advance(5 * time.Second)
	if code, _, body := do(usage); code != 200 {
		t.Fatalf("after the outage, the same server: %d %s", code, body)
	}
	if got := lines(up); len(got) != 1 || !strings.Contains(got[0], "unreachable_for=1m6s") || !strings.Contains(got[0], "failures=5") {
		t.Fatalf("recovery lines: %q; want one saying how long (1m6s) and how many failures (5)", got)
	}
	if code, _, _ := do("/readyz"); code != 200 {
		t.Fatalf("/readyz after the outage: %d", code)
	}
	do(usage)
	if got := lines(up); len(got) != 1 {
		t.Fatalf("recovery logged again without an outage: %q", got)
	}
}

// TestTooManyGroupsIsABadRequest: a question with more groups than the
// server returns is the asker's to narrow (400 naming by), not a 500 that
// says "see the server log".
func TestTooManyGroupsIsABadRequest(t *testing.T) {
	t.Parallel()
	s := &Server{opts: DefaultOptions()}
	r := httptest.NewRequest("GET", "/api/v1/usage?by=tenant,model,application", nil)
	code, param, msg := s.classify(r, fmt.Errorf("cannot answer: %w", fmt.Errorf("%w: usage query has more than 20000 groups", analytics.ErrTooManyGroups)))
	if code != http.StatusBadRequest || param != "by" || !strings.Contains(msg, "too many groups") {
		t.Errorf("classify: %d %q %q; want 400, by and the hint", code, param, msg)
	}
}
