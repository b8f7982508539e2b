package producers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/schemas"
)

// TestSendLinesForwardsOriginalLine: a valid line reaches the topic byte for
// byte (minus surrounding whitespace), so a field this version does not know
// survives for a newer aggregator (the contract's forward compatibility).
func TestSendLinesForwardsOriginalLine(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(schemas.DefaultTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	lines := []string{
		`{"event_id":"e-\u00e9 1","timestamp":"2025-11-01T10:00:00Z","tenant":"acme","provider":"openai","model":"gpt-4o","status":"ok","input_tokens":10,"audio_input_tokens":500,"future":{"x":[1,2]}}`,
		`{"model":"gpt-4o", "event_id":"e2","timestamp":"2025-11-01T10:00:01Z","tenant":"acme","provider":"openai","status":"ok"}`,
	}
	// A byte order mark first, as editors on Windows save UTF-8.
	input := "\xEF\xBB\xBF  " + lines[0] + " \r\n\t" + lines[1] + "\n"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rep, err := SendLines(ctx, cl, schemas.DefaultTopic, strings.NewReader(input), func(r Rejection) { t.Errorf("rejected: %+v", r) })
	if err != nil || rep.Sent != 2 || rep.Read != 2 {
		t.Fatalf("SendLines: %+v, %v", rep, err)
	}
	var got []*kgo.Record
	for len(got) < 2 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	if len(got) != 2 {
		t.Fatalf("consumed %d records, want 2", len(got))
	}
	for i, rec := range got {
		if string(rec.Value) != lines[i] {
			t.Errorf("record %d value\n%s\nwant the original line\n%s", i, rec.Value, lines[i])
		}
		if string(rec.Key) != "acme\x00gpt-4o" {
			t.Errorf("record %d key %q", i, rec.Key)
		}
		if len(rec.Headers) != 1 || rec.Headers[0].Key != schemas.HeaderContentType || string(rec.Headers[0].Value) != schemas.ContentTypeJSON {
			t.Errorf("record %d headers %v", i, rec.Headers)
		}
		var ev schemas.Event
		if err := schemas.DecodeJSON(rec.Value, &ev); err != nil {
			t.Errorf("record %d does not decode: %v", i, err)
		}
		if want := []string{"e-é 1", "e2"}[i]; ev.EventID != want {
			t.Errorf("record %d event_id %q, want %q", i, ev.EventID, want)
		}
	}
}

// TestSendLinesStopsWhenKafkaIsDown: with no broker reachable, SendLines
// gives up after a bounded number of failures in a row instead of failing
// every line of the input one delivery timeout after another.
func TestSendLinesStopsWhenKafkaIsDown(t *testing.T) {
	t.Parallel()
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"),
		kgo.RecordDeliveryTimeout(time.Second), kgo.AllowIdempotentProduceCancellation(),
		kgo.MaxBufferedRecords(500))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 20000
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, `{"event_id":"e%d","timestamp":"2025-11-01T10:00:00Z","tenant":"acme","provider":"openai","model":"gpt-4o","status":"ok"}`+"\n", i)
	}
	var rejections atomic.Int64
	start := time.Now()
	rep, err := SendLines(context.Background(), cl, schemas.DefaultTopic, strings.NewReader(sb.String()), func(r Rejection) {
		if !r.Delivery {
			t.Errorf("line %d: not a delivery failure: %v", r.Line, r.Err)
		}
		rejections.Add(1)
	})
	if !errors.Is(err, ErrDeliveryStopped) {
		t.Fatalf("err %v, want ErrDeliveryStopped", err)
	}
	if rep.Sent != 0 || rep.Failed == 0 || rep.Failed != rejections.Load() || rep.Read >= n {
		t.Errorf("report %+v (%d rejections), want nothing sent and reading stopped early", rep, rejections.Load())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v to give up", d)
	}
}

// When delivery stops while the reader waits for room (maxLinesInFlight
// records awaiting their callback), the line it holds is not sent: it must
// not count as read either, or "stopped after reading N lines" makes a
// resume from line N+1 skip it.
func TestSendLinesStopAccountsForEveryLine(t *testing.T) {
	t.Parallel()
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"),
		kgo.RecordDeliveryTimeout(time.Second), kgo.AllowIdempotentProduceCancellation(),
		kgo.MaxBufferedRecords(4*maxLinesInFlight))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := maxLinesInFlight + 500
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, `{"event_id":"e%d","timestamp":"2025-11-01T10:00:00Z","tenant":"acme","provider":"openai","model":"gpt-4o","status":"ok"}`+"\n", i)
	}
	rep, err := SendLinesWith(context.Background(), cl, schemas.DefaultTopic, strings.NewReader(sb.String()), LinesOptions{OnReject: func(Rejection) {}})
	if !errors.Is(err, ErrDeliveryStopped) {
		t.Fatalf("err %v, want ErrDeliveryStopped", err)
	}
	if rep.Read == 0 || rep.Sent+rep.Failed+rep.Rejected != rep.Read {
		t.Errorf("report %+v: sent + failed + rejected is not the lines read", rep)
	}
}
