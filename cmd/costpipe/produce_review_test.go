package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/schemas"
)

// consumeN reads n records from the events topic of the broker at addr.
func consumeN(t *testing.T, addr string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(schemas.DefaultTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	if len(got) != n {
		t.Fatalf("consumed %d records, want %d", len(got), n)
	}
	return got
}

// TestProduceKeepsUnknownFields: a field a newer aggregator understands
// reaches the topic; produce forwards the line, not a re-encoding.
func TestProduceKeepsUnknownFields(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 1)
	line := strings.Replace(goodEvent, `"status":"ok"`, `"status":"ok","audio_input_tokens":500`, 1)
	r := run(t, "  "+line+"\r\n", []string{"COSTPIPE_BROKERS=" + b.Addr()}, "produce")
	if r.code != 0 || !strings.Contains(r.stdout, "sent 1, rejected 0, failed 0") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	got := consumeN(t, b.Addr(), 1)
	if string(got[0].Value) != line {
		t.Errorf("value\n%s\nwant the line as given\n%s", got[0].Value, line)
	}
	if string(got[0].Key) != "acme\x00gpt-4o" || len(got[0].Headers) != 1 || string(got[0].Headers[0].Value) != "application/json" {
		t.Errorf("key %q headers %v", got[0].Key, got[0].Headers)
	}
}

// TestProduceWarnsOfEventsTheAggregatorRefuses: events beyond the
// aggregators' --max-event-age or --max-future are sent (a backfill group
// may take them) with a warning; they were counted "sent" and went, unseen,
// to the DLQ.
func TestProduceWarnsOfEventsTheAggregatorRefuses(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 1)
	now := time.Now().UTC()
	at := func(id string, ts time.Time) string {
		return strings.Replace(strings.Replace(goodEvent, `"e1"`, `"`+id+`"`, 1), "2025-11-01T10:00:00Z", ts.Format(time.RFC3339), 1)
	}
	in := strings.Join([]string{at("fresh", now.Add(-time.Hour)), at("old", now.Add(-30*24*time.Hour)), at("ahead", now.Add(time.Hour))}, "\n") + "\n"
	r := run(t, in, []string{"COSTPIPE_BROKERS=" + b.Addr()}, "produce")
	if r.code != 0 || !strings.Contains(r.stdout, "sent 3, rejected 0, failed 0") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"stdin: warning: 1 event(s) older than --max-event-age 168h0m0s (the first on line 2)",
		"stdin: warning: 1 event(s) more than --max-future 5m0s ahead (the first on line 3)",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q, want %q", r.stderr, want)
		}
	}
	// The aggregators' bounds, from their variables: a backfill group's.
	r = run(t, in, []string{"COSTPIPE_BROKERS=" + b.Addr(), "COSTPIPE_MAX_EVENT_AGE=1000h", "COSTPIPE_MAX_FUTURE=2h"}, "produce")
	if r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Errorf("with the bounds raised: exit %d, stderr %q; want no warning", r.code, r.stderr)
	}
}

// TestProduceStopsWhenKafkaIsDown: with no broker, produce gives up soon
// with one message instead of one error line (and one timeout) per line.
func TestProduceStopsWhenKafkaIsDown(t *testing.T) {
	t.Parallel()
	var sb strings.Builder
	const n = 50000
	for i := range n {
		sb.WriteString(strings.Replace(goodEvent, `"e1"`, fmt.Sprintf(`"e%d"`, i), 1))
		sb.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := run(t, "", []string{"COSTPIPE_BROKERS=127.0.0.1:1"}, "produce", "--timeout", "1s", path)
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %v", d)
	}
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	if strings.Contains(r.stdout, fmt.Sprintf("failed %d", n)) {
		t.Errorf("every line was tried: %s", r.stdout)
	}
	if lines := strings.Count(r.stderr, "\n"); lines > 25 {
		t.Errorf("%d stderr lines, want at most ~22:\n%.2000s", lines, r.stderr)
	}
	if !strings.Contains(r.stderr, "did not acknowledge") || !strings.Contains(r.stderr, "more delivery failures not shown") ||
		!strings.Contains(r.stderr, "sent 0, failed ") {
		t.Errorf("stderr lacks the stop message and the count of hidden failures:\n%.3000s", r.stderr)
	}
}

// TestProduceGzipInput: a gzip file (or gzip on stdin) is decompressed; a
// corrupt one is an error naming the file.
func TestProduceGzipInput(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 1)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	fmt.Fprintf(zw, "%s\n%s\n", goodEvent, strings.Replace(goodEvent, `"e1"`, `"e2"`, 1))
	zw.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl.gz")
	if err := os.WriteFile(path, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"COSTPIPE_BROKERS=" + b.Addr()}
	r := run(t, "", env, "produce", path)
	if r.code != 0 || !strings.Contains(r.stdout, "sent 2, rejected 0, failed 0") {
		t.Fatalf("file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, gz.String(), env, "produce")
	if r.code != 0 || !strings.Contains(r.stdout, "sent 2, rejected 0, failed 0") {
		t.Fatalf("stdin: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	consumeN(t, b.Addr(), 4)

	corrupt := append([]byte(nil), gz.Bytes()...)
	corrupt[len(corrupt)-6] ^= 0xff // the CRC
	bad := filepath.Join(dir, "bad.jsonl.gz")
	if err := os.WriteFile(bad, corrupt, 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, "", env, "produce", bad)
	if r.code == 0 || !strings.Contains(r.stderr, bad) || !strings.Contains(r.stderr, "gzip") {
		t.Errorf("corrupt gzip: exit %d, stderr %q; want an error naming the file", r.code, r.stderr)
	}
	badHeader := filepath.Join(dir, "badheader.gz")
	if err := os.WriteFile(badHeader, []byte{0x1f, 0x8b, 0x01}, 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, "", env, "produce", badHeader)
	if r.code == 0 || !strings.Contains(r.stderr, badHeader) {
		t.Errorf("corrupt gzip header: exit %d, stderr %q; want an error naming the file", r.code, r.stderr)
	}
}
