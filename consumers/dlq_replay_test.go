package consumers_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/consumers"
	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/schemas"
)

// replayFixture is a broker whose DLQ topic (one partition) holds recs as
// an aggregator wrote them (reason too_old, source events/SOURCE/i), and a
// topic to replay into with the given partitions and configs.
func replayFixture(t *testing.T, partitions int32, configs map[string]*string, recs []*kgo.Record, sources []int32) (base []kgo.Opt, adm *kadm.Client) {
	t.Helper()
	b := kafkatest.Start(t, 1)
	base = []kgo.Opt{kgo.SeedBrokers(b.Addr())}
	cl, err := kgo.NewClient(append(base, kgo.DefaultProduceTopic(schemas.DefaultDLQTopic))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm = kadm.NewClient(cl)
	if _, err := adm.CreateTopic(context.Background(), partitions, 1, configs, replayTo); err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		r.Headers = append(r.Headers,
			kgo.RecordHeader{Key: consumers.HeaderDLQReason, Value: []byte("too_old")},
			kgo.RecordHeader{Key: consumers.HeaderDLQError, Value: []byte("older than --max-event-age")},
			kgo.RecordHeader{Key: consumers.HeaderDLQSourceTopic, Value: []byte(schemas.DefaultTopic)},
			kgo.RecordHeader{Key: consumers.HeaderDLQSourcePartition, Value: []byte(strconv.Itoa(int(sources[i])))},
			kgo.RecordHeader{Key: consumers.HeaderDLQSourceOffset, Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return base, adm
}

const replayTo = "costpipe.backfill"

// replayed reads the replay topic and returns, per DLQ record it came
// from (HeaderReplayedFrom), the partitions its copies are on.
func replayed(t *testing.T, base []kgo.Opt) map[string][]int32 {
	t.Helper()
	out := map[string][]int32{}
	err := consumers.ReadDLQ(context.Background(), base, consumers.DLQReadOptions{Topic: replayTo}, func(d consumers.DLQRecord) error {
		for _, h := range d.Headers {
			if h.Key == consumers.HeaderReplayedFrom {
				out[string(h.Value)] = append(out[string(h.Value)], d.Partition)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A replay that fails part-way through a batch (Kafka refuses some of its
// records for good) moves the reason's offsets past the records Kafka
// acknowledged before the first failure, so the next run sends only the
// rest: each record reaches the topic once. The batch was sent again
// whole: the 20 records acknowledged before the failure twice.
func TestReplayFailureKeepsWhatWasSent(t *testing.T) {
	t.Parallel()
	part := func(key string) int {
		return kgo.StickyKeyPartitioner(nil).ForTopic(replayTo).Partition(&kgo.Record{Key: []byte(key)}, 2)
	}
	ka, kb := "a", "b"
	for i := 0; part(kb) == part(ka); i++ {
		kb = fmt.Sprintf("b%d", i)
	}
	var recs []*kgo.Record
	for i := range 20 {
		recs = append(recs, &kgo.Record{Key: []byte(ka), Value: []byte(fmt.Sprintf(`{"event_id":"a-%d"}`, i))})
	}
	// Random, so that the producer's compression does not shrink them.
	raw := make([]byte, 200<<10)
	rand.Read(raw)
	big := base64.StdEncoding.EncodeToString(raw)
	for i := range 5 {
		recs = append(recs, &kgo.Record{Key: []byte(kb), Value: []byte(fmt.Sprintf(`{"event_id":"b-%d","pad":"%s"}`, i, big))})
	}
	limit := "102400" // the b records are too large for the topic: refused for good
	base, adm := replayFixture(t, 2, map[string]*string{"max.message.bytes": &limit}, recs, make([]int32, len(recs)))
	o := consumers.DLQReplayOptions{Topic: schemas.DefaultDLQTopic, To: replayTo, Group: "replay", Reasons: []string{"too_old"}}
	st, err := consumers.ReplayDLQ(context.Background(), base, o)
	if err == nil {
		t.Fatalf("replay with records Kafka refuses: no error (sent %v)", st.Sent)
	}
	if !strings.Contains(err.Error(), "sent up to offset 19") {
		t.Errorf("replay with records Kafka refuses: %v; want an error saying what was sent", err)
	}
	if st.Sent["too_old"] != 20 {
		t.Errorf("sent %v, want the 20 small records", st.Sent)
	}
	limit = "10485760"
	if _, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: &limit}}, replayTo); err != nil {
		t.Fatal(err)
	}
	if st, err = consumers.ReplayDLQ(context.Background(), base, o); err != nil || st.Sent["too_old"] != 5 {
		t.Fatalf("replay once the topic takes them: sent %v, %v; want the 5 refused before", st.Sent, err)
	}
	got := replayed(t, base)
	if len(got) != len(recs) {
		t.Errorf("%d DLQ records replayed, want %d", len(got), len(recs))
	}
	for from, parts := range got {
		if len(parts) != 1 {
			t.Errorf("%s replayed %d times", from, len(parts))
		}
	}
}

// A record without a key (an Arrow batch, which its producer sends to the
// partition of its events' key) goes back to its source partition; a keyed
// record to its key's partition. Franz-go's default partitioner sent the
// keyless ones anywhere.
func TestReplayKeylessRecordToItsSourcePartition(t *testing.T) {
	t.Parallel()
	sources := []int32{3, 1, 2, 1, 3, 2, 0, 3}
	var recs []*kgo.Record
	for i := range sources {
		recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("arrow batch %d", i)),
			Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/vnd.apache.arrow.stream")}}})
	}
	keyed := &kgo.Record{Key: []byte("t0\x00gpt-4o"), Value: []byte(`{"event_id":"k"}`)}
	recs = append(recs, keyed)
	sources = append(sources, 0)
	base, _ := replayFixture(t, 4, nil, recs, sources)
	o := consumers.DLQReplayOptions{Topic: schemas.DefaultDLQTopic, To: replayTo, Group: "replay", Reasons: []string{"too_old"}}
	if st, err := consumers.ReplayDLQ(context.Background(), base, o); err != nil || st.Sent["too_old"] != len(recs) {
		t.Fatalf("replay: sent %v, %v", st.Sent, err)
	}
	got := replayed(t, base)
	for i, src := range sources[:len(sources)-1] {
		from := fmt.Sprintf("%s/0/%d", schemas.DefaultDLQTopic, i)
		if p := got[from]; len(p) != 1 || p[0] != src {
			t.Errorf("keyless record %s (source partition %d) replayed to partitions %v", from, src, p)
		}
	}
	want := int32(kgo.StickyKeyPartitioner(nil).ForTopic(replayTo).Partition(keyed, 4))
	if p := got[fmt.Sprintf("%s/0/%d", schemas.DefaultDLQTopic, len(recs)-1)]; len(p) != 1 || p[0] != want {
		t.Errorf("keyed record replayed to partitions %v, want [%d] (its key's)", p, want)
	}
}

// tenRecordsFixture is replayFixture with ten keyed records on one
// partition.
func tenRecordsFixture(t *testing.T) ([]kgo.Opt, *kadm.Client) {
	t.Helper()
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Key: []byte("k"), Value: []byte(fmt.Sprintf(`{"event_id":"e-%d"}`, i))})
	}
	return replayFixture(t, 1, nil, recs, make([]int32, len(recs)))
}

// The cursors outlive the groups' offsets: Kafka drops a group's offsets
// offsets.retention.minutes (a week) after its last commit, and a replay
// then sent everything the earlier replays had sent again. The compacted
// cursor topic keeps them; a DLQ topic deleted and created again (another
// topic ID) starts over; a cursor topic that would expire is refused.
func TestReplayCursorOutlivesGroupOffsets(t *testing.T) {
	t.Parallel()
	base, adm := tenRecordsFixture(t)
	ctx := context.Background()
	o := consumers.DLQReplayOptions{Topic: schemas.DefaultDLQTopic, To: replayTo, Group: "replay", Reasons: []string{"too_old"}}
	if st, err := consumers.ReplayDLQ(ctx, base, o); err != nil || st.Sent["too_old"] != 10 || len(st.NoCursor) != 1 {
		t.Fatalf("first replay: sent %v, no cursor for %v, %v", st.Sent, st.NoCursor, err)
	}
	cursors := schemas.DefaultDLQTopic + consumers.CursorTopicSuffix
	rcs, err := adm.DescribeTopicConfigs(ctx, cursors)
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := rcs.On(cursors, nil); err != nil || !slices.ContainsFunc(rc.Configs, func(c kadm.Config) bool {
		return c.Key == "cleanup.policy" && c.Value != nil && *c.Value == "compact"
	}) {
		t.Errorf("cursor topic %s: configs %v, %v; want cleanup.policy=compact", cursors, rc.Configs, err)
	}
	// What Kafka does to the group's offsets a week after the last replay.
	if _, err := adm.DeleteGroup(ctx, "replay.too_old"); err != nil {
		t.Fatal(err)
	}
	if st, err := consumers.ReplayDLQ(ctx, base, o); err != nil || consumers.Total(st.Sent) != 0 || len(st.NoCursor) != 0 {
		t.Fatalf("replay after the group's offsets expired: sent %v, no cursor for %v, %v; want nothing sent", st.Sent, st.NoCursor, err)
	}
	if got := replayed(t, base); len(got) != 10 {
		t.Errorf("%d DLQ records replayed, want 10", len(got))
	}
	for from, parts := range replayed(t, base) {
		if len(parts) != 1 {
			t.Errorf("%s replayed %d times", from, len(parts))
		}
	}

	// The DLQ topic deleted and created again: its new records start at
	// offset 0, below the old cursor.
	if _, err := adm.DeleteTopic(ctx, schemas.DefaultDLQTopic); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, schemas.DefaultDLQTopic); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(base...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	again := &kgo.Record{Topic: schemas.DefaultDLQTopic, Key: []byte("k"), Value: []byte(`{"event_id":"new"}`), Headers: []kgo.RecordHeader{
		{Key: consumers.HeaderDLQReason, Value: []byte("too_old")}, {Key: consumers.HeaderDLQSourceTopic, Value: []byte(schemas.DefaultTopic)},
		{Key: consumers.HeaderDLQSourcePartition, Value: []byte("0")}, {Key: consumers.HeaderDLQSourceOffset, Value: []byte("99")}}}
	if err := cl.ProduceSync(ctx, again).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if st, err := consumers.ReplayDLQ(ctx, base, o); err != nil || st.Sent["too_old"] != 1 {
		t.Fatalf("replay of the DLQ topic created again: sent %v, earlier %v, %v; want its one record sent", st.Sent, st.Earlier, err)
	}

	// A cursor topic that is not compacted would lose its cursors.
	del := "delete"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &del}, "cursors.delete"); err != nil {
		t.Fatal(err)
	}
	o.CursorTopic = "cursors.delete"
	if _, err := consumers.ReplayDLQ(ctx, base, o); err == nil || !strings.Contains(err.Error(), "cleanup.policy=delete") {
		t.Errorf("replay with a cursor topic that is not compacted: %v; want it refused", err)
	}
}

