package ingest

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestReadyzChecksKafkaOncePerSecond: a burst of GET /readyz (load
// balancers, or anyone on the public listener) costs Kafka one metadata
// request, not one each.
func TestReadyzChecksKafkaOncePerSecond(t *testing.T) {
	// Not parallel: it counts requests within one readiness second.
	g := startGateway(t, nil)
	var checks atomic.Int64
	g.broker.Cluster().ControlKey(int16(kmsg.Metadata), func(r kmsg.Request) (kmsg.Response, error, bool) {
		req := r.(*kmsg.MetadataRequest)
		if len(req.Topics) == 1 && req.Topics[0].Topic != nil && *req.Topics[0].Topic == g.opts.Topic {
			checks.Add(1)
		}
		return nil, nil, false // observe only
	})
	get := func() int {
		resp, err := http.Get(g.url + "/readyz")
		if err != nil {
			t.Error(err)
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != 200 {
		t.Fatalf("readyz: %d", code)
	}
	time.Sleep(readyFresh + 100*time.Millisecond) // the first check is stale
	before := checks.Load()
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code := get(); code != 200 {
				t.Errorf("readyz in the burst: %d", code)
			}
		}()
	}
	wg.Wait()
	if n := checks.Load() - before; n < 1 || n > 2 {
		t.Errorf("40 GET /readyz sent %d metadata requests for the topic; want 1 (2 if the burst straddled a second)", n)
	}
}

// TestPrivateMetrics: with PrivateMetrics the public routes leave
// /metrics out, and OpsHandler serves it with /healthz and /readyz.
func TestPrivateMetrics(t *testing.T) {
	t.Parallel()
	g := startGateway(t, func(o *Options) { o.PrivateMetrics = true })
	resp, err := http.Get(g.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("public /metrics: %d, want 404", resp.StatusCode)
	}
	ops := httptest.NewServer(g.srv.OpsHandler())
	defer ops.Close()
	for path, want := range map[string]string{"/metrics": "costpipe_ingest_inflight_requests 0", "/healthz": "ok", "/readyz": "ok"} {
		resp, err := http.Get(ops.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("ops %s: %d %.200q; want 200 with %q", path, resp.StatusCode, b, want)
		}
	}
}

// TestShutdownTimeoutTooShortWarns: a shutdown timeout below what a
// request can take (delay + read + produce + 1 s) is accepted with a
// warning that says what it risks.
func TestShutdownTimeoutTooShortWarns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		produce time.Duration
		warn    bool
	}{{10 * time.Second, false}, {30 * time.Second, true}} {
		var logs bytes.Buffer
		opts := DefaultOptions()
		opts.Brokers = []string{"127.0.0.1:1"}
		opts.InsecureNoAuth = true
		opts.ProduceTimeout = tc.produce
		opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		s, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if got := strings.Contains(logs.String(), "shutdown timeout is shorter than a request can take"); got != tc.warn {
			t.Errorf("produce timeout %s: warned %v, want %v\n%s", tc.produce, got, tc.warn, logs.String())
		}
		if tc.warn && !strings.Contains(logs.String(), "needed=1m6s") {
			t.Errorf("the warning does not say what is needed: %s", logs.String())
		}
	}
}
