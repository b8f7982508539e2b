package consumers

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/pipelines/usage"
	"github.com/costpipe/costpipe/schemas"
	"github.com/costpipe/costpipe/schemas/arrowcodec"
)

// benchEvents returns n typical events over 20 tenants × 8 models, one every
// 50µs of event time ending at now (20k events/s of traffic per partition:
// the dedupe window holds its maximum and evicts, as under production load).
func benchEvents(n int, now time.Time) []schemas.Event {
	models := []struct{ provider, model string }{
		{"openai", "gpt-4o"}, {"openai", "gpt-4o-mini"}, {"openai", "gpt-4.1"}, {"anthropic", "claude-sonnet-4-5-20250929"},
		{"anthropic", "claude-haiku-4-5"}, {"google", "gemini-2.5-flash"}, {"deepseek", "deepseek-chat"}, {"mistral", "mistral-small-latest"},
	}
	out := make([]schemas.Event, n)
	for i := range out {
		m := models[i%len(models)]
		out[i] = schemas.Event{
			EventID: fmt.Sprintf("0b7e3f1c-5d2a-4e8f-9a61-%012d", i), Timestamp: now.Add(-time.Duration(n-i) * 50 * time.Microsecond),
			Tenant: fmt.Sprintf("tenant-%02d", i%20), Provider: m.provider, Model: m.model, Status: schemas.StatusOK,
			Application: "support-assistant", Operation: "chat", Region: "us-east-1",
			InputTokens: int64(1500 + i%700), CachedInputTokens: int64(i % 1000), OutputTokens: int64(300 + i%200), ReasoningTokens: int64(i % 50),
			LatencyMs: float64(800 + i%2000), HasLatency: true, TTFTMs: float64(200 + i%300), HasTTFT: true,
		}
	}
	return out
}

// benchConsumer is a Consumer wired to a real usage pipeline that aggregates
// without landing: the per-record work of `costpipe aggregate` minus Kafka I/O.
func benchConsumer(b *testing.B, now time.Time, dedupe bool) (*Consumer, *partState, *usage.Pipeline) {
	opts := DefaultOptions()
	if !dedupe {
		opts.DedupeWindow = 0
	}
	opts.Now = func() time.Time { return now }
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.DLQSpoolDir = b.TempDir()
	popts := usage.DefaultOptions()
	popts.Logger = opts.Logger
	pipe, err := usage.New(nil, popts)
	if err != nil {
		b.Fatal(err)
	}
	pipe.AssignLanded([]int32{0}, nil)
	c, err := New(opts, pipe)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.cl.Close)
	st := &partState{assigned: true, committed: -1, consumed: -1}
	if dedupe {
		st.dedupe = newDedupe(opts.DedupeWindow, opts.DedupeMaxIDs, c.seeds)
	}
	c.parts[0] = st
	c.setAgeBounds() // as processFetches does once per partition of a poll
	return c, st, pipe
}

// setID writes n as 12 decimal digits into dst.
func setID(dst []byte, n int) {
	for k := 11; k >= 0; k-- {
		dst[k] = byte('0' + n%10)
		n /= 10
	}
}

// BenchmarkAggregateJSON: decode + validate + (dedupe) + price + aggregate
// of JSON records, one event each: the per-record work of `costpipe
// aggregate` without Kafka I/O. dedupe=on holds a full 1M-id window.
func BenchmarkAggregateJSON(b *testing.B) {
	b.Run("dedupe=off", func(b *testing.B) { benchAggregateJSON(b, false) })
	b.Run("dedupe=on", func(b *testing.B) { benchAggregateJSON(b, true) })
}

func benchAggregateJSON(b *testing.B, dedupe bool) {
	now := time.Now().UTC()
	events := benchEvents(1<<16, now)
	recs := make([]*kgo.Record, len(events))
	for i := range events {
		recs[i] = &kgo.Record{Value: schemas.AppendJSON(nil, &events[i])}
	}
	idPos := make([]int, len(recs))
	for i := range recs {
		idPos[i] = bytes.Index(recs[i].Value, []byte(events[i].EventID)) + len(events[i].EventID) - 12
	}
	c, st, _ := benchConsumer(b, now, dedupe)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(recs)
		r := recs[j]
		r.Offset = int64(i)
		if dedupe {
			setID(r.Value[idPos[j]:idPos[j]+12], i) // every event_id unique: no duplicates
		}
		c.process(st, r)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAggregateArrow: the same for Arrow IPC records of 1000 events.
func BenchmarkAggregateArrow(b *testing.B) {
	b.Run("dedupe=off", func(b *testing.B) { benchAggregateArrow(b, false) })
	b.Run("dedupe=on", func(b *testing.B) { benchAggregateArrow(b, true) })
}

func benchAggregateArrow(b *testing.B, dedupe bool) {
	now := time.Now().UTC()
	const perRecord = 1000
	events := benchEvents(1<<16, now)
	var recs []*kgo.Record
	var idPos [][]int
	enc := arrowcodec.NewEncoder(nil)
	for i := 0; i+perRecord <= len(events); i += perRecord {
		v, err := enc.Encode(events[i : i+perRecord])
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Value: v, Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte(schemas.ContentTypeArrow)}}})
		pos := make([]int, perRecord)
		for k := range pos {
			pos[k] = bytes.Index(v, []byte(events[i+k].EventID)) + len(events[i+k].EventID) - 12
		}
		idPos = append(idPos, pos)
	}
	c, st, _ := benchConsumer(b, now, dedupe)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; n < b.N; i++ {
		j := i % len(recs)
		r := recs[j]
		r.Offset = int64(i)
		if dedupe { // unique ids matter only to the dedupe window
			for k, p := range idPos[j] {
				setID(r.Value[p:p+12], n+k)
			}
		}
		c.process(st, r)
		n += perRecord
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
