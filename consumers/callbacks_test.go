package consumers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/schemas"
)

// recSink records the Sink calls of the partition callbacks.
type recSink struct {
	flushErr error
	flushes  int
	flushCtx context.Context
	dropped  []int32
	windows  int
}

func (s *recSink) Assign(context.Context, []int32) error { return nil }
func (s *recSink) Add(int32, int64, *schemas.Event) bool { s.windows++; return true }
func (s *recSink) Windows() int                          { return s.windows }
func (s *recSink) Drop(ids []int32)                      { s.dropped = append(s.dropped, ids...); s.windows = 0 }
func (s *recSink) Flush(ctx context.Context) error {
	s.flushes++
	s.flushCtx = ctx
	if s.flushErr != nil {
		return s.flushErr
	}
	s.windows = 0
	return nil
}

// fakeClock is a test's clock, safe to read from the Kafka client's
// goroutines (its broker-connect hook reads Options.Now) while the test
// moves it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

// Now is the clock's time.
func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

// Advance moves the clock d forward.
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

// callbackConsumer is a Consumer whose client points at nothing: the
// callbacks under test must not need Kafka (no commit is due).
func callbackConsumer(t *testing.T, now *fakeClock) (*Consumer, *recSink) {
	t.Helper()
	opts := DefaultOptions()
	opts.Brokers = []string{"127.0.0.1:1"}
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.Now = now.Now
	opts.DLQSpoolDir = t.TempDir()
	sink := &recSink{}
	c, err := New(opts, sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cl.Close)
	return c, sink
}

func topicMap(ids ...int32) map[string][]int32 { return map[string][]int32{schemas.DefaultTopic: ids} }

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// Revoked after landing and committing everything: the windows of fully
// committed partitions are retained, the partitions forgotten.
func TestOnRevokedRetainsCommittedWindows(t *testing.T) {
	t.Parallel()
	now := newFakeClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	c, sink := callbackConsumer(t, now)
	c.onAssigned(context.Background(), nil, topicMap(0, 1, 2))
	c.parts[0].assigned, c.parts[0].consumed, c.parts[0].committed = true, 9, 10 // all committed
	c.parts[1].assigned, c.parts[1].consumed, c.parts[1].committed = true, 9, 5  // read beyond the commit
	c.parts[2].assigned = true                                                   // nothing read
	c.onRevoked(context.Background(), nil, topicMap(0, 1, 2))
	if sink.flushes != 1 {
		t.Fatalf("flushes = %d, want 1", sink.flushes)
	}
	if len(c.parts) != 0 {
		t.Errorf("partitions still owned after revoke: %v", c.parts)
	}
	slices.Sort(sink.dropped)
	if !slices.Equal(sink.dropped, []int32{0, 1, 2}) {
		t.Errorf("dropped %v, want [0 1 2]", sink.dropped)
	}
	if r, ok := c.retained[0]; !ok || r.next != 10 || r.dedupe == nil {
		t.Errorf("partition 0's window not retained: %+v", c.retained)
	}
	if _, ok := c.retained[1]; ok {
		t.Error("partition 1 retained although records past its commit were read")
	}
	if _, ok := c.retained[2]; ok {
		t.Error("partition 2 retained although nothing was read")
	}
}

// The flush on revoke gets what is left of FlushTimeoutOnRebalance counted
// from when the rebalance began; when it fails the state is dropped and
// nothing is retained.
func TestOnRevokedFlushDeadlineFromRebalanceStart(t *testing.T) {
	t.Parallel()
	now := newFakeClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	c, sink := callbackConsumer(t, now)
	c.onAssigned(context.Background(), nil, topicMap(0))
	c.parts[0].assigned, c.parts[0].consumed, c.parts[0].committed = true, 9, 10
	c.onCallbackBlocked(context.Background(), nil)
	now.Advance(15 * time.Second) // 15 s of the 20 s are gone
	sink.flushErr = errors.New("clickhouse down")
	c.onRevoked(context.Background(), nil, topicMap(0))
	dl, ok := sink.flushCtx.Deadline()
	if !ok {
		t.Fatal("revoke flush has no deadline")
	}
	if left := time.Until(dl); left > 5*time.Second || left < 4*time.Second {
		t.Errorf("revoke flush deadline in %s, want ≈ 5s (20s from the rebalance start, 15s ago)", left)
	}
	if len(c.retained) != 0 || len(c.parts) != 0 || counter(t, c.m.abandoned) != 1 {
		t.Errorf("failed revoke flush: retained %v, parts %v, abandoned %v", c.retained, c.parts, counter(t, c.m.abandoned))
	}
	if c.rebalanceSince.Load() != 0 {
		t.Error("rebalance start not cleared by the callback")
	}
}

