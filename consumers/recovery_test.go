package consumers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/costpipe/costpipe/consumers"
	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/internal/logtest"
	"github.com/costpipe/costpipe/schemas"
)

// produceTo produces recs to the given partition of the events topic (the
// records' Timestamp, when set, is kept: Kafka's CreateTime).
func (e *env) produceTo(partition int32, recs ...*kgo.Record) {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers), kgo.DefaultProduceTopic(schemas.DefaultTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	for _, r := range recs {
		r.Partition = partition
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// topicID looks up a topic's ID (Produce v13+ names topics by ID).
func (e *env) topicID(topic string) [16]byte {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(context.Background(), topic)
	if err != nil || td[topic].Err != nil {
		e.t.Fatalf("cannot look up topic %q: %v %v", topic, err, td[topic].Err)
	}
	return [16]byte(td[topic].ID)
}

// metric reads a counter or gauge from reg (0 when absent).
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		sum := 0.0
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	return 0
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A group that lags behind by more than the dedupe window (here 3 h) must
// still recognise the retries of events it read before a restart: the
// warm-up starts from the Kafka time of the last committed record minus the
// window, not from now minus the window. On the previous main the warm-up
// asked Kafka for records of the last hour, found none, and the retries
// were counted twice.
func TestLaggingRestartWarmsTheWindowItNeeds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	arrived := time.Now().Add(-3 * time.Hour).Truncate(time.Second) // when the records reached Kafka
	rec := func(ev *schemas.Event, at time.Time) *kgo.Record {
		r := jsonRecord(ev)
		r.Timestamp = at
		return r
	}
	var events []schemas.Event
	var first []*kgo.Record
	for i := 0; i < 400; i++ {
		ev := e.event(i, fmt.Sprintf("t%d", i%4), "gpt-4o")
		ev.Timestamp = arrived.Add(time.Duration(i) * time.Second)
		events = append(events, ev)
		first = append(first, rec(&ev, arrived.Add(time.Duration(i)*time.Second)))
	}
	e.produceTo(0, first...)
	stop := e.run("lag", 100*time.Millisecond)
	e.waitTotals(truth(events))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// While the aggregator was down: retries of the last 100 events (a
	// few minutes after them, still 3 h ago) and 100 new events.
	var second []*kgo.Record
	for i := 300; i < 400; i++ {
		second = append(second, rec(&events[i], arrived.Add(time.Duration(400+i-300)*time.Second)))
	}
	for i := 400; i < 500; i++ {
		ev := e.event(i, "t9", "gpt-4o-mini")
		ev.Timestamp = arrived.Add(time.Duration(i+100) * time.Second)
		events = append(events, ev)
		second = append(second, rec(&ev, arrived.Add(time.Duration(i+100)*time.Second)))
	}
	e.produceTo(0, second...)
	reg := prometheus.NewRegistry()
	stop = e.runWith("lag", 100*time.Millisecond, func(o *consumers.Options) { o.Registerer = reg }, nil)
	e.waitTotals(truth(events))
	time.Sleep(500 * time.Millisecond) // a double count would land within a flush or two
	e.waitTotals(truth(events))
	if got := metric(t, reg, "costpipe_duplicates_total"); got != 100 {
		t.Errorf("costpipe_duplicates_total = %v, want 100", got)
	}
	if got := metric(t, reg, "costpipe_dedupe_warm_records_total"); got != 400 {
		t.Errorf("costpipe_dedupe_warm_records_total = %v, want 400 (the whole hour before the committed offset)", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// A rebalance that gives a partition back to the member that had it keeps
// its dedupe window: nothing is re-read to warm it, and retries of events
// read before the rebalance are still dropped. The partition that moved to
// the new member is warmed from Kafka and drops its retries too.
func TestPartitionComesBackWithItsWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	var events []schemas.Event
	byPart := map[int32][]*kgo.Record{}
	for i := 0; i < 200; i++ {
		ev := e.event(i, fmt.Sprintf("t%d", i%2), "gpt-4o")
		events = append(events, ev)
		byPart[int32(i%2)] = append(byPart[int32(i%2)], jsonRecord(&ev))
	}
	e.produceTo(0, byPart[0]...)
	e.produceTo(1, byPart[1]...)
	regA := prometheus.NewRegistry()
	stopA := e.runWith("back", 100*time.Millisecond, func(o *consumers.Options) { o.Registerer = regA }, nil)
	e.waitTotals(truth(events))
	regB := prometheus.NewRegistry()
	stopB := e.runWith("back", 100*time.Millisecond, func(o *consumers.Options) { o.Registerer = regB }, nil)
	waitFor(t, "the second member to own a partition", 30*time.Second, func() bool {
		return metric(t, regB, "costpipe_partitions_owned") == 1 && metric(t, regA, "costpipe_partitions_owned") == 1
	})
	// Retries of everything, to both partitions.
	e.produceTo(0, byPart[0]...)
	e.produceTo(1, byPart[1]...)
	waitFor(t, "both members to drop the retries", 30*time.Second, func() bool {
		return metric(t, regA, "costpipe_duplicates_total")+metric(t, regB, "costpipe_duplicates_total") == 200
	})
	e.waitTotals(truth(events))
	if got := metric(t, regA, "costpipe_dedupe_warm_records_total"); got != 0 {
		t.Errorf("the member that kept its partition re-read %v records to warm a window it had", got)
	}
	if got := metric(t, regB, "costpipe_dedupe_warm_records_total"); got != 100 {
		t.Errorf("the new member warmed %v records, want 100 (its partition's window)", got)
	}
	for _, stop := range []func() error{stopB, stopA} {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// A commit answered with ILLEGAL_GENERATION (the group moved on without this
// member) makes it stop landing for its partitions and rejoin; what it read
// since its last good commit is replayed, and the landing marks keep the
// totals exact.
func TestFencedCommitStopsLandingAndRejoins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	var fenced atomic.Int32
	e.b.Cluster().ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if fenced.Add(1) != 1 {
			return nil, nil, false
		}
		r := req.(*kmsg.OffsetCommitRequest)
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.IllegalGeneration.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	reg := prometheus.NewRegistry()
	stop := e.runWith("fence", 100*time.Millisecond, func(o *consumers.Options) { o.Registerer = reg }, nil)
	var events []schemas.Event
	var recs []*kgo.Record
	for i := 0; i < 300; i++ {
		ev := e.event(i, fmt.Sprintf("t%d", i%3), "gpt-4o")
		events = append(events, ev)
		recs = append(recs, jsonRecord(&ev))
	}
	e.produce(recs...)
	e.waitTotals(truth(events))
	waitFor(t, "the fence to be counted", 10*time.Second, func() bool { return metric(t, reg, "costpipe_fenced_total") == 1 })
	// After rejoining, new events land too, and nothing twice.
	var more []*kgo.Record
	for i := 300; i < 400; i++ {
		ev := e.event(i, "t7", "gpt-4o-mini")
		events = append(events, ev)
		more = append(more, jsonRecord(&ev))
	}
	e.produce(more...)
	e.waitTotals(truth(events))
	time.Sleep(500 * time.Millisecond)
	e.waitTotals(truth(events))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// When Kafka cannot say where the warm-up starts (ListOffsets by time
// fails), the partition starts at its committed offset, the failure is
// counted, and consumption goes on exactly.
func TestWarmUpFailureFallsBackToCommitted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	var events []schemas.Event
	var recs []*kgo.Record
	for i := 0; i < 100; i++ {
		ev := e.event(i, "t0", "gpt-4o")
		events = append(events, ev)
		recs = append(recs, jsonRecord(&ev))
	}
	e.produce(recs...)
	stop := e.run("warmfail", 100*time.Millisecond)
	e.waitTotals(truth(events))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	e.b.Cluster().ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.ListOffsetsRequest)
		byTime := false
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				byTime = byTime || p.Timestamp >= 0
			}
		}
		if !byTime {
			return nil, nil, false // franz-go's own start/end lookups pass
		}
		e.b.Cluster().KeepControl()
		resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewListOffsetsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewListOffsetsResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.UnknownServerError.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	reg := prometheus.NewRegistry()
	stop = e.runWith("warmfail", 100*time.Millisecond, func(o *consumers.Options) { o.Registerer = reg }, nil)
	var more []*kgo.Record
	for i := 100; i < 150; i++ {
		ev := e.event(i, "t1", "gpt-4o")
		events = append(events, ev)
		more = append(more, jsonRecord(&ev))
	}
	e.produce(more...)
	e.waitTotals(truth(events))
	if got := metric(t, reg, "costpipe_dedupe_warm_errors_total"); got < 1 {
		t.Errorf("costpipe_dedupe_warm_errors_total = %v, want ≥ 1", got)
	}
	if got := metric(t, reg, "costpipe_dedupe_warm_records_total"); got != 0 {
		t.Errorf("warmed %v records although the warm-up could not be located", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// A DLQ record that Kafka refuses for good (here every produce to the DLQ
// topic is denied) does not stall the consumer: after DLQMaxAttempts it is
// written to the spool, counted, and the valid records land and commit.
func TestUndeliverableDLQRecordIsSpooled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	e.refuseDLQProduces()
	reg := prometheus.NewRegistry()
	spool := t.TempDir()
	stop := e.runWith("spool", 100*time.Millisecond, func(o *consumers.Options) {
		o.Registerer, o.DLQSpoolDir, o.DLQMaxAttempts = reg, spool, 2
	}, nil)
	events, recs, _ := e.withInvalid(50, 10, 0)
	e.produce(recs...)
	e.waitTotals(truth(events))
	waitFor(t, "5 spooled DLQ records", 20*time.Second, func() bool { return metric(t, reg, "costpipe_dlq_spooled_total") == 5 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(spool, "dlq-*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("spool files %v, want one", files)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			Topic   string `json:"topic"`
			Value   []byte `json:"value"`
			Headers []struct {
				Key   string
				Value []byte // base64 in the line, as key and value
			}
			Error string `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("spool line %q: %v", sc.Text(), err)
		}
		lines++
		reason := ""
		for _, h := range rec.Headers {
			if h.Key == consumers.HeaderDLQReason {
				reason = string(h.Value)
			}
		}
		if rec.Topic != schemas.DefaultDLQTopic || !strings.HasPrefix(string(rec.Value), `{"event_id":"bad-`) || reason != "invalid" || rec.Error == "" {
			t.Errorf("spooled record lacks its original value, reason or error: %s", sc.Text())
		}
	}
	if lines != 5 {
		t.Errorf("%d spooled lines, want 5", lines)
	}
	// Offsets moved past the spooled records: a restart reads nothing again.
	reg2 := prometheus.NewRegistry()
	stop = e.runWith("spool", 100*time.Millisecond, func(o *consumers.Options) {
		o.Registerer, o.DLQSpoolDir = reg2, spool
	}, nil)
	time.Sleep(time.Second)
	if got := metric(t, reg2, "costpipe_dlq_records_total"); got != 0 {
		t.Errorf("after a restart %v records went to the DLQ again: the spooled ones were not committed past", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// blockingSink blocks Flush while it holds windows and block is set, as a
// ClickHouse that hangs.
type blockingSink struct {
	consumers.Sink
	block atomic.Bool
}

func (s *blockingSink) Flush(ctx context.Context) error {
	if s.block.Load() && s.Windows() > 0 {
		<-ctx.Done()
		return fmt.Errorf("sink blocked: %w", ctx.Err())
	}
	return s.Sink.Flush(ctx)
}

// A member whose landing hangs while a rebalance waits gives up at
// FlushTimeoutOnRebalance (counted from when the rebalance began), drops its
// unlanded state and lets the rebalance proceed; the partitions' owners
// replay it and the totals are exact.
func TestHungFlushIsAbandonedOnRebalance(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	regA := prometheus.NewRegistry()
	var sinkA *blockingSink
	stopA := e.runWith("hung", 200*time.Millisecond, func(o *consumers.Options) {
		o.Registerer, o.FlushTimeoutOnRebalance = regA, 2*time.Second
	}, func(s consumers.Sink) consumers.Sink { sinkA = &blockingSink{Sink: s}; return sinkA })
	var events []schemas.Event
	var recs []*kgo.Record
	for i := 0; i < 200; i++ {
		ev := e.event(i, fmt.Sprintf("t%d", i%5), "gpt-4o")
		events = append(events, ev)
		recs = append(recs, jsonRecord(&ev))
	}
	e.produce(recs[:100]...)
	e.waitTotals(truth(events[:100]))
	sinkA.block.Store(true)
	e.produce(recs[100:]...)
	time.Sleep(500 * time.Millisecond) // A reads them and hangs landing them
	began := time.Now()
	stopB := e.run("hung", 200*time.Millisecond)
	waitFor(t, "A to abandon its hung flush", 20*time.Second, func() bool { return metric(t, regA, "costpipe_flushes_abandoned_total") >= 1 })
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("the rebalance waited %s for a hung flush (FlushTimeoutOnRebalance 2s)", took)
	}
	sinkA.block.Store(false)
	e.waitTotals(truth(events))
	time.Sleep(500 * time.Millisecond)
	e.waitTotals(truth(events))
	for _, stop := range []func() error{stopB, stopA} {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// A heartbeat answered with UNKNOWN_MEMBER_ID (the session expired) makes
// franz-go report the partitions lost: the member drops its unlanded state
// without landing it, rejoins, replays, and the totals are exact.
func TestLostPartitionsAreReplayedExactly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	reg := prometheus.NewRegistry()
	var sink *blockingSink
	stop := e.runWith("lost", 200*time.Millisecond, func(o *consumers.Options) { o.Registerer, o.FlushTimeoutOnRebalance = reg, 2*time.Second },
		func(s consumers.Sink) consumers.Sink { sink = &blockingSink{Sink: s}; return sink })
	var events []schemas.Event
	var recs []*kgo.Record
	for i := 0; i < 200; i++ {
		ev := e.event(i, fmt.Sprintf("t%d", i%5), "gpt-4o")
		events = append(events, ev)
		recs = append(recs, jsonRecord(&ev))
	}
	e.produce(recs[:100]...)
	e.waitTotals(truth(events[:100]))
	// Unlanded state when the session is lost: the sink hangs until the
	// flush gives up.
	sink.block.Store(true)
	e.produce(recs[100:]...)
	time.Sleep(300 * time.Millisecond)
	var expired atomic.Bool
	e.b.Cluster().ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if !expired.CompareAndSwap(false, true) {
			return nil, nil, false
		}
		resp := req.(*kmsg.HeartbeatRequest).ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp, nil, true
	})
	waitFor(t, "the partitions to be lost", 20*time.Second, func() bool { return metric(t, reg, "costpipe_partitions_lost_total") >= 1 })
	sink.block.Store(false)
	e.waitTotals(truth(events))
	time.Sleep(500 * time.Millisecond)
	e.waitTotals(truth(events))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestLandingMarksAheadOfTheLogAreReported: a broker that comes back
// empty (an in-memory `costpipe broker` restarted) under a database whose
// landing marks reach past its log makes the aggregator skip the new
// records as already landed; it says so, at error level and in a metric,
// instead of nothing at all.
func TestLandingMarksAheadOfTheLogAreReported(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	_, recs := e.jsonEvents(0, 40, 2, "gpt-4o")
	e.produce(recs...)
	stop := e.run("marks", 100*time.Millisecond)
	for deadline := time.Now().Add(30 * time.Second); e.totals("usage_1m").requests < 40; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("40 events not landed: %+v", e.totals("usage_1m"))
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	e.b = kafkatest.Start(t, 1) // the broker restarted: offsets from 0 again
	e.brokers = e.b.Addr()
	_, recs = e.jsonEvents(100, 110, 2, "gpt-4o")
	e.produce(recs...)
	var logs logtest.Buffer
	reg := prometheus.NewRegistry()
	stop = e.runWith("marks", 100*time.Millisecond, func(o *consumers.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		o.Registerer = reg
	}, nil)
	defer stop()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "landing marks past the end") {
		if time.Now().After(deadline) {
			t.Fatalf("no error about the landing marks ahead of the log; log:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "log_end=10") {
		t.Errorf("the error does not say where the log ends:\n%s", logs.String())
	}
	if n := metric(t, reg, "costpipe_landing_marks_ahead_total"); n != 1 {
		t.Errorf("costpipe_landing_marks_ahead_total = %v, want 1", n)
	}
}
