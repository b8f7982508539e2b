package warehouse

import (
	"context"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	chschema "github.com/costpipe/costpipe/schemas/clickhouse"
)

// landV1 inserts rows into t's input table of schema 0001 (usage_1m_input),
// as an aggregator of that version did: same column names, one insert.
func landV1(t *testing.T, w *Warehouse, tb Table, rows []Rollup) {
	t.Helper()
	if err := insertV1(w, tb, rows); err != nil {
		t.Fatal(err)
	}
}

func insertV1(w *Warehouse, tb Table, rows []Rollup) error {
	return insertLegacy(w, tb.Name()+"_input", rows)
}

// removedBy0008 are the input columns migration 0008 removed (the counts
// and extremes of the durations, derived from the histograms since), with
// the values an aggregator of an older version inserted.
var removedBy0008 = []struct {
	name string
	val  func(r *Rollup) any
}{
	{"latency_count", func(r *Rollup) any { return r.Latency.Count }},
	{"latency_min_ms", func(r *Rollup) any { return legacyMin(r.Latency) }},
	{"latency_max_ms", func(r *Rollup) any { return r.Latency.MaxMs }},
	{"ttft_count", func(r *Rollup) any { return r.TTFT.Count }},
	{"ttft_min_ms", func(r *Rollup) any { return legacyMin(r.TTFT) }},
	{"ttft_max_ms", func(r *Rollup) any { return r.TTFT.MaxMs }},
}

func legacyMin(d Dist) float64 {
	if d.Count == 0 {
		return math.Inf(1)
	}
	return d.MinMs
}

// legacyInsert is the column list and values of an insert by an aggregator
// of a schema before 0008: InputColumns but those added by 0004 unless
// with0004, and the columns 0008 removed.
func legacyInsert(rows []Rollup, with0004 bool) (cols string, vals [][]any) {
	var names []string
	var keep []int
	for i, c := range InputColumns() {
		if with0004 || !addedBy0004[c.Name] {
			names = append(names, c.Name)
			keep = append(keep, i)
		}
	}
	for _, c := range removedBy0008 {
		names = append(names, c.name)
	}
	for i := range rows {
		all := appendValues(&rows[i], nil)
		v := make([]any, 0, len(keep)+len(removedBy0008))
		for _, k := range keep {
			v = append(v, all[k])
		}
		for _, c := range removedBy0008 {
			v = append(v, c.val(&rows[i]))
		}
		vals = append(vals, v)
	}
	return strings.Join(names, ", "), vals
}

// insertRows inserts vals into the named table's columns cols.
func insertRows(w *Warehouse, table, cols string, vals [][]any) error {
	b, err := w.Conn().PrepareBatch(context.Background(), "INSERT INTO "+w.Database()+"."+table+" ("+cols+")")
	if err != nil {
		return err
	}
	for _, v := range vals {
		if err := b.Append(v...); err != nil {
			b.Abort()
			return err
		}
	}
	return b.Send()
}

// addedBy0004 are the input columns migration 0004 added.
var addedBy0004 = map[string]bool{"service_tier": true, "context_band": true, "cache_write_1h_tokens": true}

// insertLegacy inserts rows into an input table of schema 0001 or 0003 (the
// columns of InputColumns but those added by 0004, and those 0008
// removed), as an aggregator of that version did.
func insertLegacy(w *Warehouse, table string, rows []Rollup) error {
	cols, vals := legacyInsert(rows, false)
	return insertRows(w, table, cols, vals)
}

// oldData builds a 0001 database holding rows of two months, three Kafka
// partitions and several flushes (unmerged parts).
func oldData(t *testing.T) *Warehouse {
	t.Helper()
	w, _, _ := openTest(t)
	if _, err := w.migrate(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 31, 22, 58, 0, 0, time.UTC)
	off := int64(0)
	for flush := 0; flush < 4; flush++ {
		for _, tb := range Tables {
			byMonth := map[Month][]Rollup{}
			for i := 0; i < 12; i++ {
				ts := tb.Truncate(base.Add(time.Duration(i*17+flush*7) * time.Minute))
				r := testRollup(ts, int32(i%3), off+int64(i), uint64(1+i+flush))
				r.Tenant = fmt.Sprintf("t%d", i%4)
				byMonth[MonthOf(ts)] = append(byMonth[MonthOf(ts)], r)
			}
			for _, rows := range byMonth {
				landV1(t, w, tb, rows)
			}
		}
		off += 100
	}
	return w
}

