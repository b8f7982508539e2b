package consumers

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/schemas"
)

// TestTopicRecreatedStopsRun: the events topic deleted and created again
// under a running consumer. franz-go keeps the old topic ID and every fetch
// fails with UNKNOWN_TOPIC_ID: the consumer logged each (30,000 lines a
// second, 775 MB in 3 minutes), and every flush's failed commit, and
// consumed nothing for ever. It now logs each once a minute, pauses between
// such polls, and after topicGoneAfter stops with ErrTopicRecreated,
// having landed what it held.
func TestTopicRecreatedStopsRun(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(schemas.DefaultTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := t.Context()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("not an event")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var buf lockedBuffer
	opts := DefaultOptions()
	opts.Brokers, opts.Group, opts.Logger, opts.DLQSpoolDir = []string{b.Addr()}, "recreated", textLogger(&buf), t.TempDir()
	opts.FlushInterval = 200 * time.Millisecond
	sink := &recSink{}
	c, err := New(opts, sink)
	if err != nil {
		t.Fatal(err)
	}
	c.topicGoneAfter = 2 * time.Second
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	// Consuming: the invalid record went to the DLQ.
	deadline := time.Now().Add(20 * time.Second)
	for counter(t, c.m.dlq.WithLabelValues(reasonInvalid)) == 0 && time.Now().Before(deadline) {
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
		if !errors.Is(err, ErrTopicRecreated) {
			t.Fatalf("Run = %v, want ErrTopicRecreated", err)
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
	if !strings.Contains(logs, "UNKNOWN_TOPIC_ID") || !strings.Contains(logs, "deleted and created again") {
		t.Errorf("logs do not say the topic was recreated:\n%.3000s", logs)
	}
	if sink.flushes == 0 {
		t.Error("nothing landed before stopping")
	}
}
