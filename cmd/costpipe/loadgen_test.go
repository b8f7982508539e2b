package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/schemas"
)

// jsonLines decodes every line of s as an event.
func jsonLines(t *testing.T, s string) []schemas.Event {
	t.Helper()
	var out []schemas.Event
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var e schemas.Event
		if err := schemas.DecodeJSON(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %d: %v: %s", len(out)+1, err, sc.Text())
		}
		out = append(out, e)
	}
	return out
}

func TestLoadgenStdout(t *testing.T) {
	t.Parallel()
	start := time.Now()
	// Every run's clock starts at the same time: provider incidents are
	// drawn per 10-minute slot of the event time, so runs on either side of
	// a slot's end would fail different calls and then differ.
	const clock = "2026-03-04T12:03:00Z"
	r := run(t, "", nil, "loadgen", "--output", "stdout", "--rate", "2000", "--duration", "1s", "--seed", "7", "--now", clock)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a 1s run took %v", d)
	}
	evs := jsonLines(t, r.stdout)
	if len(evs) != 2000 {
		t.Fatalf("%d lines, want 2000", len(evs))
	}
	if c, _ := time.Parse(time.RFC3339, clock); evs[0].Timestamp.Before(c) || evs[1999].Timestamp.After(c.Add(10*time.Second)) {
		t.Errorf("timestamps %v … %v, want from --now %s on", evs[0].Timestamp, evs[1999].Timestamp, clock)
	}
	if !strings.Contains(r.stderr, "loadgen: wrote 2000 events") || !strings.Contains(r.stderr, "/s (target 2000/s)") {
		t.Errorf("stderr lacks the live line or the summary:\n%s", r.stderr)
	}
	// The same seed gives the same events (but for steady timestamps).
	again := jsonLines(t, run(t, "", nil, "loadgen", "--output", "stdout", "--rate", "2000", "--duration", "100ms", "--seed", "7", "--quiet", "--now", clock).stdout)
	for i := range again {
		again[i].Timestamp = evs[i].Timestamp
		if !again[i].Equal(&evs[i]) {
			t.Fatalf("event %d differs between two runs with --seed 7:\n%+v\n%+v", i, evs[i], again[i])
		}
	}
	if len(again) != 200 {
		t.Errorf("second run wrote %d lines, want 200", len(again))
	}
	// Without --seed, two runs send the same traffic as different calls:
	// new event ids, the calls as seed 1 gives them (but for what the
	// generator derives from an id, such as the 1-hour cache writes).
	a := jsonLines(t, run(t, "", nil, "loadgen", "--output", "stdout", "--rate", "2000", "--duration", "50ms", "--quiet", "--now", clock).stdout)
	b := jsonLines(t, run(t, "", nil, "loadgen", "--output", "stdout", "--rate", "2000", "--duration", "50ms", "--quiet", "--now", clock).stdout)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("two runs without --seed wrote %d and %d lines", len(a), len(b))
	}
	for i := range a {
		if a[i].EventID == b[i].EventID {
			t.Fatalf("event %d has the same id %s in two runs without --seed", i, a[i].EventID)
		}
		if a[i].Tenant != b[i].Tenant || a[i].Model != b[i].Model || a[i].InputTokens != b[i].InputTokens || a[i].OutputTokens != b[i].OutputTokens {
			t.Fatalf("event %d differs beyond its id between two runs without --seed:\n%+v\n%+v", i, a[i], b[i])
		}
	}
}

func TestLoadgenGrowthBackdates(t *testing.T) {
	t.Parallel()
	r := run(t, "", []string{"COSTPIPE_LOADGEN_SCENARIO=growth"}, "loadgen", "--output", "stdout",
		"--rate", "20000", "--duration", "500ms", "--span", "240h", "--growth-factor", "10", "--quiet")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	evs := jsonLines(t, r.stdout)
	now := time.Now()
	var first, last int
	for _, e := range evs {
		age := now.Sub(e.Timestamp)
		if age < 0 || age > 241*time.Hour {
			t.Fatalf("timestamp %v outside the last 10 days", e.Timestamp)
		}
		if age > 9*24*time.Hour {
			first++
		} else if age < 24*time.Hour {
			last++
		}
	}
	if len(evs) != 10000 || first == 0 || float64(last)/float64(first) < 7 || float64(last)/float64(first) > 14 {
		t.Errorf("%d events, first day %d, last day %d: want 10000 and a ratio near 10", len(evs), first, last)
	}
}