// The cursor topic's edges: cursors only the group offsets held (an older
// costpipe's replays) are copied into it before anything is sent; a
// cursor topic that refuses the cursors stops the replay with the groups'
// offsets moved, so a new run resumes there; a stored cursor past the end
// of its partition (a recreated topic on a broker without topic IDs) is
// ignored with a warning; of a key's records the greatest wins; a DLQ
// topic that does not exist creates no cursor topic; compact,delete is
// refused.
func TestReplayCursorEdges(t *testing.T) {
	t.Parallel()
	base, adm := tenRecordsFixture(t)
	ctx := context.Background()
	cl, err := kgo.NewClient(base...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	dlq := schemas.DefaultDLQTopic
	o := consumers.DLQReplayOptions{Topic: dlq, To: replayTo, Group: "replay", Reasons: []string{"too_old"}}

	// An older costpipe replayed all 10: only the group knows, and
	// nothing new comes to move the cursor.
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: dlq, Partition: 0, At: 10, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx, "replay.too_old", offs); err != nil {
		t.Fatal(err)
	}
	if st, err := consumers.ReplayDLQ(ctx, base, o); err != nil || consumers.Total(st.Sent) != 0 {
		t.Fatalf("replay after an older costpipe's: sent %v, %v; want nothing", st.Sent, err)
	}
	if _, err := adm.DeleteGroup(ctx, "replay.too_old"); err != nil {
		t.Fatal(err)
	}
	if st, err := consumers.ReplayDLQ(ctx, base, o); err != nil || consumers.Total(st.Sent) != 0 {
		t.Fatalf("replay after the group's offsets expired: sent %v, %v; want nothing", st.Sent, err)
	}

	// A stored cursor past the end (no topic ID), then a lower one: the
	// greater is the cursor, and it is ignored.
	for _, next := range []int64{999, 3} {
		v := fmt.Sprintf(`{"topic":%q,"group":"other.too_old","partition":0,"next":%d}`, dlq, next)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: dlq + consumers.CursorTopicSuffix, Key: []byte("x"), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	other := o
	other.Group, other.DryRun = "other", true
	if st, err := consumers.ReplayDLQ(ctx, base, other); err != nil || st.Sent["too_old"] != 10 || len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "offset 999, past the end") {
		t.Errorf("a cursor past the end: would send %v, warnings %q, %v; want all 10 and a warning", st.Sent, st.Warnings, err)
	}

	// A cursor topic that refuses the cursors (its records too large).
	small, compact := "10", "compact"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": &small, "cleanup.policy": &compact}, "cursors.small"); err != nil {
		t.Fatal(err)
	}
	third := o
	third.Group, third.CursorTopic = "third", "cursors.small"
	st, err := consumers.ReplayDLQ(ctx, base, third)
	if err == nil || !strings.Contains(err.Error(), "committed that for the groups") || st.Sent["too_old"] != 10 {
		t.Fatalf("replay into a cursor topic that refuses: sent %v, %v; want the batch sent, the groups' offsets moved and an error", st.Sent, err)
	}
	if st, err := consumers.ReplayDLQ(ctx, base, third); err == nil || !strings.Contains(err.Error(), "nothing was sent") || consumers.Total(st.Sent) != 0 {
		t.Errorf("again: sent %v, %v; want nothing sent", st.Sent, err)
	}

	// compact,delete expires cursors too.
	both := "compact,delete"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &both}, "cursors.both"); err != nil {
		t.Fatal(err)
	}
	third.CursorTopic = "cursors.both"
	if _, err := consumers.ReplayDLQ(ctx, base, third); err == nil || !strings.Contains(err.Error(), "cleanup.policy=compact,delete") {
		t.Errorf("cursor topic compact,delete: %v; want it refused", err)
	}

	// A mistyped DLQ topic: nothing to replay, and no cursor topic made.
	typo := o
	typo.Topic = "nosuch.dlq"
	if _, err := consumers.ReplayDLQ(ctx, base, typo); !errors.Is(err, consumers.ErrNoDLQTopic) {
		t.Errorf("replay of a missing DLQ topic: %v, want ErrNoDLQTopic", err)
	}
	if ts, err := adm.ListTopics(ctx, "nosuch.dlq"+consumers.CursorTopicSuffix); err != nil || ts.Has("nosuch.dlq"+consumers.CursorTopicSuffix) {
		t.Errorf("replay of a missing DLQ topic created %v (%v)", ts.Names(), err)
	}
	// Each record went once: by the group "third", whose rerun sent none
	// again (the older costpipe's replays are not in this topic).
	got := replayed(t, base)
	for i := range 10 {
		if n := len(got[fmt.Sprintf("%s/0/%d", dlq, i)]); n != 1 {
			t.Errorf("DLQ offset %d replayed %d times, want once", i, n)
		}
	}
}