// snapshot is everything a reader can see: merged measures per group and
// the landing marks.
type snapshot struct {
	groups map[string]Rollup
	marks  map[MarkKey]int64
}

func takeSnapshot(t *testing.T, w *Warehouse) snapshot {
	t.Helper()
	ctx := context.Background()
	s := snapshot{groups: map[string]Rollup{}}
	for _, tb := range Tables {
		// Before 0004 the tables have no cache_write_1h_tokens: read it as 0.
		sel := MergeSelect()
		var has uint64
		if err := w.Conn().QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = 'cache_write_1h_tokens'",
			w.Database(), tb.Name()).Scan(&has); err != nil {
			t.Fatal(err)
		}
		if has == 0 {
			sel = strings.Replace(sel, "sumMerge(cache_write_1h_tokens)", "toUInt64(0)", 1)
		}
		// Before 0007 the histograms are sumMap states.
		if err := w.Conn().QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = 'latency_hist'",
			w.Database(), tb.Name()).Scan(&has); err != nil {
			t.Fatal(err)
		}
		if has == 1 {
			for _, h := range []string{"latency", "ttft"} {
				merged := HistSumMap(h + "_hist")
				sel = strings.Replace(sel, merged+".1", "sumMapMerge("+h+"_hist).1", 1)
				sel = strings.Replace(sel, merged+".2", "arrayMap(x -> toUInt64(x), sumMapMerge("+h+"_hist).2)", 1)
				sel = strings.Replace(sel, "sum(arraySum("+h+"_histMap.cnt))", "sumMerge("+h+"_count)", 1)
			}
		}
		rows, err := w.Conn().Query(ctx, "SELECT toUInt32(ts), tenant, src_partition, "+sel+" FROM "+w.Database()+"."+tb.Name()+
			" GROUP BY ts, tenant, src_partition")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var (
				ts     uint32
				tenant string
				p      int32
				m      Merged
			)
			if err := rows.Scan(append([]any{&ts, &tenant, &p}, m.Dest()...)...); err != nil {
				t.Fatal(err)
			}
			if err := m.Done(); err != nil {
				t.Fatal(err)
			}
			s.groups[fmt.Sprintf("%s %d %s %d", tb.Name(), ts, tenant, p)] = m.Rollup
		}
		rows.Close()
	}
	var err error
	if s.marks, err = w.LandingMarks(ctx, "costpipe.events", []int32{0, 1, 2}, 0); err != nil {
		t.Fatal(err)
	}
	if len(s.groups) == 0 || len(s.marks) != 3*2*3 {
		t.Fatalf("snapshot: %d groups, %d marks; want some groups and 18 marks", len(s.groups), len(s.marks))
	}
	return s
}

func (s snapshot) mustEqual(t *testing.T, o snapshot) {
	t.Helper()
	if !reflect.DeepEqual(s.marks, o.marks) {
		t.Errorf("landing marks differ:\n got %v\nwant %v", o.marks, s.marks)
	}
	if len(s.groups) != len(o.groups) {
		t.Errorf("%d groups, want %d", len(o.groups), len(s.groups))
	}
	for k, want := range s.groups {
		if got := o.groups[k]; !reflect.DeepEqual(got, want) {
			t.Errorf("group %s:\n got %+v\nwant %+v", k, got, want)
		}
	}
}

