package ingest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// openRefused sends the headers of a POST whose body will be refused once
// reading it begins (gzip declared, the first bytes not gzip), and the
// first bytes, then keeps the connection open, the rest unsent: the
// gateway answers and then discards what is left for up to its drain
// timeout. It returns the answer's status.
func openRefused(t *testing.T, url, key string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	req := "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key + "\r\nContent-Type: application/json\r\n" +
		"Content-Encoding: gzip\r\nContent-Length: " + strconv.Itoa(1<<20) + "\r\n\r\nnot gzip!!"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return resp.StatusCode
}

// A refused body is discarded holding only its key's receiving slot: one
// key's bad requests, kept open while the gateway discards their bodies,
// took the request slots and the byte budget of every other key (429 for
// all tenants for a few KB of traffic every few seconds).
func TestRefusedBodyFreesItsSlots(t *testing.T) {
	t.Parallel()
	g := startGateway(t, func(o *Options) { o.MaxInFlight, o.MaxReceivingPerKey = 2, 1 })
	if code := openRefused(t, g.url, "key-acme"); code != http.StatusBadRequest {
		t.Fatalf("a body that is not gzip: status %d, want 400", code)
	}
	// The first one is still being discarded: its key has no receiving
	// slot left, every other key has the gateway's.
	if code := openRefused(t, g.url, "key-acme"); code != http.StatusTooManyRequests {
		t.Errorf("the same key while its first refused body is discarded: status %d, want 429", code)
	}
	if used := g.srv.budget.used.Load(); used != 0 {
		t.Errorf("%d bytes reserved by refused bodies being discarded", used)
	}
	for i := range 3 {
		if resp, r := g.post(t, "key-globex", event("g-"+strconv.Itoa(i), "globex")); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("another tenant's request %d: status %d %+v, want 202", i, resp.StatusCode, r)
		}
	}
}

// A body larger than the byte budget can ever hold is 413, not 429: no
// retry could succeed. With the budget equal to the body limit, a body of
// exactly the limit fits (it used to need one byte more to see its end).
func TestBodyThatNeverFits(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	g := startGateway(t, func(o *Options) { o.MaxBodyBytes, o.MaxInFlightBytes = limit, limit })
	body := "[" + event("exact", "acme") + "]"
	body += strings.Repeat(" ", limit-len(body))
	if resp, r := g.post(t, "key-acme", body); resp.StatusCode != http.StatusAccepted {
		t.Errorf("a body of exactly --max-body: status %d %+v, want 202", resp.StatusCode, r)
	}
	// Chunked (no length) on a gateway whose limit and budget are 256 KiB:
	// its buffer doubles from 64 KiB, and the last doubling would hold more
	// than the whole budget (it was 429, "retry later", at every retry).
	g = startGateway(t, func(o *Options) { o.MaxBodyBytes, o.MaxInFlightBytes = 4*limit, 4*limit })
	chunked := "[" + event("chunked", "acme") + "]"
	chunked += strings.Repeat(" ", 3*limit-len(chunked))
	req, err := http.NewRequest(http.MethodPost, g.url+"/v1/events", struct{ *strings.Reader }{strings.NewReader(chunked)})
	if err != nil {
		t.Fatal(err)
	}
	resp, r := do(t, req, "key-acme")
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(r.Error, "--max-inflight-bytes") {
		t.Errorf("a chunked body needing more buffer than the budget: status %d %+v, want 413 naming --max-inflight-bytes", resp.StatusCode, r)
	}
	if used := g.srv.budget.used.Load(); used != 0 {
		t.Errorf("%d bytes still reserved", used)
	}
}

// A body that stops arriving is answered 408 on /v1/events and 503 with
// Retry-After on /v1/traces (send it again), not 400 (the body is
// unusable: clients and OTLP exporters drop it).
func TestSlowBodyIsRetryable(t *testing.T) {
	t.Parallel()
	g := startGateway(t, func(o *Options) { o.ReadTimeout = 300 * time.Millisecond })
	for _, tc := range []struct {
		path, ct string
		code     int
	}{
		{"/v1/events", "application/json", http.StatusRequestTimeout},
		{"/v1/traces", "application/x-protobuf", http.StatusServiceUnavailable},
	} {
		body := "[" + event("slow", "acme") + "]"
		conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		req := "POST " + tc.path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer key-acme\r\nContent-Type: " + tc.ct + "\r\n" +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body[:len(body)/2]
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: reading the answer: %v", tc.path, err)
		}
		if resp.StatusCode != tc.code {
			t.Errorf("%s: a body cut off by the read timeout: status %d, want %d", tc.path, resp.StatusCode, tc.code)
		}
		if tc.code == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", tc.path)
		}
	}
}

// An event for another tenant makes the request 403 even when it is
// invalid otherwise (it was 400, and the key's own events went out).
func TestForbiddenTenantOfAnInvalidEvent(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil)
	body := "[" + event("ok-1", "acme") + `,{"event_id":"g","tenant":"globex"}]`
	resp, r := g.post(t, "key-acme", body)
	if resp.StatusCode != http.StatusForbidden || r.Accepted != 0 {
		t.Errorf("status %d %+v, want 403 with nothing accepted", resp.StatusCode, r)
	}
}

// A failed produce's cause stays in the log: franz-go's errors can name
// broker addresses, and the gateway's listener may be public.
func TestProduceErrorKeepsBrokersOutOfAnswers(t *testing.T) {
	t.Parallel()
	err := error(&produceError{public: "cannot produce 3 events to topic \"t\": Kafka did not take them",
		cause: errors.New("unable to dial: dial tcp 10.0.0.5:9092: connect: connection refused")})
	if got := publicError(fmt.Errorf("wrapped: %w", err)); strings.Contains(got, "10.0.0.5") || !strings.Contains(got, "Kafka did not take them") {
		t.Errorf("answer %q", got)
	}
	if !strings.Contains(err.Error(), "10.0.0.5:9092") {
		t.Errorf("log %q lost the cause", err.Error())
	}
}

// A chunked body cut off (the connection closed before its last chunk)
// exactly where the read buffer fills is refused, not produced: the probe
// for its end took the chunked reader's io.ErrUnexpectedEOF for the end.
func TestChunkedBodyCutAtTheBufferIsRefused(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil)
	var body strings.Builder
	for i := 0; body.Len() < minBodyBuf-600; i++ {
		body.WriteString(event(fmt.Sprintf("cut-%d", i), "acme") + "\n")
	}
	body.WriteString(strings.Repeat(" ", minBodyBuf-body.Len()))
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	req := "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer key-acme\r\nContent-Type: application/x-ndjson\r\n" +
		"Transfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(minBodyBuf, 16) + "\r\n" + body.String() + "\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite() // no last chunk
	if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil && resp.StatusCode == http.StatusAccepted {
		t.Errorf("a cut-off chunked body: status %d, want a refusal", resp.StatusCode)
	}
	// Only the next, whole request reaches the topic.
	if resp, _ := g.post(t, "key-acme", event("after", "acme")); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("the next request: status %d", resp.StatusCode)
	}
	got := consumeAll(t, g.broker.Addr(), g.opts.Topic, 1, time.Second)
	if _, ok := got["after"]; !ok || len(got) != 1 {
		t.Errorf("the topic holds %d events (want only \"after\")", len(got))
	}
}