// A member that blocked a rebalance longer than the rebalance timeout is out
// of the group: its revoke must not land anything.
func TestOnRevokedAfterRebalanceTimeoutDoesNotLand(t *testing.T) {
	t.Parallel()
	now := newFakeClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	c, sink := callbackConsumer(t, now)
	c.onAssigned(context.Background(), nil, topicMap(0, 1))
	sink.windows = 5
	c.onCallbackBlocked(context.Background(), nil)
	now.Advance(c.opts.RebalanceTimeout)
	c.onRevoked(context.Background(), nil, topicMap(0, 1))
	if sink.flushes != 0 {
		t.Errorf("landed %d times after the rebalance timeout", sink.flushes)
	}
	if len(sink.dropped) != 2 || sink.windows != 0 || len(c.parts) != 0 {
		t.Errorf("state not dropped: dropped %v, windows %d, parts %v", sink.dropped, sink.windows, c.parts)
	}
}

// Lost partitions are forgotten without landing or committing.
func TestOnLostDropsWithoutLanding(t *testing.T) {
	t.Parallel()
	now := newFakeClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	c, sink := callbackConsumer(t, now)
	c.onAssigned(context.Background(), nil, topicMap(0, 1))
	c.parts[0].assigned, c.parts[0].consumed, c.parts[0].committed = true, 9, 10
	sink.windows = 3
	c.onLost(context.Background(), nil, topicMap(0))
	if sink.flushes != 0 {
		t.Error("lost partitions were landed")
	}
	if !slices.Equal(sink.dropped, []int32{0}) || c.parts[0] != nil || c.parts[1] == nil {
		t.Errorf("after losing 0: dropped %v, parts %v", sink.dropped, c.parts)
	}
	if _, ok := c.retained[0]; ok {
		t.Error("a lost partition's window was retained")
	}
	if counter(t, c.m.lost) != 1 {
		t.Error("costpipe_partitions_lost_total not counted")
	}
	// Callbacks for other topics or no partitions change nothing.
	c.onLost(context.Background(), nil, map[string][]int32{"other": {1}})
	c.onRevoked(context.Background(), nil, map[string][]int32{"other": {1}})
	if c.parts[1] == nil || sink.flushes != 0 {
		t.Error("a callback for another topic touched this topic's partitions")
	}
}

