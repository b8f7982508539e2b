package consumers_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/broker"
	"github.com/costpipe/costpipe/consumers"
	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/internal/whtest"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/pipelines/usage"
	"github.com/costpipe/costpipe/schemas"
	"github.com/costpipe/costpipe/schemas/arrowcodec"
	"github.com/costpipe/costpipe/warehouse"
)

func TestMain(m *testing.M) { chtest.Main(m) }

type env struct {
	t       *testing.T
	b       *broker.Broker
	brokers string
	srv     *chtest.Server
	db      string
	w       *warehouse.Warehouse
	now     time.Time
}

func newEnv(t *testing.T, partitions int) *env {
	t.Helper()
	return newEnvOn(t, partitions, chtest.Shared(t))
}

// newEnvOn is newEnv with its database on srv.
func newEnvOn(t *testing.T, partitions int, srv *chtest.Server) *env {
	t.Helper()
	b := kafkatest.Start(t, partitions)
	db := srv.NewDatabase(t)
	w := whtest.Migrated(t, srv.DSN(db))
	return &env{t: t, b: b, brokers: b.Addr(), srv: srv, db: db, w: w, now: time.Now().UTC()}
}

// run starts one aggregator (consumer + pipeline) in the group; stop ends it
// gracefully and returns Run's error.
func (e *env) run(group string, flush time.Duration) (stop func() error) {
	e.t.Helper()
	return e.runWith(group, flush, nil, nil)
}

// runWith is run with the consumer's options changed by opt and its sink
// wrapped by wrap (each may be nil).
func (e *env) runWith(group string, flush time.Duration, opt func(*consumers.Options), wrap func(consumers.Sink) consumers.Sink) (stop func() error) {
	e.t.Helper()
	level := slog.LevelWarn
	if os.Getenv("COSTPIPE_TEST_LOG") == "info" {
		level = slog.LevelInfo
	}
	return e.start(group, flush, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), opt, wrap)
}

// start runs a consumer and its pipeline, both logging to log, in group;
// opt edits the consumer's options and wrap its Sink (each may be nil).
// stop cancels Run and returns its error.
func (e *env) start(group string, flush time.Duration, log *slog.Logger, opt func(*consumers.Options), wrap func(consumers.Sink) consumers.Sink) (stop func() error) {
	e.t.Helper()
	popts := usage.DefaultOptions()
	popts.RetryMin, popts.RetryMax = 50*time.Millisecond, 500*time.Millisecond
	popts.Logger = log
	pipe, err := usage.New(e.w, popts)
	if err != nil {
		e.t.Fatal(err)
	}
	copts := consumers.DefaultOptions()
	copts.Brokers = []string{e.brokers}
	copts.Group = group
	copts.FlushInterval = flush
	copts.Logger = log
	copts.DLQSpoolDir = e.t.TempDir()
	if opt != nil {
		opt(&copts)
	}
	var sink consumers.Sink = pipe
	if wrap != nil {
		sink = wrap(pipe)
	}
	c, err := consumers.New(copts, sink)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); runErr = c.Run(ctx) }()
	var once sync.Once
	stop = func() error { once.Do(func() { cancel(); wg.Wait() }); return runErr }
	e.t.Cleanup(func() { stop() })
	return stop
}

func (e *env) produce(recs ...*kgo.Record) {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers), kgo.DefaultProduceTopic(schemas.DefaultTopic))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

func jsonRecord(ev *schemas.Event) *kgo.Record {
	return &kgo.Record{Key: ev.Key(), Value: schemas.AppendJSON(nil, ev)}
}

func (e *env) event(i int, tenant, model string) schemas.Event {
	return schemas.Event{EventID: fmt.Sprintf("ev-%d", i), Timestamp: e.now.Add(-time.Duration(i%50) * time.Second),
		Tenant: tenant, Provider: "openai", Model: model, Status: schemas.StatusOK,
		InputTokens: int64(1000 + i), CachedInputTokens: int64(i % 100), OutputTokens: int64(200 + i%7),
		LatencyMs: float64(100 + i%300), HasLatency: true}
}

// jsonEvents returns the events from (inclusive) to to of model, of tenants
// t0 … t(tenants-1) in turn, and their JSON records.
func (e *env) jsonEvents(from, to, tenants int, model string) ([]schemas.Event, []*kgo.Record) {
	var events []schemas.Event
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		ev := e.event(i, fmt.Sprintf("t%d", i%tenants), model)
		events = append(events, ev)
		recs = append(recs, jsonRecord(&ev))
	}
	return events, recs
}

