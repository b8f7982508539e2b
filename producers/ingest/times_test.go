package ingest

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// at is an event for acme at ts (RFC 3339 string, or a JSON number as is).
func at(id, ts string) string {
	if !strings.HasPrefix(ts, "1") {
		ts = `"` + ts + `"`
	}
	return strings.Replace(event(id, "acme"), `"2025-11-01T10:00:00.123Z"`, ts, 1)
}

// TestEventTimeBounds: an event the aggregator would send to its DLQ as
// too old (--max-event-age) or too far ahead (--max-future) is an invalid
// event of the batch, by the gateway's clock: listed with its index,
// event_id and why, the others accepted (400), as for any invalid event;
// on /v1/traces a rejected span of a partial success.
func TestEventTimeBounds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 21, 12, 0, 0, 0, time.UTC)
	if d := DefaultOptions(); d.MaxEventAge != 7*24*time.Hour || d.MaxFuture != 5*time.Minute {
		t.Fatalf("defaults %s and %s, want the aggregator's 168h and 5m", d.MaxEventAge, d.MaxFuture)
	}
	g := startGateway(t, func(o *Options) {
		d := DefaultOptions()
		o.MaxEventAge, o.MaxFuture = d.MaxEventAge, d.MaxFuture
		o.Now = func() time.Time { return now }
	})
	rfc := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	body := "[" + strings.Join([]string{
		at("ok-0", rfc(-time.Hour)),
		at("old-1", rfc(-8*24*time.Hour)),
		at("ahead-2", rfc(10*time.Minute)),
		at("secs-3", strconv.FormatInt(now.Add(-time.Minute).Unix(), 10)), // Unix seconds: 1970 as milliseconds
		at("ok-4", rfc(-7*24*time.Hour+time.Second)),
		at("ok-5", rfc(5*time.Minute)),
		at("ok-6", strconv.FormatInt(now.Add(-time.Minute).UnixMilli(), 10)),
	}, ",\n") + "]"
	resp, r := g.post(t, "key-acme", body)
	if resp.StatusCode != http.StatusBadRequest || r.Accepted != 4 || r.RejectedCount != 3 || r.Error != "" {
		t.Fatalf("status %d, body %+v; want 400, 4 accepted, 3 rejected, no error", resp.StatusCode, r)
	}
	for i, w := range []struct {
		index int
		id    string
		want  []string
	}{
		{1, "old-1", []string{`"timestamp" = "2026-03-13T12:00:00Z"`, "8 days old, beyond --max-event-age 168h0m0s", "DLQ"}},
		{2, "ahead-2", []string{`"timestamp" = "2026-03-21T12:10:00Z"`, "10m0s in the future, beyond --max-future 5m0s"}},
		{3, "secs-3", []string{`"timestamp" = "1970-01-`, "beyond --max-event-age", "looks like seconds"}},
	} {
		rj := r.Rejected[i]
		for _, s := range w.want {
			if rj.Index != w.index || rj.EventID != w.id || !strings.Contains(rj.Error, s) {
				t.Errorf("rejection %d = %+v; want index %d, id %q, error containing %q", i, rj, w.index, w.id, s)
			}
		}
	}
	got := consumeAll(t, g.broker.Addr(), g.opts.Topic, 4, 300*time.Millisecond)
	for _, id := range []string{"ok-0", "ok-4", "ok-5", "ok-6"} {
		if _, ok := got[id]; !ok || len(got) != 4 {
			t.Errorf("topic holds %v, want the 4 events in bounds", keys(got))
		}
	}
	// A whole request of old events accepts none (400).
	if resp, r := g.post(t, "key-acme", at("old-7", "2025-11-01T10:00:00Z")); resp.StatusCode != http.StatusBadRequest || r.Accepted != 0 || r.RejectedCount != 1 {
		t.Errorf("one old event: %d %+v, want 400 rejecting it", resp.StatusCode, r)
	}

	// OTLP: a span's start time is the event's timestamp.
	td := testTraces(map[string]any{"service.name": "chat-ui"},
		func(sp ptrace.Span) { setStart(sp, now.Add(-time.Minute)) },
		func(sp ptrace.Span) { setStart(sp, now.Add(-8*24*time.Hour)) },
		func(sp ptrace.Span) { setStart(sp, now.Add(10*time.Minute)) })
	resp, out := postOTLP(t, g, "key-acme", "application/x-protobuf", protoBody(t, td))
	er := ptraceotlp.NewExportResponse()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP: status %d %q, want 200 with a partial success", resp.StatusCode, out)
	}
	if err := er.UnmarshalProto(out); err != nil {
		t.Fatal(err)
	}
	ps := er.PartialSuccess()
	msg := ps.ErrorMessage()
	if ps.RejectedSpans() != 2 || !strings.HasPrefix(msg, "rejected 2 of 3 span(s)") || !strings.Contains(msg, "beyond --max-event-age 168h0m0s") ||
		!strings.Contains(msg, "beyond --max-future 5m0s") || !strings.Contains(msg, "(from start_time_unix_nano)") {
		t.Errorf("OTLP partial success: %d rejected, %q", ps.RejectedSpans(), msg)
	}
	if got := consumeAll(t, g.broker.Addr(), g.opts.Topic, 5, 300*time.Millisecond); len(got) != 5 {
		t.Errorf("topic holds %v, want the OTLP span in bounds too", keys(got))
	}
}

// setStart moves sp to start at ts, keeping its duration.
func setStart(sp ptrace.Span, ts time.Time) {
	d := sp.EndTimestamp() - sp.StartTimestamp()
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(ts))
	sp.SetEndTimestamp(sp.StartTimestamp() + d)
}

// TestOptionsValidateTimeBounds: the bounds and the clock are checked.
func TestOptionsValidateTimeBounds(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		edit func(*Options)
		want string
	}{
		{func(o *Options) { o.MaxEventAge = 0 }, "cannot use max event age 0s: must be positive"},
		{func(o *Options) { o.MaxFuture = -time.Second }, "cannot use max future -1s: must be 0 or more"},
		{func(o *Options) { o.Now = nil }, "without a clock"},
	} {
		o := DefaultOptions()
		o.InsecureNoAuth = true
		c.edit(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate: %v, want %q", err, c.want)
		}
	}
}