// TestUpgradeFrom0001 lands data under schema 0001, migrates, and finds the
// same measures and landing marks in the new tables; an aggregator of the
// old version can no longer land.
func TestUpgradeFrom0001(t *testing.T) {
	t.Parallel()
	w := oldData(t)
	ctx := context.Background()
	before := takeSnapshot(t, w)
	res, err := w.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last := res[len(res)-1]; last.Version < 4 || !last.Applied {
		t.Fatalf("last migration %+v, want 0004 or later applied", last)
	}
	before.mustEqual(t, takeSnapshot(t, w))
	// 0003 keeps the old tables as usage_G_v1, 0007 the ones 0003 made
	// (the same data) as usage_G_v4; both say so.
	kept := map[int][]string{}
	for _, tb := range Tables {
		for v, suffix := range map[int]string{3: "_v1", 7: "_v4"} {
			var n uint64
			if err := w.Conn().QueryRow(ctx, "SELECT count() FROM "+w.Database()+"."+tb.Name()+suffix).Scan(&n); err != nil || n == 0 {
				t.Errorf("old table %s%s: %d rows, %v; want it kept", tb.Name(), suffix, n, err)
			}
			kept[v] = append(kept[v], w.Database()+"."+tb.Name()+suffix)
		}
	}
	for _, r := range res {
		if want := kept[r.Version]; !slices.Equal(r.Kept, want) {
			t.Errorf("%s kept %v, want %v", r.Name, r.Kept, want)
		}
	}
	// The old version's insert now fails (and would be retried, its offsets
	// uncommitted) instead of landing beside the new tables.
	r := testRollup(time.Now().UTC().Truncate(time.Minute), 0, 1000, 1)
	if err := insertV1(w, Minute, []Rollup{r}); err == nil || !strings.Contains(err.Error(), "usage_1m_input") {
		t.Errorf("insert into the old input table after the upgrade: %v, want an error", err)
	}
}

// TestUpgradeInterrupted runs part of 0003 by hand (as a run that died after
// copying usage_1m and creating its view) and then Migrate: nothing counted
// twice. From the first statement on, an old aggregator cannot insert.
func TestUpgradeInterrupted(t *testing.T) {
	t.Parallel()
	w := oldData(t)
	ctx := context.Background()
	before := takeSnapshot(t, w)
	ms, err := chschema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	steps := ms[2].Steps(w.Database())
	ran := 0
	for _, st := range steps {
		if err := w.Conn().Exec(ctx, st.SQL); err != nil {
			t.Fatal(err)
		}
		ran++
		if ran == 1 {
			r := testRollup(time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC), 0, 1000, 1)
			if err := insertV1(w, Minute, []Rollup{r}); err == nil {
				t.Error("an old aggregator's insert succeeded after the fence")
			}
		}
		if strings.HasPrefix(st.SQL, "CREATE MATERIALIZED VIEW") {
			break // died after usage_1m was copied and its view created
		}
	}
	if ran == len(steps) {
		t.Fatal("0003 has no materialized view")
	}
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	before.mustEqual(t, takeSnapshot(t, w))
}

// TestUpgradeConcurrent starts three migrations of the same old database at
// once, as aggregators starting together do: they take turns, the data is
// copied once.
func TestUpgradeConcurrent(t *testing.T) {
	t.Parallel()
	w := oldData(t)
	before := takeSnapshot(t, w)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := DefaultOptions()
			o.DSN = w.dsn
			w2, err := Open(context.Background(), o)
			if err != nil {
				errs[i] = err
				return
			}
			defer w2.Close()
			_, errs[i] = w2.Migrate(context.Background())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migration %d: %v", i, err)
		}
	}
	before.mustEqual(t, takeSnapshot(t, w))
	var locks uint8
	if err := w.Conn().QueryRow(context.Background(), "EXISTS TABLE "+w.Database()+".schema_migrations_lock").Scan(&locks); err != nil || locks != 0 {
		t.Errorf("lock table left behind: exists=%d err=%v", locks, err)
	}
}

// TestMigrateStaleLock: a lock left by a run that died makes Migrate wait,
// then fail naming the lock, its holder and the way out.
func TestMigrateStaleLock(t *testing.T) {
	t.Parallel()
	w, _, db := openTest(t)
	ctx := context.Background()
	if err := w.Conn().Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		t.Fatal(err)
	}
	if err := w.Conn().Exec(ctx, "CREATE TABLE "+db+".schema_migrations_lock (owner String, since DateTime('UTC')) ENGINE = Log"); err != nil {
		t.Fatal(err)
	}
	b, err := w.Conn().PrepareBatch(ctx, "INSERT INTO "+db+".schema_migrations_lock (owner, since)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append("host-a pid 7", time.Unix(1769900000, 0)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	w.lockWait = 1500 * time.Millisecond
	start := time.Now()
	_, err = w.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "host-a pid 7") || !strings.Contains(err.Error(), "DROP TABLE "+db+".schema_migrations_lock") {
		t.Fatalf("Migrate with a stale lock = %v, want an error naming the holder and the DROP", err)
	}
	if waited := time.Since(start); waited < w.lockWait {
		t.Errorf("gave up after %s, before the %s wait", waited, w.lockWait)
	}
	if err := w.Conn().Exec(ctx, "DROP TABLE "+db+".schema_migrations_lock"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatalf("Migrate after the lock was dropped: %v", err)
	}
}