func TestLoadgenKafka(t *testing.T) {
	t.Parallel()
	for _, enc := range []string{"json", "arrow"} {
		t.Run(enc, func(t *testing.T) {
			b := kafkatest.Start(t, 3)
			r := run(t, "", nil, "--brokers", b.Addr(), "loadgen", "--rate", "5000", "--duration", "200ms", "--encoding", enc, "--quiet")
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, "kafka: sent 1000, failed 0, dropped 0") {
				t.Errorf("stderr lacks the kafka summary:\n%s", r.stderr)
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(schemas.DefaultTopic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			records := 0
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			want := map[string]int{"json": 1000, "arrow": 3} // arrow: a record per partition, or a few
			for records < want[enc] && ctx.Err() == nil {
				cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
					records++
					ct := string(r.Headers[0].Value)
					if enc == "arrow" && ct != schemas.ContentTypeArrow || enc == "json" && ct != schemas.ContentTypeJSON {
						t.Errorf("record with content-type %q", ct)
					}
				})
			}
			if records < want[enc] {
				t.Errorf("read %d records, want at least %d", records, want[enc])
			}
		})
	}
}

func TestLoadgenHTTP(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		events int
		calls  int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if r.URL.Path != "/v1/events" || r.Header.Get("Authorization") != "Bearer sk-test" ||
			r.Header.Get("Content-Type") != "application/x-ndjson" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"accepted":0,"rejected":[],"rejected_count":0,"error":"bad request line"}`)
			return
		}
		if calls == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"accepted":0,"rejected":[],"rejected_count":0,"error":"busy"}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		n := strings.Count(string(body), "\n")
		events += n
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"accepted":`+strconv.Itoa(n)+`,"rejected":[],"rejected_count":0}`)
	}))
	defer srv.Close()
	r := run(t, "", []string{"COSTPIPE_API_KEY=sk-test"}, "loadgen", "--output", srv.URL,
		"--rate", "5000", "--duration", "200ms", "--batch", "300", "--quiet")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	mu.Lock() // a handler may still be finishing after the client exited
	gotEvents, gotCalls := events, calls
	mu.Unlock()
	if gotEvents != 1000 || gotCalls != 5 { // 300+300+300+100, one batch retried
		t.Errorf("gateway got %d events in %d calls, want 1000 in 5", gotEvents, gotCalls)
	}
	if !strings.Contains(r.stderr, "gateway: accepted 1000, rejected 0, 5 requests, 1 retries") {
		t.Errorf("stderr lacks the gateway summary:\n%s", r.stderr)
	}

	bad := run(t, "", nil, "loadgen", "--output", srv.URL, "--rate", "1000", "--duration", "100ms", "--quiet")
	if bad.code != 1 || !strings.Contains(bad.stderr, "401 Unauthorized: bad request line") {
		t.Errorf("without a key: exit %d, stderr:\n%s", bad.code, bad.stderr)
	}
}

func TestLoadgenUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"loadgen", "--output", "stdout", "--scenario", "spiky"},
		{"loadgen", "--output", "ftp://x"},
		{"loadgen", "--output", "stdout", "--rate", "0"},
		{"loadgen", "--encoding", "avro"},
		{"loadgen", "--output", "kafka", "--brokers", "127.0.0.1:1", "--timeout", "0", "--duration", "1s"}, // would wait for ever
	} {
		r := run(t, "", nil, args...)
		if r.code != 2 || r.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2", args, r.code, r.stdout, r.stderr)
		}
	}
}
