package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/broker"
	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/schemas"
)

const testKeyFile = `# test keys
key-acme    acme
key-globex  globex   # trailing comment
key-admin   *
`

func testKeys(t testing.TB) *Keys {
	t.Helper()
	k, err := ParseKeys(strings.NewReader(testKeyFile), "keys.txt")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// gateway is a Server serving on a loopback port, backed by its own
// embedded broker over TCP.
type gateway struct {
	srv    *Server
	url    string
	broker *broker.Broker
	opts   Options
	cancel context.CancelFunc
	served chan error
}

// startGateway starts a broker and a gateway; edit changes the options.
func startGateway(t testing.TB, edit func(*Options)) *gateway {
	t.Helper()
	b := kafkatest.Start(t, 3)
	opts := DefaultOptions()
	opts.Brokers = []string{b.Addr()}
	opts.Keys = testKeys(t)
	// The tests' events are from fixed dates; TestEventTimeBounds checks
	// the bounds with a clock of its own.
	opts.MaxEventAge = 20 * 365 * 24 * time.Hour
	opts.ShutdownDelay = 0 // TestShutdownDelayKeepsServing sets one
	if edit != nil {
		edit(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &gateway{srv: srv, url: "http://" + ln.Addr().String(), broker: b, opts: opts, cancel: cancel, served: make(chan error, 1)}
	go func() { g.served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-g.served:
		case <-time.After(opts.ShutdownTimeout + 5*time.Second):
			t.Error("Serve did not return")
		}
		srv.Close()
	})
	return g
}

// event returns a valid event JSON object for tenant ("" leaves it out).
func event(id, tenant string) string {
	t := ""
	if tenant != "" {
		t = `"tenant":"` + tenant + `",`
	}
	return `{"event_id":"` + id + `","timestamp":"2025-11-01T10:00:00.123Z",` + t +
		`"provider":"openai","model":"gpt-4o","status":"ok","application":"chat-ui","operation":"chat",` +
		`"input_tokens":1200,"cached_input_tokens":200,"output_tokens":350,"latency_ms":812.5,"ttft_ms":120,` +
		`"attributes":{"region":"eu"}}`
}

// post sends body to /v1/events with key ("" sends no Authorization) and
// headers as "Name: value" pairs.
func (g *gateway) post(t testing.TB, key, body string, headers ...string) (*http.Response, Response) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.url+"/v1/events", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req, key, headers...)
}

func do(t testing.TB, req *http.Request, key string, headers ...string) (*http.Response, Response) {
	t.Helper()
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Set(name, strings.TrimSpace(value))
	}
	if req.Header.Get("Content-Type") == "" && req.Method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r Response
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("cannot decode response %q: %v", raw, err)
		}
		if r.Rejected == nil {
			t.Errorf("response %s lacks \"rejected\"", raw)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return resp, r
}

func gzipped(s string) string {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(s))
	zw.Close()
	return buf.String()
}

// consumed is one record read back from the topic.
type consumed struct {
	key, value, contentType string
	event                   schemas.Event
}

// consumeAll reads the topic from the start until want records arrived, then
// keeps reading for linger to catch extras, and returns them by event_id.
// It fails the test on a duplicate event_id.
func consumeAll(t testing.TB, brokerAddr, topic string, want int, linger time.Duration) map[string]consumed {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := make(map[string]consumed)
	deadline := time.Now().Add(30 * time.Second)
	var lingerUntil time.Time
	for {
		if len(got) >= want && lingerUntil.IsZero() {
			lingerUntil = time.Now().Add(linger)
		}
		end := deadline
		if !lingerUntil.IsZero() {
			end = lingerUntil
		}
		if time.Now().After(end) {
			break
		}
		ctx, cancel := context.WithDeadline(context.Background(), end)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(tp string, p int32, err error) {
			if ctx.Err() == nil {
				t.Errorf("fetch %s/%d: %v", tp, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			var c consumed
			c.key, c.value = string(r.Key), string(r.Value)
			for _, h := range r.Headers {
				if h.Key == schemas.HeaderContentType {
					c.contentType = string(h.Value)
				}
			}
			if err := schemas.DecodeJSON(r.Value, &c.event); err != nil {
				t.Errorf("record %q on the topic is not a valid event: %v", r.Value, err)
				return
			}
			if _, dup := got[c.event.EventID]; dup {
				t.Errorf("event_id %q is on the topic twice", c.event.EventID)
			}
			got[c.event.EventID] = c
		})
	}
	return got
}

func eventIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return ids
}