type totals struct {
	requests, input, output uint64
	cost                    string
}

func (e *env) totals(table string) totals {
	e.t.Helper()
	var tt totals
	err := e.w.Conn().QueryRow(context.Background(), "SELECT sumMerge(requests), sumMerge(input_tokens), sumMerge(output_tokens), toString(sumMerge(cost_usd)) FROM "+e.db+"."+table).
		Scan(&tt.requests, &tt.input, &tt.output, &tt.cost)
	if err != nil {
		e.t.Fatal(err)
	}
	return tt
}

func (e *env) waitTotals(want totals) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		var got totals
		for _, tbl := range []string{"usage_1m", "usage_1h", "usage_1d"} {
			got = e.totals(tbl)
			if got != want {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("totals never reached %+v; last %+v", want, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func truth(events []schemas.Event) totals {
	var tt totals
	var cost pricing.Pico
	for i := range events {
		tt.requests++
		tt.input += uint64(events[i].InputTokens)
		tt.output += uint64(events[i].OutputTokens)
		c, _ := pricing.Default().Total(&events[i])
		cost = cost.Add(c)
	}
	tt.cost = cost.String()
	return tt
}

func TestAggregateJSONArrowDLQAndDuplicates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 3)
	stop := e.run("g1", 200*time.Millisecond)

	var events []schemas.Event
	var recs []*kgo.Record
	for i := 0; i < 300; i++ {
		ev := e.event(i, fmt.Sprintf("t%d", i%3), []string{"gpt-4o", "gpt-4o-mini"}[i%2])
		events = append(events, ev)
		recs = append(recs, jsonRecord(&ev))
	}
	// Duplicates of the first 20 (same event_id, same key → same partition).
	for i := 0; i < 20; i++ {
		recs = append(recs, jsonRecord(&events[i]))
	}
	// An Arrow batch of 50 more, one key.
	var batch []schemas.Event
	for i := 300; i < 350; i++ {
		batch = append(batch, e.event(i, "t0", "gpt-4o"))
	}
	enc := arrowcodec.NewEncoder(nil)
	payload, err := enc.Encode(batch)
	if err != nil {
		t.Fatal(err)
	}
	events = append(events, batch...)
	recs = append(recs, &kgo.Record{Key: batch[0].Key(), Value: payload,
		Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte(schemas.ContentTypeArrow)}}})
	// Invalid records: bad JSON, an invariant violation, too old, unknown content type.
	old := e.event(999, "t0", "gpt-4o")
	old.Timestamp = e.now.Add(-8 * 24 * time.Hour)
	recs = append(recs,
		&kgo.Record{Value: []byte(`{"event_id":`)},
		&kgo.Record{Value: []byte(`{"event_id":"x","timestamp":1,"tenant":"a","provider":"p","model":"m","status":"ok","reasoning_tokens":3}`)},
		jsonRecord(&old),
		&kgo.Record{Value: []byte("hello"), Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("text/plain")}}},
	)
	e.produce(recs...)
	want := truth(events)
	e.waitTotals(want)

	// DLQ has the four invalid records with reasons and source positions.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers), kgo.ConsumeTopics(schemas.DefaultDLQTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	reasons := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for n := 0; n < 4 && ctx.Err() == nil; {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			n++
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			reasons[h[consumers.HeaderDLQReason]]++
			if h[consumers.HeaderDLQSourceTopic] != schemas.DefaultTopic || h[consumers.HeaderDLQSourceOffset] == "" || h[consumers.HeaderDLQError] == "" {
				t.Errorf("DLQ record lacks source headers: %v", h)
			}
		})
	}
	if reasons["invalid"] != 2 || reasons["too_old"] != 1 || reasons["unsupported_content"] != 1 {
		t.Errorf("DLQ reasons %v, want invalid:2 too_old:1 unsupported_content:1", reasons)
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}

	// A restarted aggregator in the same group adds only new events; a late
	// duplicate (same event_id, after the restart) is still counted once.
	stop = e.run("g1", 200*time.Millisecond)
	more := []*kgo.Record{jsonRecord(&events[5])}
	for i := 400; i < 450; i++ {
		ev := e.event(i, "t1", "gpt-4o")
		events = append(events, ev)
		more = append(more, jsonRecord(&ev))
	}
	e.produce(more...)
	e.waitTotals(truth(events))
	time.Sleep(500 * time.Millisecond) // a double count would land within a flush or two
	e.waitTotals(truth(events))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
