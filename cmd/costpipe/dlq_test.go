package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/consumers"
	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/schemas"
)

// dlqRecord is a DLQ record as the aggregator writes it.
func dlqRecord(value, reason string, off int) *kgo.Record {
	return &kgo.Record{Topic: schemas.DefaultDLQTopic, Value: []byte(value), Headers: []kgo.RecordHeader{
		{Key: "content-type", Value: []byte("application/json")},
		{Key: consumers.HeaderDLQReason, Value: []byte(reason)},
		{Key: consumers.HeaderDLQError, Value: []byte("refused: " + reason + "\x1b[31m")},
		{Key: consumers.HeaderDLQSourceTopic, Value: []byte(schemas.DefaultTopic)},
		{Key: consumers.HeaderDLQSourcePartition, Value: []byte("0")},
		{Key: consumers.HeaderDLQSourceOffset, Value: []byte(fmt.Sprint(off))},
	}}
}

// dlq read prints every record with its reason and source, the counts on
// stderr, the original values alone with --format values (multi-line ones
// left out and counted), JSON objects with --format json; dlq replay sends
// the selected reason back once; bad flags exit 2 naming them.
func TestDLQCommands(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := []*kgo.Record{
		dlqRecord(`{"event_id":"a"`, "invalid", 3),
		dlqRecord(`{"event_id":"f1","timestamp":"2030-01-01T00:00:00Z"}`, "too_far_in_future", 5),
		dlqRecord("{\n\"event_id\":\"m\"}", "invalid", 8),
		dlqRecord(`{"event_id":"f2","timestamp":"2030-01-01T00:00:00Z"}`, "too_far_in_future", 9),
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	brokers := []string{"--brokers", b.Addr()}

	r := run(t, "", nil, append(brokers, "dlq", "read")...)
	if r.code != 0 || !strings.Contains(r.stderr, "costpipe.events.dlq: invalid 2, too_far_in_future 2") ||
		!strings.Contains(r.stdout, "costpipe.events/0/5") || !strings.Contains(r.stdout, `{"event_id":"a"`) ||
		strings.Contains(r.stdout, "\x1b") {
		t.Fatalf("dlq read: code %d\nstdout:\n%s\nstderr:\n%s\nwant the records (escapes escaped) and the counts", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, append(brokers, "dlq", "read", "--format", "values", "--reason", "invalid")...)
	if r.code != 0 || r.stdout != `{"event_id":"a"`+"\n" || !strings.Contains(r.stderr, "1 record(s) left out") {
		t.Fatalf("dlq read --format values --reason invalid: code %d\nstdout:\n%q\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, append(brokers, "dlq", "read", "--format", "json", "--limit", "1")...)
	var obj map[string]any
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1 || json.Unmarshal([]byte(r.stdout), &obj) != nil ||
		obj["reason"] != "invalid" || obj["source"] != "costpipe.events/0/3" || obj["value"] != `{"event_id":"a"` {
		t.Fatalf("dlq read --format json --limit 1: code %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}

	r = run(t, "", nil, append(brokers, "dlq", "replay", "--reason", "too_far_in_future", "--to", "costpipe.replayed")...)
	if r.code != 1 || !strings.Contains(r.stderr, "topic costpipe.replayed does not exist") {
		t.Fatalf("dlq replay --to a missing topic: code %d\nstdout:\n%s\nstderr:\n%s; want 1, the topic named", r.code, r.stdout, r.stderr)
	}
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, nil, "costpipe.replayed"); err != nil {
		t.Fatal(err)
	}
	r = run(t, "", nil, append(brokers, "dlq", "replay", "--reason", "too_far_in_future", "--to", "costpipe.replayed")...)
	if r.code != 0 || !strings.Contains(r.stdout, "costpipe.events.dlq: sent 2 record(s) to costpipe.replayed (too_far_in_future 2)") ||
		!strings.Contains(r.stdout, "left 2 of other reasons (invalid 2)") ||
		!strings.Contains(r.stdout, "note: no cursor for too_far_in_future (in costpipe.events.dlq.replay-cursors or as the offsets of groups costpipe-dlq-replay.REASON): replayed from the start") {
		t.Fatalf("dlq replay: code %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, append(brokers, "dlq", "replay", "--reason", "too_far_in_future", "--to", "costpipe.replayed")...)
	if r.code != 0 || !strings.Contains(r.stdout, "sent 0 record(s)") || strings.Contains(r.stdout, "no cursor") {
		t.Fatalf("dlq replay again: code %d\nstdout:\n%s\nstderr:\n%s; want nothing sent twice", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, append(brokers, "dlq", "replay", "--reason", "too_far_in_future,invalid", "--to", "costpipe.replayed", "--dry-run")...)
	if r.code != 0 || !strings.Contains(r.stdout, "would send 2 record(s) to costpipe.replayed (invalid 2)") || !strings.Contains(r.stdout, "left 2 sent by an earlier replay (too_far_in_future 2)") {
		t.Fatalf("dlq replay of both reasons: code %d\nstdout:\n%s\nstderr:\n%s; want the invalid ones only", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, append(brokers, "dlq", "replay", "--reason", "invalid_rows")...)
	if r.code != 2 || !strings.Contains(r.stderr, "invalid_rows records cannot be replayed") {
		t.Errorf("dlq replay --reason invalid_rows: code %d, stderr %q; want 2 and why", r.code, r.stderr)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dlq", "read", "--format", "yaml"}, `invalid --format "yaml"`},
		{[]string{"dlq", "read", "--reason", "bogus"}, `invalid --reason "bogus"`},
		{[]string{"dlq", "read", "--since", "soon"}, `invalid --since "soon"`},
		{[]string{"dlq", "replay", "--reason", "too-old"}, `invalid --reason "too-old"`},
		{[]string{"dlq", "replay"}, "dlq replay needs --reason"},
		{[]string{"dlq", "unspool", "--dlq-spool", ""}, "invalid --dlq-spool: empty"},
	} {
		r := run(t, "", nil, append(brokers, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: code %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	r = run(t, "", nil, append(brokers, "--topic", "other", "dlq", "read")...)
	if r.code != 1 || !strings.Contains(r.stderr, "the DLQ topic does not exist: other.dlq") || r.stdout != "" {
		t.Errorf("dlq read of a topic without DLQ: code %d, stdout %q, stderr %q; want 1, no table header, and why", r.code, r.stdout, r.stderr)
	}
}

// dlq unspool sends a spool file's records to the DLQ topic and moves it to
// sent/.
func TestDLQUnspoolCommand(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 1)
	dir := t.TempDir()
	line := `{"v":2,"spooled_at":"2026-12-05T03:41:07.52Z","topic":"costpipe.events.dlq","key":null,"value":"eyJldmVudF9pZCI6ImEifQ==",` +
		`"headers":[{"key":"costpipe-dlq-reason","value":"aW52YWxpZA=="}],"source_topic":"costpipe.events","source_partition":0,"source_offset":7,"reason":"invalid","error":"x","attempts":5}`
	if err := os.WriteFile(filepath.Join(dir, "dlq-20261205.jsonl"), []byte(line+"\n"+line+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", nil, "--brokers", b.Addr(), "dlq", "unspool", "--dlq-spool", dir, "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "would send 2 record(s) of 1 file(s)") {
		t.Fatalf("unspool --dry-run: code %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, "--brokers", b.Addr(), "dlq", "unspool", "--dlq-spool", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "sent 2 record(s) of 1 file(s) (costpipe.events.dlq 2)") {
		t.Fatalf("unspool: code %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "dlq-*")); len(left) != 0 {
		t.Errorf("spool files left after unspool: %v", left)
	}
	r = run(t, "", nil, "--brokers", b.Addr(), "dlq", "read")
	if r.code != 0 || !strings.Contains(r.stderr, "invalid 2") {
		t.Errorf("dlq read after unspool: code %d, stderr %q; want the 2 records", r.code, r.stderr)
	}
}
