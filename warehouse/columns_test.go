package warehouse

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/pipelines/sketch"
	chschema "github.com/costpipe/costpipe/schemas/clickhouse"
)

// TestSchemaMatchesColumns runs DESCRIBE TABLE on the migrated tables of a
// real server and compares them with the one list of columns.
func TestSchemaMatchesColumns(t *testing.T) {
	t.Parallel()
	w, _, _ := openTest(t)
	ctx := context.Background()
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tb := range Tables {
		for _, c := range []struct {
			table string
			want  []Column
		}{{tb.Name(), TableColumns(tb)}, {tb.InputName(), InputColumns()}, {tb.MVName(), StoredColumns(tb)}} {
			got, err := w.Describe(ctx, c.table)
			if err != nil {
				t.Fatal(err)
			}
			if err := diffColumns(got, c.want); err != nil {
				t.Errorf("%s: %v", c.table, err)
			}
		}
	}
	for _, tb := range SummaryTables {
		for _, c := range []string{tb.ModelName(), tb.ModelMVName()} {
			got, err := w.Describe(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if err := diffColumns(got, ModelColumns(tb)); err != nil {
				t.Errorf("%s: %v", c, err)
			}
		}
	}
	// The list itself: time in UTC, the narrow counts where intended.
	if c := TableColumns(Minute)[0]; c.Name != "ts" || c.Type != "DateTime('UTC')" {
		t.Errorf("first column %+v, want ts DateTime('UTC')", c)
	}
	for tb, want := range map[Table]string{Minute: "UInt32", Hour: "UInt32", Day: "UInt64"} {
		for _, c := range TableColumns(tb) {
			if strings.HasSuffix(c.Name, "_hist") && !strings.HasSuffix(c.Type, "Array("+want+"))") {
				t.Errorf("%s.%s is %s, want counts of %s", tb.Name(), c.Name, c.Type, want)
			}
		}
	}

	// The derived columns store nothing: ALIAS columns of every table.
	for _, tb := range Tables {
		for _, d := range derivedColumns {
			var kind string
			if err := w.Conn().QueryRow(ctx, "SELECT default_kind FROM system.columns WHERE database = ? AND table = ? AND name = ?",
				w.Database(), tb.Name(), d.Name).Scan(&kind); err != nil {
				t.Fatalf("%s.%s: %v", tb.Name(), d.Name, err)
			}
			if kind != "ALIAS" {
				t.Errorf("%s.%s is %q, want an ALIAS column", tb.Name(), d.Name, kind)
			}
		}
	}

	// CheckSchema notices a table changed by hand.
	if err := w.CheckSchema(ctx); err != nil {
		t.Fatalf("CheckSchema on a migrated database: %v", err)
	}
	if err := w.Conn().Exec(ctx, "ALTER TABLE "+w.Database()+"."+Hour.InputName()+" MODIFY COLUMN gpu_us UInt32"); err != nil {
		t.Fatal(err)
	}
	if err := w.CheckSchema(ctx); err == nil || !strings.Contains(err.Error(), Hour.InputName()) || !strings.Contains(err.Error(), "gpu_us UInt32") {
		t.Errorf("CheckSchema after changing gpu_us = %v, want an error naming %s and gpu_us UInt32", err, Hour.InputName())
	}
}

// testRollup returns a row whose every measure has a distinct value, so a
// column swapped anywhere between Append, the view and MergeSelect shows.
func testRollup(ts time.Time, partition int32, offset int64, k uint64) Rollup {
	return Rollup{
		TS: ts, Tenant: "acme", Application: "chat", Provider: "openai", Model: "gpt-4o", ErrorType: "",
		SrcTopic: "costpipe.events", SrcPartition: partition, SrcOffset: offset,
		Requests: 11 * k, Errors: 1 * k, InputTokens: 1300 * k, CachedInputTokens: 170 * k, CacheWriteTokens: 19 * k,
		OutputTokens: 230 * k, ReasoningTokens: 29 * k, GPUMicros: 3100 * k, UnpricedRequests: 2 * k,
		Cost:    pricing.MustParsePico("1.000000000037").Add(pricing.FromPicos(int64(k))),
		Latency: Dist{Count: 5 * k, SumMicros: 410_000 * k, MinMs: 41.5, MaxMs: 97.25, HistIdx: []int16{187, 230}, HistCnt: []uint64{2 * k, 3 * k}},
		TTFT:    Dist{Count: 4 * k, SumMicros: 120_000 * k, MinMs: 12.5, MaxMs: 43, HistIdx: []int16{-5, 126, 190}, HistCnt: []uint64{1 * k, 1 * k, 2 * k}},
	}
}

// TestInsertRollupsRoundTrip lands rows through InsertRollups (the generated
// insert), lets the views turn them into states, and reads them back with
// MergeSelect: every measure must come back merged, in every table.
func TestInsertRollupsRoundTrip(t *testing.T) {
	t.Parallel()
	w, _, db := openTest(t)
	ctx := context.Background()
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)
	for _, tb := range Tables {
		a, b := testRollup(tb.Truncate(ts), 2, 40, 1), testRollup(tb.Truncate(ts), 2, 90, 2)
		for _, rows := range [][]Rollup{{a}, {b}} {
			if err := w.InsertRollups(ctx, tb, rows); err != nil {
				t.Fatal(err)
			}
		}
		var got Merged
		if err := w.Conn().QueryRow(ctx, "SELECT "+MergeSelect()+" FROM "+db+"."+tb.Name()).Scan(got.Dest()...); err != nil {
			t.Fatalf("%s: %v", tb.Name(), err)
		}
		if err := got.Done(); err != nil {
			t.Fatal(err)
		}
		want := testRollup(time.Time{}, 0, 0, 3)
		want.Tenant, want.Application, want.Provider, want.Model, want.SrcTopic = "", "", "", "", ""
		want.Cost = a.Cost.Add(b.Cost)
		// The extremes are the merged histogram's (0008), not the rows'.
		want.Latency.MinMs, want.Latency.MaxMs = sketch.Value(187), sketch.Value(230)
		want.TTFT.MinMs, want.TTFT.MaxMs = sketch.Value(-5), sketch.Value(190)
		if !reflect.DeepEqual(got.Rollup, want) {
			t.Errorf("%s merged:\n got %+v\nwant %+v", tb.Name(), got.Rollup, want)
		}
		// The two-stage merge (a branch with the rows, an empty one) reads
		// the same, and so does the one-stage merge of the rows, alone or
		// beside a branch of the day summary's (an empty one: the union's
		// types must agree); without histograms they keep the counts only.
		partial0, rows0, _ := TwoStageSelect(func(string) bool { return true })
		if partial0 == rows0 {
			t.Fatal("TwoStageSelect's partial and rows lists are the same")
		}
		for _, c := range []struct {
			hists  bool
			rows   bool
			second string // the union's second, empty branch
		}{{true, false, tb.Name()}, {false, false, tb.Name()}, {true, true, tb.Name()}, {false, true, tb.Name()}, {true, true, Day.SummaryName()}} {
			partial, rows, final := TwoStageSelect(func(string) bool { return c.hists })
			if c.rows {
				partial = rows
			}
			var two Merged
			q := "SELECT " + final + " FROM (SELECT " + partial + " FROM " + db + "." + tb.Name() +
				" UNION ALL SELECT " + partial + " FROM " + db + "." + c.second + " WHERE 0)"
			if err := w.Conn().QueryRow(ctx, q).Scan(two.Dest()...); err != nil {
				t.Fatalf("%s two stages (rows %v, beside %s): %v", tb.Name(), c.rows, c.second, err)
			}
			if err := two.Done(); err != nil {
				t.Fatal(err)
			}
			w2 := want
			if !c.hists {
				for _, d := range []*Dist{&w2.Latency, &w2.TTFT} {
					d.MinMs, d.MaxMs, d.HistIdx, d.HistCnt = math.Inf(1), 0, []int16{}, []uint64{}
				}
			}
			if !reflect.DeepEqual(two.Rollup, w2) {
				t.Errorf("%s merged in two stages (histograms %v, rows %v):\n got %+v\nwant %+v", tb.Name(), c.hists, c.rows, two.Rollup, w2)
			}
		}
		// SQL written against the stored columns of 0001-0007 reads the
		// ALIAS columns the same way, to the last few ulps.
		var lc, tc uint64
		var lmin, lmax, tmin, tmax float64
		if err := w.Conn().QueryRow(ctx, "SELECT sumMerge(latency_count), minMerge(latency_min_ms), maxMerge(latency_max_ms), sumMerge(ttft_count), minMerge(ttft_min_ms), maxMerge(ttft_max_ms) FROM "+db+"."+tb.Name()).
			Scan(&lc, &lmin, &lmax, &tc, &tmin, &tmax); err != nil {
			t.Fatalf("%s aliases: %v", tb.Name(), err)
		}
		if lc != want.Latency.Count || tc != want.TTFT.Count {
			t.Errorf("%s: latency_count %d, ttft_count %d, want %d, %d", tb.Name(), lc, tc, want.Latency.Count, want.TTFT.Count)
		}
		for _, c := range []struct {
			name      string
			got, want float64
		}{{"latency_min_ms", lmin, want.Latency.MinMs}, {"latency_max_ms", lmax, want.Latency.MaxMs}, {"ttft_min_ms", tmin, want.TTFT.MinMs}, {"ttft_max_ms", tmax, want.TTFT.MaxMs}} {
			if math.Abs(c.got-c.want) > 1e-12*c.want {
				t.Errorf("%s.%s = %v, want %v", tb.Name(), c.name, c.got, c.want)
			}
		}
		marks, err := w.LandingMarks(ctx, "costpipe.events", []int32{2}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if m := marks[MarkKey{tb, 202603, 2}]; m != 90 {
			t.Errorf("%s mark = %d, want 90", tb.Name(), m)
		}
	}
}

// TestInsertRollupsRefusesOverflow: a histogram count that the UInt32
// states of usage_1m cannot hold is refused, not wrapped; usage_1d takes it.
func TestInsertRollupsRefusesOverflow(t *testing.T) {
	t.Parallel()
	w, _, _ := openTest(t)
	ctx := context.Background()
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	r := testRollup(time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC), 0, 1, 1)
	r.Latency.HistCnt = []uint64{math.MaxUint32 + 1, 0}
	r.Latency.Count = math.MaxUint32 + 1
	if err := w.InsertRollups(ctx, Minute, []Rollup{r}); err == nil || !strings.Contains(err.Error(), "UInt32") {
		t.Errorf("InsertRollups(usage_1m) with a count of 2^32 = %v, want a refusal naming UInt32", err)
	}
	if err := w.InsertRollups(ctx, Day, []Rollup{r}); err != nil {
		t.Errorf("InsertRollups(usage_1d) with a count of 2^32 = %v, want it landed", err)
	}
}