// TestUpgradeFrom0003 lands data through the v3 input tables, migrates to
// 0004, and finds the same measures and landing marks; the v3 input tables
// refuse inserts; and rows that differ only in the new dimensions stay
// apart through merges (they are in the sort key).
func TestUpgradeFrom0003(t *testing.T) {
	t.Parallel()
	w, _, _ := openTest(t)
	ctx := context.Background()
	if _, err := w.migrate(ctx, 3); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 31, 23, 54, 0, 0, time.UTC)
	for _, tb := range Tables {
		byMonth := map[Month][]Rollup{}
		for i := 0; i < 12; i++ {
			ts := tb.Truncate(base.Add(time.Duration(i) * time.Minute))
			r := testRollup(ts, int32(i%3), int64(10+i), uint64(1+i))
			byMonth[MonthOf(ts)] = append(byMonth[MonthOf(ts)], r)
		}
		for _, rows := range byMonth {
			if err := insertLegacy(w, tb.Name()+"_input_v3", rows); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := takeSnapshot(t, w)
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	before.mustEqual(t, takeSnapshot(t, w))
	r := testRollup(base, 0, 99, 1)
	if err := insertLegacy(w, Minute.Name()+"_input_v3", []Rollup{r}); err == nil {
		t.Error("an insert into usage_1m_input_v3 after 0004 succeeded")
	}
	if err := w.CheckSchema(ctx); err != nil {
		t.Fatal(err)
	}

	// Same key but the service tier and the context band: three rows after
	// OPTIMIZE FINAL, not one.
	ts := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var rows []Rollup
	for i, d := range []struct {
		tier string
		band uint32
	}{{"", 0}, {"batch", 0}, {"", 200_000}} {
		x := testRollup(ts, 0, int64(200+i), 1)
		x.ServiceTier, x.ContextBand, x.CacheWrite1hTokens = d.tier, d.band, uint64(i)
		rows = append(rows, x)
	}
	if err := w.InsertRollups(ctx, Minute, rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Conn().Exec(ctx, "OPTIMIZE TABLE "+w.Database()+".usage_1m FINAL"); err != nil {
		t.Fatal(err)
	}
	var n, cw1h uint64
	if err := w.Conn().QueryRow(ctx, "SELECT count(), sum(finalizeAggregation(cache_write_1h_tokens)) FROM "+w.Database()+
		".usage_1m WHERE ts = toDateTime(?, 'UTC')", ts.Unix()).Scan(&n, &cw1h); err != nil {
		t.Fatal(err)
	}
	if n != 3 || cw1h != 3 {
		t.Errorf("after OPTIMIZE FINAL: %d rows, cache_write_1h_tokens %d; want 3 rows, 3", n, cw1h)
	}
}

// insertInput lands rows through the named input table with every column of
// InputColumns and those 0008 removed, as an aggregator of schema 0004 to
// 0007 did (usage_G_input_v4, usage_G_input_v7).
func insertInput(w *Warehouse, table string, rows []Rollup) error {
	cols, vals := legacyInsert(rows, true)
	return insertRows(w, table, cols, vals)
}

// TestUpgradeFrom0006Interrupted lands data through the v4 input tables,
// then runs 0007 by hand as a run that died right after usage_1m's new
// input table and view were created; an aggregator lands a row there; the
// next Migrate completes the upgrade without copying usage_1m again: the
// old data once, the new row kept, the v4 input tables fenced. After
// OPTIMIZE FINAL the histograms of one key are summed by bucket into one row
// (SummingMergeTree's …Map columns).
func TestUpgradeFrom0006Interrupted(t *testing.T) {
	t.Parallel()
	w, _, _ := openTest(t)
	ctx := context.Background()
	if _, err := w.migrate(ctx, 6); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 31, 23, 54, 0, 0, time.UTC)
	for _, tb := range Tables {
		byMonth := map[Month][]Rollup{}
		for i := 0; i < 12; i++ {
			ts := tb.Truncate(base.Add(time.Duration(i) * time.Minute))
			r := testRollup(ts, int32(i%3), int64(10+i), uint64(1+i))
			byMonth[MonthOf(ts)] = append(byMonth[MonthOf(ts)], r)
		}
		for _, rows := range byMonth {
			if err := insertInput(w, tb.Name()+"_input_v4", rows); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := takeSnapshot(t, w)

	ms, err := chschema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var m7 chschema.Migration
	for _, m := range ms {
		if m.Version == 7 {
			m7 = m
		}
	}
	runStepsUntil(t, w, m7, func(i int, sql string) bool {
		if i == 0 {
			if err := insertInput(w, "usage_1m_input_v4", []Rollup{testRollup(base, 0, 1000, 1)}); err == nil {
				t.Error("an insert into usage_1m_input_v4 succeeded after the fence")
			}
		}
		return strings.HasPrefix(sql, "CREATE MATERIALIZED VIEW")
	})
	// An aggregator of 0007 lands into the new usage_1m before the
	// migration is complete.
	late := testRollup(time.Date(2026, 2, 1, 0, 7, 0, 0, time.UTC), 1, 500, 4)
	if err := insertInput(w, "usage_1m_input_v7", []Rollup{late}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.CheckSchema(ctx); err != nil {
		t.Fatal(err)
	}
	after := takeSnapshot(t, w)
	lateKey := fmt.Sprintf("usage_1m %d %s %d", late.TS.Unix(), late.Tenant, late.SrcPartition)
	if got := after.groups[lateKey]; got.Requests != late.Requests {
		t.Errorf("the row landed during the upgrade: %d requests, want %d (lost or copied over)", got.Requests, late.Requests)
	}
	delete(after.groups, lateKey)
	// The late row moved one landing mark.
	want := before
	want.marks = maps.Clone(before.marks)
	want.marks[MarkKey{Minute, MonthOf(late.TS), 1}] = late.SrcOffset
	want.mustEqual(t, after)

	// Two inserts of one key: one row after OPTIMIZE FINAL, counts summed
	// by bucket.
	ts := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	a, b := testRollup(ts, 2, 600, 1), testRollup(ts, 2, 601, 1)
	a.Latency.HistIdx, a.Latency.HistCnt = []int16{3, 9}, []uint64{1, 2}
	b.Latency.HistIdx, b.Latency.HistCnt = []int16{9, 12}, []uint64{5, 7}
	for _, r := range []Rollup{a, b} {
		if err := w.InsertRollups(ctx, Minute, []Rollup{r}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Conn().Exec(ctx, "OPTIMIZE TABLE "+w.Database()+".usage_1m FINAL"); err != nil {
		t.Fatal(err)
	}
	var (
		n   uint64
		idx []int16
		cnt []uint32
	)
	if err := w.Conn().QueryRow(ctx, "SELECT count(), any(latency_histMap.idx), any(latency_histMap.cnt) FROM "+w.Database()+
		".usage_1m WHERE ts = toDateTime(?, 'UTC') AND src_partition = 2", ts.Unix()).Scan(&n, &idx, &cnt); err != nil {
		t.Fatal(err)
	}
	if n != 1 || fmt.Sprint(idx, cnt) != "[3 9 12] [1 7 7]" {
		t.Errorf("after OPTIMIZE FINAL: %d rows, histogram %v %v; want 1 row, [3 9 12] [1 7 7]", n, idx, cnt)
	}
}

// summariesMatch fails unless every per-model summary holds, per bucket,
// provider and model, exactly the merged measures of its rollup.
func summariesMatch(t *testing.T, w *Warehouse) {
	t.Helper()
	ctx := context.Background()
	read := func(table, ts string) map[string]Rollup {
		out := map[string]Rollup{}
		rows, err := w.Conn().Query(ctx, "SELECT toUInt32("+ts+") AS bucket, provider, model, "+MergeSelect()+" FROM "+w.Database()+"."+table+
			" GROUP BY bucket, provider, model")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				ts              uint32
				provider, model string
				m               Merged
			)
			if err := rows.Scan(append([]any{&ts, &provider, &model}, m.Dest()...)...); err != nil {
				t.Fatal(err)
			}
			if err := m.Done(); err != nil {
				t.Fatal(err)
			}
			out[fmt.Sprintf("%d %s %s", ts, provider, model)] = m.Rollup
		}
		return out
	}
	for _, tb := range SummaryTables {
		bucket := "ts"
		if tb == Week {
			bucket = weekStart
		}
		src := tb.Rollup().Name()
		want, got := read(src, bucket), read(tb.ModelName(), "ts")
		if len(want) == 0 {
			t.Fatalf("%s is empty: nothing to compare %s with", src, tb.ModelName())
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s does not hold what %s holds per bucket, provider and model:\n got %+v\nwant %+v", tb.ModelName(), src, got, want)
		}
	}
}

// TestUpgradeFillsSummaries: data landed under the migration before one
// that creates a summary (0009: hours and days; 0010: weeks), from two
// providers, several models, tenants and Kafka partitions, is in the
// summaries after the upgrade, merged per model; a fill that died halfway
// (here: a stray row in the new summary, as a half-done INSERT … SELECT
// leaves) is redone from an empty table; after the upgrade every insert
// reaches all of them.
func TestUpgradeFillsSummaries(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		version int
		summary Table // the summary the interrupted fill was writing
	}{{9, Hour}, {10, Week}} {
		t.Run(fmt.Sprintf("%04d", c.version), func(t *testing.T) {
			upgradeFillsSummaries(t, c.version, c.summary)
		})
	}
}

func upgradeFillsSummaries(t *testing.T, version int, summary Table) {
	w, _, _ := openTest(t)
	ctx := context.Background()
	if _, err := w.migrate(ctx, version-1); err != nil {
		t.Fatal(err)
	}
	// Two months, and a week that begins in the first (Monday 26 January).
	base := time.Date(2026, 1, 31, 23, 50, 0, 0, time.UTC)
	land := func(input func(Table) string, off int64) {
		for _, tb := range Tables {
			byMonth := map[Month][]Rollup{}
			for i := 0; i < 24; i++ {
				ts := tb.Truncate(base.Add(time.Duration(i*7) * time.Minute))
				if tb == Day && i%6 == 5 {
					ts = ts.AddDate(0, 0, i) // later weeks of February
				}
				r := testRollup(ts, int32(i%3), off+int64(i), uint64(1+i))
				r.Tenant, r.Model = fmt.Sprintf("t%d", i%4), fmt.Sprintf("m%d", i%3)
				if i%5 == 0 {
					r.Provider = "anthropic"
				}
				byMonth[MonthOf(ts)] = append(byMonth[MonthOf(ts)], r)
			}
			for _, rows := range byMonth {
				vals := make([][]any, len(rows))
				for j := range rows {
					vals[j] = appendValues(&rows[j], nil)
				}
				if err := insertRows(w, input(tb), insertColumns, vals); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	land(func(tb Table) string { return fmt.Sprintf("%s_input_v%d", tb.Name(), version-1) }, 0)

	ms, err := chschema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var m chschema.Migration
	for _, mm := range ms {
		if mm.Version == version {
			m = mm
		}
	}
	if m.Version != version {
		t.Fatalf("no migration %d", version)
	}
	runStepsUntil(t, w, m, func(_ int, sql string) bool {
		return strings.HasPrefix(sql, "INSERT INTO "+w.Database()+"."+summary.ModelName())
	})
	if err := w.Conn().Exec(ctx, "INSERT INTO "+w.Database()+"."+summary.ModelName()+" SELECT * FROM "+w.Database()+"."+summary.ModelName()+" LIMIT 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	summariesMatch(t, w)

	// From now on the new input tables feed rollups and summaries alike.
	land(func(tb Table) string { return tb.InputName() }, 1000)
	summariesMatch(t, w)
	// The summaries are much smaller than the rollups per bucket: one row
	// per bucket, provider and model once merged.
	for _, tb := range SummaryTables {
		if err := w.Conn().Exec(ctx, "OPTIMIZE TABLE "+w.Database()+"."+tb.ModelName()+" FINAL"); err != nil {
			t.Fatal(err)
		}
		var rows, keys uint64
		if err := w.Conn().QueryRow(ctx, "SELECT count(), uniqExact(ts, provider, model) FROM "+w.Database()+"."+tb.ModelName()).Scan(&rows, &keys); err != nil {
			t.Fatal(err)
		}
		if rows != keys {
			t.Errorf("%s after OPTIMIZE FINAL: %d rows for %d keys", tb.ModelName(), rows, keys)
		}
	}
	summariesMatch(t, w)
	var weeks uint64
	if err := w.Conn().QueryRow(ctx, "SELECT uniqExact(ts) FROM "+w.Database()+"."+Week.ModelName()).Scan(&weeks); err != nil {
		t.Fatal(err)
	}
	if weeks < 3 {
		t.Errorf("%s holds %d weeks, want the test's days to span at least 3", Week.ModelName(), weeks)
	}
}

// TestRebuildSummaries: summaries that lost an insert and gained a stray
// row, in two months, are refilled from the rollups; a month only the
// summary still has (its rollup's dropped) is emptied.
func TestRebuildSummaries(t *testing.T) {
	t.Parallel()
	w, _, _ := openTest(t)
	ctx := context.Background()
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 31, 23, 50, 0, 0, time.UTC)
	for _, tb := range Tables {
		byMonth := map[Month][]Rollup{}
		for i := 0; i < 24; i++ {
			ts := tb.Truncate(base.Add(time.Duration(i*7) * time.Minute))
			r := testRollup(ts, int32(i%3), int64(i), uint64(1+i))
			r.Tenant, r.Model = fmt.Sprintf("t%d", i%4), fmt.Sprintf("m%d", i%3)
			byMonth[MonthOf(ts)] = append(byMonth[MonthOf(ts)], r)
		}
		for _, rows := range byMonth {
			if err := w.InsertRollups(ctx, tb, rows); err != nil {
				t.Fatal(err)
			}
		}
	}
	db := w.Database()
	for _, q := range []string{
		// A stray copy of one row (January) and a lost part (February).
		"INSERT INTO " + db + ".usage_model_1d SELECT * FROM " + db + ".usage_model_1d WHERE toYYYYMM(ts) = 202601 LIMIT 1",
		"ALTER TABLE " + db + ".usage_model_1h DROP PARTITION 202602",
		// A month of the summary whose rollup month is gone.
		"INSERT INTO " + db + ".usage_model_1d SELECT toDateTime('2025-06-01 00:00:00', 'UTC'), provider, model, requests, errors, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, gpu_us, unpriced_requests, cost_usd, latency_sum_us, latency_histMap.idx, latency_histMap.cnt, ttft_sum_us, ttft_histMap.idx, ttft_histMap.cnt FROM " + db + ".usage_model_1d LIMIT 1",
	} {
		if err := w.Conn().Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var seen []string
	res, err := w.RebuildSummaries(ctx, func(r Rebuilt) { seen = append(seen, fmt.Sprintf("%s %d", r.Table.ModelName(), r.Month)) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"usage_model_1h 202601", "usage_model_1h 202602",
		"usage_model_1d 202506", "usage_model_1d 202601", "usage_model_1d 202602",
		"usage_model_1w 202601"} // Saturday 31 January and Sunday 1 February: the week of Monday 26 January
	if !reflect.DeepEqual(seen, want) || len(res) != len(want) {
		t.Errorf("rebuilt %v, want %v", seen, want)
	}
	summariesMatch(t, w)
	if got := partitions(t, w, "usage_model_1d"); !reflect.DeepEqual(got, []string{"202601", "202602"}) {
		t.Errorf("usage_model_1d partitions %v after the rebuild, want 202601 and 202602", got)
	}
}

// runStepsUntil runs m's statements as Migrate does (guards asked first),
// up to and including the first one for which stop is true, as a run that
// died right after it; it fails the test when no statement stops it.
func runStepsUntil(t *testing.T, w *Warehouse, m chschema.Migration, stop func(i int, sql string) bool) {
	t.Helper()
	ctx := context.Background()
	for i, st := range m.Steps(w.Database()) {
		if st.OnlyIf != "" {
			var ok uint8
			if err := w.Conn().QueryRow(ctx, st.OnlyIf).Scan(&ok); err != nil {
				t.Fatal(err)
			}
			if ok != 1 {
				continue
			}
		}
		if err := w.Conn().Exec(ctx, st.SQL); err != nil {
			t.Fatalf("%s step %d: %v", m.Name, i+1, err)
		}
		if stop(i, st.SQL) {
			return
		}
	}
	t.Fatalf("no statement of %s stops the run", m.Name)
}
