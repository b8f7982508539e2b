package consumers

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/schemas"
)

// landSink counts the events its flushes landed.
type landSink struct {
	recSink
	landed int
}

func (s *landSink) Flush(ctx context.Context) error {
	n := s.windows
	if err := s.recSink.Flush(ctx); err != nil {
		return err
	}
	s.landed += n
	return nil
}

// TestTopicRecreatedStopsRun: the events topic deleted and created again
// under a running consumer. franz-go keeps the old topic ID and every fetch
// fails with UNKNOWN_TOPIC_ID: the consumer logged each (30,000 lines a
// second, 775 MB in 3 minutes), and every flush's failed commit, and
// consumed nothing for ever. It now logs each once a minute, pauses between
// such polls, checks with Kafka that the topic's ID changed, and stops with
// ErrTopicRecreated, having landed what it held and committed nothing: the
// old log's offsets would apply to the new topic.
func TestTopicRecreatedStopsRun(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(schemas.DefaultTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := t.Context()
	e := schemas.Event{EventID: "e1", Timestamp: time.Now().Add(-time.Minute), Tenant: "t", Provider: "openai", Model: "gpt-4o",
		Status: schemas.StatusOK, InputTokens: 1}
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: e.Key(), Value: schemas.AppendJSON(nil, &e)}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var buf lockedBuffer
	opts := DefaultOptions()
	opts.Brokers, opts.Group, opts.Logger, opts.DLQSpoolDir = []string{b.Addr()}, "recreated", textLogger(&buf), t.TempDir()
	opts.FlushInterval = time.Hour // the event is held until the stop lands it
	sink := &landSink{}
	c, err := New(opts, sink)
	if err != nil {
		t.Fatal(err)
	}
	c.gone.after = 2 * time.Second
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for counter(t, c.m.eventsIn) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the event was not consumed in 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteTopic(ctx, schemas.DefaultTopic); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, schemas.DefaultTopic); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, ErrTopicRecreated) || !strings.Contains(err.Error(), "and created again") {
			t.Fatalf("Run = %v, want ErrTopicRecreated saying the topic was created again", err)
		}
		if !strings.Contains(err.Error(), "Landing marks ahead of the log") {
			t.Errorf("Run = %v, want the docs' section named", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run still running a minute after the topic was recreated")
	}
	t.Logf("stopped %v after the topic was recreated", time.Since(start).Round(time.Millisecond))
	logs := buf.String()
	for _, msg := range []string{`msg="fetch error"`, `msg="cannot commit offsets`} {
		if n := strings.Count(logs, msg); n > 2 {
			t.Errorf("%d %s lines in %v, want one a minute:\n%.2000s", n, msg, time.Since(start), logs)
		}
	}
	if !strings.Contains(logs, "UNKNOWN_TOPIC_ID") || !strings.Contains(logs, "offsets not committed: the topic was replaced") {
		t.Errorf("logs do not say the topic was replaced and nothing committed:\n%.3000s", logs)
	}
	if sink.landed != 1 {
		t.Errorf("landed %d events before stopping, want the 1 held", sink.landed)
	}
	offs, err := adm.FetchOffsets(ctx, "recreated")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range offs.Offsets().Sorted() {
		t.Errorf("committed %s/%d at %d for the new topic, want nothing", o.Topic, o.Partition, o.At)
	}
}

// TestTopicGoneNeedsARunAndKafka: a passing UNKNOWN_TOPIC_ID (a broker
// behind on metadata, a leader moving) does not stop a consumer: a run of
// them ends once none came for topicGoneQuiet, and one that lasted is
// checked with Kafka, which still has the topic under the ID fetched.
func TestTopicGoneNeedsARunAndKafka(t *testing.T) {
	t.Parallel()
	g := topicGone{after: 30 * time.Second, quiet: 5 * time.Second}
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	g.note(t0)
	g.note(t0.Add(time.Second))
	if g.due(t0.Add(2 * time.Second)) {
		t.Error("due 2 s into a run, want after 30 s")
	}
	if g.due(t0.Add(40*time.Second)) || !g.since.IsZero() {
		t.Error("a run whose last error is 39 s old is still counted, want it ended")
	}
	for s := 0; s <= 31; s++ { // an error a second for 31 s
		g.note(t0.Add(time.Duration(100+s) * time.Second))
	}
	if !g.due(t0.Add(131 * time.Second)) {
		t.Error("a run of 31 s is not due, want it checked")
	}

	b := kafkatest.Start(t, 1)
	opts := DefaultOptions()
	opts.Brokers, opts.Group, opts.Logger, opts.DLQSpoolDir = []string{b.Addr()}, "gone", slog.New(slog.DiscardHandler), t.TempDir()
	c, err := New(opts, &recSink{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.cl.Close()
	td, err := c.adm.ListTopics(t.Context(), opts.Topic)
	if err != nil {
		t.Fatal(err)
	}
	c.gone = topicGone{after: time.Second, quiet: time.Hour, fetchedID: [16]byte(td[opts.Topic].ID)}
	now := time.Now()
	c.gone.note(now.Add(-2 * time.Second))
	c.gone.note(now)
	if err := c.checkTopicGone(t.Context()); err != nil {
		t.Errorf("checkTopicGone of a topic Kafka still has under the ID fetched: %v, want nil", err)
	}
	c.gone.fetchedID[0]++ // as if fetched under the ID of a topic since deleted and created again
	c.gone.since = now.Add(-2 * time.Second)
	if err := c.checkTopicGone(t.Context()); !errors.Is(err, ErrTopicRecreated) {
		t.Errorf("checkTopicGone of a topic with another ID than fetched: %v, want ErrTopicRecreated", err)
	}
}