// TestMigrationUsesGeneratedSelect: the views of the newest migration that
// defines them (0010) are the SELECT that MVSelect and ModelMVSelect
// generate from the list, word for word, and so are the fills of the
// summaries (ModelFillSelect) in the migrations that create them (0009
// hours and days, 0010 weeks) and their sort keys. A migration that
// redefines the views moves this check.
func TestMigrationUsesGeneratedSelect(t *testing.T) {
	t.Parallel()
	ms, err := chschema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	migration := func(v int) string {
		for _, m := range ms {
			if m.Version == v {
				return m.SQL
			}
		}
		t.Fatalf("no migration %d", v)
		return ""
	}
	views := migration(10)
	check := func(v int, sql string, wants ...string) {
		for _, want := range wants {
			if !strings.Contains(sql, want) {
				t.Errorf("%04d does not have, as generated:\n%s", v, want)
			}
		}
	}
	for _, tb := range Tables {
		check(10, views, "CREATE MATERIALIZED VIEW IF NOT EXISTS {database}."+tb.MVName()+" TO {database}."+tb.Name()+" AS\n"+MVSelect("{database}", tb)+";")
		if !tb.HasSummary() && strings.Contains(migration(9)+views, "usage_model_"+strings.TrimPrefix(tb.Name(), "usage_")) {
			t.Errorf("a migration creates the summary of %s, which SummaryTables does not list", tb.Name())
		}
	}
	created := map[Table]int{Hour: 9, Day: 9, Week: 10} // the migration creating each summary
	for _, tb := range SummaryTables {
		v, ok := created[tb]
		if !ok {
			t.Fatalf("no migration creates %s", tb.ModelName())
		}
		check(10, views, "CREATE MATERIALIZED VIEW IF NOT EXISTS {database}."+tb.ModelMVName()+" TO {database}."+tb.ModelName()+" AS\n"+ModelMVSelect("{database}", tb)+";")
		check(v, migration(v),
			"INSERT INTO {database}."+tb.ModelName()+" ("+columnList(ModelColumns(tb))+")\n"+ModelFillSelect("{database}", tb)+";",
			"CREATE TABLE IF NOT EXISTS {database}."+tb.ModelName()+"\n",
			"ORDER BY ("+tb.ModelSortKey()+")")
	}
	sql := migration(8)
	// And its ALIAS columns are derivedColumns, word for word.
	for _, d := range derivedColumns {
		want := "ADD COLUMN " + d.Name + " " + d.Type + " ALIAS " + d.Alias + ";"
		if strings.Count(sql, want) != len(Tables) {
			t.Errorf("0008 does not add %s to every table as declared:\n%s", d.Name, want)
		}
	}
}
