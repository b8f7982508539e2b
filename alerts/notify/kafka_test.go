package notify

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
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

// silentKafka starts a kfake broker with DefaultTopic that takes every
// produce request and does not answer it until the test ends, and returns a
// client built with franz-go's defaults (an idempotent producer, as alerts
// run's) and a channel that receives once per produce request the broker
// holds. The client (bounded) and then the broker are closed in t.Cleanup.
func silentKafka(t *testing.T) (*kgo.Client, <-chan struct{}) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, DefaultTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	wake := make(chan struct{})
	held := make(chan struct{}, 64)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		select {
		case held <- struct{}{}:
		default:
		}
		c.SleepControl(func() { <-wake })
		return nil, nil, false
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(wake) })
	// First, while the broker still holds the request: shutdown closes the
	// client after the dispatcher, and must not hang there either.
	t.Cleanup(func() { closeWithin(t, "the Kafka client", 10*time.Second, cl.Close) })
	return cl, held
}

// closeWithin runs closeFn and fails the test if it takes longer than limit.
func closeWithin(t *testing.T, what string, limit time.Duration, closeFn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { closeFn(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		t.Errorf("closing %s took more than %s", what, limit)
	}
}

// waitHeld waits until the broker holds a produce request.
func waitHeld(t *testing.T, held <-chan struct{}) {
	t.Helper()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the produce request did not reach the broker within 10 s")
	}
}

// A broker that took the produce request and never answers: Deliver returns
// a retryable error carrying ctx's when the attempt's ctx ends (Receiver
// contract), not when the broker answers. franz-go's idempotent producer
// does not give up such a request, so a synchronous produce blocked here
// for as long as the broker was silent.
func TestKafkaDeliverReturnsWhenBrokerDoesNotAnswer(t *testing.T) {
	cl, held := silentKafka(t)
	k, err := NewKafka(ReceiverConfig{Name: "bus", Type: TypeKafka}, cl)
	if err != nil {
		t.Fatal(err)
	}
	const attempt = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), attempt)
	defer cancel()
	deadline, _ := ctx.Deadline()
	done := make(chan error, 1)
	go func() { done <- k.Deliver(ctx, testNotification("k-silent")) }()
	select {
	case <-held:
	case err := <-done:
		t.Fatalf("Deliver returned before the broker got the request: %v", err)
	case <-time.After(attempt):
		t.Fatal("the produce request did not reach the broker before the attempt's deadline")
	}
	select {
	case err := <-done:
		if late := time.Since(deadline); late > time.Second {
			t.Errorf("Deliver returned %s after its ctx's deadline, want at once", late.Round(time.Millisecond))
		}
		if err == nil || errors.Is(err, ErrPermanent) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want a retryable error wrapping context.DeadlineExceeded", err)
		}
	case <-time.After(time.Until(deadline) + 5*time.Second):
		t.Fatalf("Deliver still blocked %s after its ctx's deadline (broker not answering)", time.Since(deadline).Round(time.Second))
	}
}

// At SIGTERM, Dispatcher.Close with a drain deadline returns soon after it
// while a Kafka attempt waits for a broker that does not answer (alerts run
// then exits instead of waiting for SIGKILL), and reports the notification
// released (ErrClosed) for the next run.
func TestKafkaDispatcherCloseWithSilentBroker(t *testing.T) {
	cl, held := silentKafka(t)
	k, err := NewKafka(ReceiverConfig{Name: "bus", Type: TypeKafka}, cl)
	if err != nil {
		t.Fatal(err)
	}
	res := newResults()
	d, err := NewDispatcher([]Receiver{k}, WithAttemptTimeout(time.Minute), WithResults(res.add), WithLogger(quietLogger))
	if err != nil {
		t.Fatal(err)
	}
	d.Enqueue("bus", testNotification("k-drain"))
	waitHeld(t, held)
	const drain = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- d.Close(ctx) }()
	select {
	case err := <-closed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want the drain deadline's error", err)
		}
		if took := time.Since(start); took > drain+2*time.Second {
			t.Errorf("Close took %s with a %s drain deadline", took.Round(time.Millisecond), drain)
		}
	case <-time.After(drain + 10*time.Second):
		t.Fatalf("Close still blocked %s after its %s drain deadline", time.Since(start).Round(time.Second)-drain, drain)
	}
	if r := res.next(t); !errors.Is(r.Err, ErrClosed) || r.Attempts != 1 {
		t.Errorf("Result = %+v, want released (ErrClosed) after 1 attempt", r)
	}
}
