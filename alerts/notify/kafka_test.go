package notify

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startKafka starts the embedded broker with the given topics created and
// returns a producer client for it.
func startKafka(t *testing.T, topics ...string) (addr string, cl *kgo.Client) {
	t.Helper()
	b := kafkatest.Start(t, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if len(topics) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := kadm.NewClient(cl).CreateTopics(ctx, 1, 1, nil, topics...)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("cannot create %q: %v", topics, err)
		}
	}
	return b.Addr(), cl
}

// consumeAll reads n records of topic from the start.
func consumeAll(t *testing.T, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %s: %v", len(out), n, topic, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func TestKafkaReceiverThroughDispatcher(t *testing.T) {
	addr, cl := startKafka(t, DefaultTopic)
	rs, err := Build([]ReceiverConfig{{Name: "bus", Type: TypeKafka}}, Deps{Kafka: cl})
	if err != nil {
		t.Fatal(err)
	}
	if topic := rs[0].(*Kafka).Topic(); topic != "costpipe.alerts" {
		t.Fatalf("default topic %q", topic)
	}
	d, _, reg, res := newTestDispatcher(t, rs)
	n1, n2 := testNotification("k-1"), testNotification("k-2")
	n2.Type = TypeResolved
	d.Enqueue("bus", n1)
	d.Enqueue("bus", n2)
	for range 2 {
		if r := res.next(t); r.Err != nil || r.Attempts != 1 {
			t.Fatalf("Result = %+v", r)
		}
	}
	recs := consumeAll(t, addr, DefaultTopic, 2)
	for i, n := range []Notification{n1, n2} {
		r := recs[i]
		body, _ := n.Body()
		if string(r.Key) != n.ID || string(r.Value) != string(body) {
			t.Errorf("record %d: key %q value %s, want %q %s", i, r.Key, r.Value, n.ID, body)
		}
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		if h["type"] != n.Type || h["rule"] != n.Rule || h["content-type"] != "application/json" {
			t.Errorf("record %d headers %v", i, h)
		}
	}
	if got := metricValue(t, reg, "costpipe_alerts_notifications_total", map[string]string{"receiver": "bus", "result": "delivered"}); got != 2 {
		t.Errorf("delivered = %v, want 2", got)
	}
}

func TestKafkaReceiverTopicAndMissingTopic(t *testing.T) {
	addr, cl := startKafka(t, "team.alerts")
	k, err := NewKafka(ReceiverConfig{Name: "bus", Type: TypeKafka, Topic: "team.alerts"}, cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Deliver(context.Background(), testNotification("t-1")); err != nil {
		t.Fatal(err)
	}
	if r := consumeAll(t, addr, "team.alerts", 1); string(r[0].Key) != "t-1" {
		t.Errorf("key %q", r[0].Key)
	}
	// A topic that does not exist (and is not auto-created) is retried
	// until the attempt's context ends: an operator may still create it.
	missing, _ := NewKafka(ReceiverConfig{Name: "bus2", Type: TypeKafka, Topic: "no.such.topic"}, cl)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = missing.Deliver(ctx, testNotification("t-2"))
	if err == nil || errors.Is(err, ErrPermanent) {
		t.Errorf("missing topic: err = %v, want retryable", err)
	}
	if _, err := NewKafka(ReceiverConfig{Name: "bus3", Type: TypeKafka}, nil); err == nil {
		t.Error("kafka receiver without a client accepted")
	}
	if err := k.Deliver(context.Background(), testNotification("")); !errors.Is(err, ErrPermanent) {
		t.Errorf("empty ID: err = %v, want permanent", err)
	}
}