// A retained window comes back only with the committed offset it was
// revoked at; prepare installs it. A partition whose committed offset moved
// (another member read it meanwhile) starts fresh and warms up; when Kafka
// cannot say where to warm from, it starts at the committed offset and the
// failure is counted.
func TestRetainedWindowReusedOnlyAtTheSameOffset(t *testing.T) {
	t.Parallel()
	now := newFakeClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	c, _ := callbackConsumer(t, now)
	d0 := newDedupe(time.Hour, 10_000, c.seeds)
	d0.seen("kept", now.Now().Unix())
	d1 := newDedupe(time.Hour, 10_000, c.seeds)
	c.retained[0] = retainedWindow{next: 10, lastTime: 77, dedupe: d0}
	c.retained[1] = retainedWindow{next: 10, dedupe: d1}
	c.onAssigned(context.Background(), nil, topicMap(0, 1))
	offsets := map[string]map[int32]kgo.Offset{schemas.DefaultTopic: {
		0: kgo.NewOffset().At(10),
		1: kgo.NewOffset().At(12),
	}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	got, err := c.adjustOffsets(ctx, offsets) // partition 1 asks the (absent) broker
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[int32]int64{0: 10, 1: 12} {
		if at := got[schemas.DefaultTopic][p].EpochOffset().Offset; at != want {
			t.Errorf("partition %d starts at %d, want %d", p, at, want)
		}
	}
	if counter(t, c.m.warmErrors) != 1 {
		t.Errorf("costpipe_dedupe_warm_errors_total = %v, want 1", counter(t, c.m.warmErrors))
	}
	if len(c.retained) != 0 {
		t.Errorf("retained windows left after the assignment: %v", c.retained)
	}
	if err := c.prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := c.parts[0]; st.dedupe != d0 || st.lastTime != 77 || st.committed != 10 || st.warmUntil != 0 || !st.assigned {
		t.Fatalf("partition 0: retained window not installed: %+v", st)
	}
	if !c.parts[0].dedupe.seen("kept", now.Now().Unix()) {
		t.Error("the retained window forgot its ids")
	}
	if st := c.parts[1]; st.dedupe == d1 || st.committed != 12 {
		t.Errorf("partition 1 reused a window from before another member's commit: %+v", st)
	}
}

// orderSink records the events added, in order.
type orderSink struct {
	recSink
	added []string // partition/offset/event_id
}

func (s *orderSink) Add(p int32, off int64, e *schemas.Event) bool {
	s.added = append(s.added, fmt.Sprintf("%d/%d/%s", p, off, e.EventID))
	return true
}

// The look-ahead queue (accept) changes nothing a Sink sees: every event of
// a fetch is added once, in order, with its own partition and offset, and
// a duplicate is dropped whether it follows its original at once, within
// the queue's length or beyond it, also across partitions of one poll.
func TestDedupeLookAheadKeepsOrderAndDrops(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	opts := DefaultOptions()
	opts.Brokers = []string{"127.0.0.1:1"}
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.Now = func() time.Time { return now }
	opts.DLQSpoolDir = t.TempDir()
	sink := &orderSink{}
	c, err := New(opts, sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cl.Close)
	c.onAssigned(context.Background(), nil, topicMap(0, 1))
	for _, st := range c.parts {
		st.assigned = true
	}
	record := func(p int32, off int64, id string) *kgo.Record {
		e := schemas.Event{EventID: id, Timestamp: now.Add(-time.Minute), Tenant: "t", Provider: "openai", Model: "gpt-4o",
			Status: schemas.StatusOK, InputTokens: 1}
		return &kgo.Record{Topic: schemas.DefaultTopic, Partition: p, Offset: off, Value: schemas.AppendJSON(nil, &e), Timestamp: now}
	}
	// Partition 0: ids 0..39, with id 3 again at once, id 5 again 10 later
	// (inside the queue), id 1 again 30 later (beyond it); partition 1
	// repeats partition 0's id 7 (another partition's window: not a
	// duplicate there) and its own id twice.
	var p0, p1 []*kgo.Record
	var want []string
	off := int64(0)
	add := func(id string, dup bool) {
		p0 = append(p0, record(0, off, id))
		if !dup {
			want = append(want, fmt.Sprintf("0/%d/%s", off, id))
		}
		off++
	}
	for i := 0; i < 40; i++ {
		add(fmt.Sprintf("e%d", i), false)
		switch i {
		case 3:
			add("e3", true)
		case 15:
			add("e5", true)
		case 31:
			add("e1", true)
		}
	}
	for i, id := range []string{"e7", "x", "x"} {
		p1 = append(p1, record(1, int64(i), id))
	}
	want = append(want, "1/0/e7", "1/1/x")
	fetches := kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: schemas.DefaultTopic, Partitions: []kgo.FetchPartition{
		{Partition: 0, Records: p0}, {Partition: 1, Records: p1}}}}}}
	c.processFetches(fetches)
	if !slices.Equal(sink.added, want) {
		t.Errorf("added\n%v\nwant\n%v", sink.added, want)
	}
	if c.aheadN != 0 {
		t.Errorf("%d events left in the look-ahead queue after the poll", c.aheadN)
	}
	if got := counter(t, c.m.duplicates); got != 4 {
		t.Errorf("duplicates = %v, want 4", got)
	}
}
