package e2e

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/schemas"
)

// background produces a wave every 100ms until stop is called.
type background struct {
	size    atomic.Int32 // new events per wave
	dupFrom atomic.Int64 // duplicates are copies of the first dupFrom records (0: any)
	stopped chan struct{}
	wg      sync.WaitGroup
	waves   atomic.Int64
}

func produceInBackground(pr *producer, size int) *background {
	bg := &background{stopped: make(chan struct{})}
	bg.size.Store(int32(size))
	bg.wg.Add(1)
	go func() {
		defer bg.wg.Done()
		for {
			select {
			case <-bg.stopped:
				return
			default:
			}
			// ~2% exact duplicates, one invalid record per wave.
			if !pr.wave(int(bg.size.Load()), 20*time.Minute, 2, int(bg.dupFrom.Load()), 1) {
				return
			}
			bg.waves.Add(1)
			select {
			case <-bg.stopped:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return bg
}

func (bg *background) stop() {
	select {
	case <-bg.stopped:
	default:
		close(bg.stopped)
	}
	bg.wg.Wait()
}

func landedRequests(conn driver.Conn, db string) uint64 {
	s, err := tableTotal(context.Background(), conn, db, "usage_1m")
	if err != nil {
		return 0
	}
	return s.Requests
}

// TestKillRestartAndClickHouseOutage: one aggregator is SIGKILLed mid-stream
// and restarted, ClickHouse is stopped for 5s and restarted, duplicates of
// events from before the crash arrive after it; the rollups end exact.
func TestKillRestartAndClickHouseOutage(t *testing.T) {
	t.Parallel()
	srv := chtest.Start(t)
	db := srv.NewDatabase(t)
	conn := srv.Conn(t, db)
	b := kafkatest.Start(t, 4)
	pr := newProducer(t, b.Addr(), "kr", 1)
	const group = "e2e-kill"
	flags := []string{"--flush-interval", "300ms"}
	phase := phaser(t)

	a1 := startAggregator(t, "A1", b.Addr(), srv.DSN(db), group, flags...)
	bg := produceInBackground(pr, 150)
	defer bg.stop()

	// Phase 1: kill A1 mid-stream, after some flushes landed.
	waitFor(t, 30*time.Second, "A1 to land a few flushes", func() bool {
		return pr.validCount() >= 3000 && a1.metric("costpipe_flushes_total") >= 3 && landedRequests(conn, db) > 0
	})
	pr.kcatEvents(500, 20*time.Minute) // a slice through librdkafka, while franz-go waves go on
	time.Sleep(time.Duration(100+pr.validCount()%300) * time.Millisecond)
	admin := adminClient(t, b.Addr())
	dead := memberOf(t, admin, group, a1)
	flushes := a1.metric("costpipe_flushes_total")
	a1.kill()
	preKill := pr.recordsLen()
	phase("SIGKILLed A1 after %.0f flushes; %d valid events produced, %d landed", flushes, pr.validCount(), landedRequests(conn, db))

	// Phase 2: restart; duplicates of pre-crash events arrive after it.
	bg.dupFrom.Store(int64(preKill))
	time.Sleep(time.Second)
	// Evict A1's member as the expiry of its session would, 45s later
	// (TestThreeInstancesOneKilled waits for a real expiry).
	evict(t, admin, group, dead)
	a2 := startAggregator(t, "A2", b.Addr(), srv.DSN(db), group, flags...)
	pr.duplicates(300, preKill)
	phase("evicted A1's member, started A2; produced 300 duplicates of pre-crash events")
	waitFor(t, 30*time.Second, "A2 to own the 4 partitions", func() bool {
		return a2.metric("costpipe_partitions_owned") == 4
	})
	phase("A2 owns 4 partitions")
	waitFor(t, 30*time.Second, "A2 to land", func() bool { return a2.metric("costpipe_flushes_total") >= 2 })

	// Phase 3: ClickHouse outage while producing goes on.
	srv.Stop(t)
	phase("stopped ClickHouse")
	time.Sleep(5 * time.Second)
	srv.Restart(t)
	phase("restarted ClickHouse; A2 saw %.0f ClickHouse errors so far", a2.metric("costpipe_clickhouse_errors_total"))
	pr.duplicates(100, preKill)
	time.Sleep(2 * time.Second)
	bg.stop()
	valid, invalid, _, dups := pr.snapshot()
	phase("stopped producing: %d valid events, %d duplicates, %d invalid records, %d waves", len(valid), dups, len(invalid), bg.waves.Load())

	waitTotals(t, conn, db, valid, 60*time.Second)
	phase("converged; A2: %.0f ClickHouse errors, %.0f duplicates dropped, %.0f replayed records skipped as landed",
		a2.metric("costpipe_clickhouse_errors_total"), a2.metric("costpipe_duplicates_total"), a2.metric("costpipe_records_already_landed_total"))
	if n := a2.metric("costpipe_clickhouse_errors_total"); n <= 0 {
		t.Errorf("A2 reports %v ClickHouse errors: the outage was not exercised", n)
	}
	a2.mustTerm()
	checkExact(t, conn, db, valid)
	checkDLQ(t, b.Addr(), invalid)
	phase("done")
}

// TestThreeInstancesOneKilled: three aggregators share a group; one is
// SIGKILLed mid-stream and a replacement joins; the group rebalances when the
// dead member's session expires (45s, franz-go's default); the rollups end
// exact.
func TestThreeInstancesOneKilled(t *testing.T) {
	t.Parallel()
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	conn := srv.Conn(t, db)
	b := kafkatest.Start(t, 6)
	pr := newProducer(t, b.Addr(), "three", 2)
	const group = "e2e-three"
	flags := []string{"--flush-interval", "300ms"}
	phase := phaser(t)

	// Start the three at once, as a deployment would (concurrent migrations).
	aggs := make([]*aggregator, 3)
	for i := range aggs {
		a, err := spawnAggregator(t, fmt.Sprintf("I%d", i+1), b.Addr(), srv.DSN(db), group, flags...)
		if err != nil {
			t.Fatal(err)
		}
		aggs[i] = a
	}
	for _, a := range aggs {
		if err := a.ready(); err != nil {
			t.Fatal(err)
		}
	}
	owned := func(as ...*aggregator) (sum float64, each []float64) {
		for _, a := range as {
			n := a.metric("costpipe_partitions_owned")
			each = append(each, n)
			sum += n
		}
		return sum, each
	}
	bg := produceInBackground(pr, 150)
	defer bg.stop()
	waitFor(t, 30*time.Second, "the three to share the 6 partitions", func() bool {
		sum, each := owned(aggs...)
		return sum == 6 && each[0] > 0 && each[1] > 0 && each[2] > 0
	})
	_, each := owned(aggs...)
	phase("the three own %v partitions", each)
	waitFor(t, 30*time.Second, "every instance to land", func() bool {
		for _, a := range aggs {
			if a.metric("costpipe_flushes_total") < 2 {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond)
	aggs[1].kill()
	phase("SIGKILLed I2 (partitions %v) mid-stream (%d valid events produced, %d landed)", aggs[1].assigned(), pr.validCount(), landedRequests(conn, db))
	time.Sleep(2 * time.Second) // the survivors go on alone; I2's partitions wait
	bg.size.Store(60)
	repl := startAggregator(t, "I4", b.Addr(), srv.DSN(db), group, flags...)
	live := []*aggregator{aggs[0], aggs[2], repl}
	phase("started replacement I4; the group waits for I2's session (45s) to expire")
	waitFor(t, 75*time.Second, "the survivors and the replacement to own the 6 partitions", func() bool {
		sum, each := owned(live...)
		return sum == 6 && each[2] > 0
	})
	_, each = owned(live...)
	phase("I1, I3, I4 own %v partitions", each)
	bg.size.Store(150)
	time.Sleep(3 * time.Second)
	bg.stop()
	valid, invalid, _, dups := pr.snapshot()
	phase("stopped producing: %d valid events, %d duplicates, %d invalid records", len(valid), dups, len(invalid))
	waitTotals(t, conn, db, valid, 60*time.Second)
	for _, a := range live {
		phase("%s: %.0f flushes, %.0f duplicates dropped, %.0f replayed records skipped as landed", a.name,
			a.metric("costpipe_flushes_total"), a.metric("costpipe_duplicates_total"), a.metric("costpipe_records_already_landed_total"))
		a.mustTerm()
	}
	checkExact(t, conn, db, valid)
	checkDLQ(t, b.Addr(), invalid)
	phase("done")
}

// monthRows returns, for one rollup table, the requests by (partition id of
// the part holding the row, toYYYYMM(ts)).
func monthRows(t *testing.T, conn driver.Conn, db, table string) map[string]uint64 {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT splitByChar('_', _part)[1] AS pid, toString(toYYYYMM(ts)) AS m, sumMerge(requests) FROM "+
		db+"."+table+" GROUP BY pid, m")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var pid, m string
		var n uint64
		if err := rows.Scan(&pid, &m, &n); err != nil {
			t.Fatal(err)
		}
		out["partition "+pid+" month "+m] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkMonths(t *testing.T, conn driver.Conn, db string, jan, feb uint64) {
	t.Helper()
	want := map[string]uint64{"partition 202501 month 202501": jan, "partition 202502 month 202502": feb}
	for _, tbl := range rollupTables {
		got := monthRows(t, conn, db, tbl)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s requests by (part partition, month) = %v, want %v", tbl, got, want)
		}
	}
}

// TestMonthBoundary: two events 100ms apart across a month boundary, in one
// Kafka partition, land in one flush as one insert per (table, month); each is
// counted once, in its month's partition, across a restart and a full replay.
func TestMonthBoundary(t *testing.T) {
	t.Parallel()
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	conn := srv.Conn(t, db)
	b := kafkatest.Start(t, 3)
	pr := newProducer(t, b.Addr(), "month", 3)
	mk := func(id string, ts time.Time) schemas.Event {
		return schemas.Event{EventID: id, Timestamp: ts, Tenant: "acme", Provider: "openai", Model: "gpt-4o",
			Status: schemas.StatusOK, InputTokens: 120_000, CachedInputTokens: 20_000, OutputTokens: 3_000,
			LatencyMs: 850, HasLatency: true}
	}
	// Same tenant and model: same key, same Kafka partition, consecutive offsets.
	pr.produceEvents(mk("month-jan", time.Date(2025, 1, 31, 23, 59, 59, 900_000_000, time.UTC)),
		mk("month-feb", time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)))
	flags := []string{"--flush-interval", "300ms", "--max-event-age", "100000h"}

	a := startAggregator(t, "A", b.Addr(), srv.DSN(db), "e2e-month", flags...)
	valid, _, _, _ := pr.snapshot()
	waitTotals(t, conn, db, valid, 30*time.Second)
	// The counter moves after the flush's last table has landed, a moment
	// after the totals can be read: wait for it, then for any later flush.
	waitFor(t, 10*time.Second, "A's flush to be counted", func() bool { return a.metric("costpipe_flushes_total") >= 1 })
	time.Sleep(time.Second) // three flush intervals
	if n := a.metric("costpipe_flushes_total"); n != 1 {
		t.Errorf("the two events landed in %v flushes, want 1", n)
	}
	checkMonths(t, conn, db, 1, 1)
	a.mustTerm()

	// Restart in the same group: nothing is replayed, nothing added.
	a = startAggregator(t, "A-restarted", b.Addr(), srv.DSN(db), "e2e-month", flags...)
	waitFor(t, 30*time.Second, "the restarted aggregator to own the partitions", func() bool {
		return a.metric("costpipe_partitions_owned") == 3
	})
	time.Sleep(time.Second)
	checkExact(t, conn, db, valid)
	checkMonths(t, conn, db, 1, 1)
	a.mustTerm()

	// A new group reads the topic from the start: the landing marks of both
	// months must skip both records, and a later January record must land.
	a = startAggregator(t, "A-replay", b.Addr(), srv.DSN(db), "e2e-month-replay", flags...)
	waitFor(t, 30*time.Second, "the replay to skip the two landed records", func() bool {
		return a.metric("costpipe_records_already_landed_total") == 2
	})
	pr.produceEvents(mk("month-jan-late", time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC)))
	valid, _, _, _ = pr.snapshot()
	waitTotals(t, conn, db, valid, 30*time.Second)
	a.mustTerm()
	checkExact(t, conn, db, valid)
	checkMonths(t, conn, db, 2, 1)
}

// TestSIGTERMLandsEverything: with a 1h flush interval nothing lands by timer;
// SIGTERM lands everything, commits and exits 0; a restart adds nothing.
func TestSIGTERMLandsEverything(t *testing.T) {
	t.Parallel()
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	conn := srv.Conn(t, db)
	b := kafkatest.Start(t, 3)
	pr := newProducer(t, b.Addr(), "term", 4)
	const group = "e2e-term"

	a := startAggregator(t, "A", b.Addr(), srv.DSN(db), group, "--flush-interval", "1h")
	for range 3 {
		pr.wave(1000, 30*time.Minute, 2, 0, 3)
	}
	records := pr.recordCount()
	waitFor(t, 30*time.Second, fmt.Sprintf("the aggregator to consume the %d records", records), func() bool {
		return a.metric("costpipe_records_in_total") == float64(records) && a.metric("costpipe_consumer_lag_records") == 0
	})
	if n := landedRequests(conn, db); n != 0 {
		t.Fatalf("%d requests landed before SIGTERM with a 1h flush interval", n)
	}
	if code := a.term(45 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	if !a.logContains("shutdown: landed and committed") {
		t.Errorf("no shutdown line in the log")
	}
	valid, invalid, _, dups := pr.snapshot()
	t.Logf("%d records: %d valid events, %d duplicates, %d invalid", records, len(valid), dups, len(invalid))
	checkExact(t, conn, db, valid) // no waiting: everything landed before the exit

	// The group's committed offsets are the end offsets.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	ends, err := adm.ListEndOffsets(ctx, schemas.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	var diffs []string
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup(schemas.DefaultTopic, o.Partition)
		if !ok || c.At != o.Offset {
			diffs = append(diffs, fmt.Sprintf("partition %d: committed %d (found %v), end %d", o.Partition, c.At, ok, o.Offset))
		}
	})
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("committed offsets differ from the end offsets:\n%s", strings.Join(diffs, "\n"))
	}
	checkDLQ(t, b.Addr(), invalid)

	// A restart adds nothing.
	a = startAggregator(t, "A-restarted", b.Addr(), srv.DSN(db), group, "--flush-interval", "300ms")
	waitFor(t, 30*time.Second, "the restarted aggregator to own the partitions", func() bool {
		return a.metric("costpipe_partitions_owned") == 3
	})
	time.Sleep(1500 * time.Millisecond)
	a.mustTerm()
	checkExact(t, conn, db, valid)
}

// TestClickHouseDownAtFirstFlush: ClickHouse is down when a partition's first
// flush, which holds only its record at offset 0, is due; once ClickHouse is
// back the record must land in every table.
func TestClickHouseDownAtFirstFlush(t *testing.T) {
	t.Parallel()
	srv := chtest.Start(t)
	db := srv.NewDatabase(t)
	b := kafkatest.Start(t, 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(schemas.DefaultTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pr := newProducer(t, b.Addr(), "first", 5) // generates the events only
	var events []schemas.Event
	produce := func(partition int32) {
		t.Helper()
		ev := pr.event(time.Now().Add(-time.Minute))
		r := jsonRecord(&ev)
		r.Partition = partition
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		t.Logf("produced %s to partition %d offset %d", ev.EventID, r.Partition, r.Offset)
		events = append(events, ev)
	}

	a := startAggregator(t, "A", b.Addr(), srv.DSN(db), "e2e-first", "--flush-interval", "500ms")
	conn := srv.Conn(t, db)
	produce(1)
	waitTotals(t, conn, db, events, 30*time.Second) // the landing marks are loaded, ClickHouse works
	srv.Stop(t)
	produce(0) // partition 0's first record: the flush lands offsets ..0
	waitFor(t, 30*time.Second, "a failed insert", func() bool { return a.metric("costpipe_clickhouse_errors_total") >= 1 })
	time.Sleep(time.Second)
	srv.Restart(t)
	conn = srv.Conn(t, db)
	if !pollTotals(conn, db, events, 20*time.Second) {
		t.Errorf("totals did not converge within 20s of ClickHouse's restart")
		if a.logContains("a retried insert had landed") {
			t.Errorf("the aggregator judged its failed insert of partition 0 (end offset 0) as landed " +
				"(log: \"a retried insert had landed; not inserting it again\")")
		}
	}
	a.mustTerm()
	checkExact(t, conn, db, events)
}

// TestDLQUnavailableThenRecovers: the DLQ topic is missing (auto-creation is
// off for clients) when an invalid record arrives, then it is created. The
// aggregator must recover: the invalid record reaches the DLQ, offsets are
// committed up to the end, and SIGTERM exits 0.
func TestDLQUnavailableThenRecovers(t *testing.T) {
	t.Parallel()
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	conn := srv.Conn(t, db)
	b := kafkatest.Start(t, 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	if _, err := adm.DeleteTopic(ctx, schemas.DefaultDLQTopic); err != nil {
		t.Fatalf("delete the DLQ topic: %v", err)
	}
	pr := newProducer(t, b.Addr(), "dlq", 6)
	const group = "e2e-dlq"
	a := startAggregator(t, "A", b.Addr(), srv.DSN(db), group, "--flush-interval", "300ms")
	waitFor(t, 30*time.Second, "the aggregator to own the partitions", func() bool {
		return a.metric("costpipe_partitions_owned") == 2
	})
	pr.wave(200, 10*time.Minute, 0, 0, 1)
	waitFor(t, 30*time.Second, "the invalid record to be sent to the DLQ", func() bool { return a.metric("costpipe_dlq_records_total") >= 1 })
	deadline := time.Now().Add(5 * time.Second)
	for !a.logContains("cannot produce to DLQ") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("DLQ produce failure logged: %v", a.logContains("cannot produce to DLQ"))
	// The aggregator asks for auto-creation of its DLQ topic; where the
	// cluster allows it (this broker does) the topic is back already.
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, schemas.DefaultDLQTopic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create the DLQ topic: %v", err)
	}
	t.Logf("DLQ topic exists again")
	pr.wave(200, 10*time.Minute, 0, 0, 1)
	valid, invalid, _, _ := pr.snapshot()
	waitTotals(t, conn, db, valid, 30*time.Second)

	committedAtEnd := func() string {
		ends, err := adm.ListEndOffsets(ctx, schemas.DefaultTopic)
		if err != nil {
			return err.Error()
		}
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return err.Error()
		}
		var diffs []string
		ends.Each(func(o kadm.ListedOffset) {
			if c, _ := committed.Lookup(schemas.DefaultTopic, o.Partition); c.At != o.Offset {
				diffs = append(diffs, fmt.Sprintf("partition %d committed %d, end %d", o.Partition, c.At, o.Offset))
			}
		})
		return strings.Join(diffs, "; ")
	}
	deadline = time.Now().Add(15 * time.Second)
	for committedAtEnd() != "" && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if d := committedAtEnd(); d != "" {
		t.Errorf("15s after the DLQ topic came back, offsets are still not committed: %s; flushes abandoned: %.0f",
			d, a.metric("costpipe_flushes_abandoned_total"))
	}
	if code := a.term(45 * time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	checkExact(t, conn, db, valid)
	checkDLQ(t, b.Addr(), invalid)
}
