package analytics

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/warehouse"
)

// summaryQueries are the questions the per-model summaries answer: by
// model, provider or both, filtered by them, over ragged, whole-hour and
// whole-day ranges, and the top groups with their totals.
func summaryQueries() []UsageQuery {
	ragged := UsageQuery{From: d(2026, 1, 30, 10, 17, 30), To: d(2026, 2, 1, 3, 5, 0)}
	var out []UsageQuery
	for _, by := range [][]Dim{nil, {DimModel}, {DimProvider}, {DimProvider, DimModel}} {
		for _, r := range []UsageQuery{ragged, {From: fixtureStart, To: d(2026, 2, 2, 0, 0, 0)}, {From: d(2026, 1, 31, 21, 0, 0), To: d(2026, 2, 1, 3, 0, 0)}} {
			r.By = by
			out = append(out, r)
		}
	}
	w := ragged
	w.By, w.Where = []Dim{DimModel}, map[Dim][]string{DimModel: {"gpt-4o", "claude-sonnet"}}
	out = append(out, w)
	w.By, w.Where = []Dim{DimProvider}, map[Dim][]string{DimProvider: {"openai"}}
	return append(out, w)
}

// TestSummariesAnswerAsTheRollups lands the fixture's events, then asks
// every summarizable question with and without the summaries: the answers
// are identical (every measure, every percentile) and equal the events'
// truth. When a summary holds a row its rollup lacks (as after a server
// that died between the two views of an insert), the check notices: the
// answer comes from the rollups, is still the truth, and the fallback is
// counted and logged. The same happens when the summaries cannot be read.
func TestSummariesAnswerAsTheRollups(t *testing.T) {
	t.Parallel()
	w := migratedDB(t)
	ctx := context.Background()
	evs := genEvents()
	if err := landAll(w, evs); err != nil {
		t.Fatal(err)
	}
	end := d(2026, 2, 2, 0, 0, 0)
	var logs bytes.Buffer
	q := New(w, Options{Now: func() time.Time { return end }, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ref := New(w, Options{Now: func() time.Time { return end }, NoSummaries: true})

	sameAsRollups(t, "consistent", q, ref, evs)
	if n := q.SummaryFallbacks(); n != 0 {
		t.Fatalf("%d fallbacks on consistent summaries (log: %s)", n, logs.String())
	}

	// A range that ends now reads its last day whole from the summary when
	// nothing landed later in that day, and is checked against the
	// rollups' exact range: the answer is the range's, with no fallback.
	var last time.Time
	for _, e := range evs {
		if e.ts.Before(d(2026, 2, 2, 0, 0, 0)) && e.ts.After(last) {
			last = e.ts
		}
	}
	now := last.Add(time.Second)
	if now.Truncate(day) != d(2026, 2, 1, 0, 0, 0) {
		t.Fatalf("the fixture's last event is at %s", last)
	}
	atNow := New(w, Options{Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	endsNow := UsageQuery{From: d(2026, 1, 30, 10, 17, 30), By: []Dim{DimModel}}
	exact, _ := plan(endsNow.From, now, GranularityAuto)
	if got, whole := toEndOfDay(exact, now); !whole || len(got) < 2 || !reflect.DeepEqual(got[len(got)-1],
		segment{warehouse.Day, d(2026, 1, 31, 0, 0, 0), d(2026, 2, 2, 0, 0, 0)}) || got[len(got)-2].table == warehouse.Day {
		t.Fatalf("a range ending now at %s does not read its last day whole, with the day before it: %v", now, got)
	}
	// A range from the last day's midnight reads that day alone.
	todayOnly, _ := plan(d(2026, 2, 1, 0, 0, 0), now, GranularityAuto)
	if got, whole := toEndOfDay(todayOnly, now); !whole || !reflect.DeepEqual(got,
		[]segment{{warehouse.Day, d(2026, 2, 1, 0, 0, 0), d(2026, 2, 2, 0, 0, 0)}}) {
		t.Errorf("a range from midnight ending now at %s: %v (whole %v), want the whole day", now, got, whole)
	}
	got, err := atNow.Usage(ctx, endsNow)
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, "ends now", endsNow.By, got, expect(evs, endsNow.From, now, endsNow.By, nil))
	if n := atNow.SummaryFallbacks(); n != 0 {
		t.Errorf("a range ending now after the day's last call: %d fallbacks (log %s)", n, logs.String())
	}
	// With calls later in the day (a clock behind the data), the whole day
	// holds more than the range: the check sees it, and the summaries are
	// read again with the range's own segments, quietly.
	noon := d(2026, 2, 1, 12, 0, 0)
	atNoon := New(w, Options{Now: func() time.Time { return noon }, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	got, err = atNoon.Usage(ctx, endsNow)
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, "ends at noon", endsNow.By, got, expect(evs, endsNow.From, noon, endsNow.By, nil))
	if n := atNoon.SummaryFallbacks(); n != 0 || strings.Contains(logs.String(), "disagree") {
		t.Errorf("a range ending at noon with calls after it: %d fallbacks, log %q; want none", n, logs.String())
	}
	// A fixed granularity's segment across midnight is not cut.
	segs := []segment{{warehouse.Hour, d(2026, 1, 31, 20, 0, 0), d(2026, 2, 1, 3, 0, 0)}}
	if got, whole := toEndOfDay(segs, d(2026, 2, 1, 3, 0, 0)); whole || !reflect.DeepEqual(got, segs) {
		t.Errorf("toEndOfDay cut an hour segment across midnight: %v", got)
	}

	// Minutes only: the rollups answer, nothing is checked.
	segs, err = plan(d(2026, 1, 31, 23, 10, 0), d(2026, 1, 31, 23, 50, 0), GranularityAuto)
	if err != nil || coarse(segs) {
		t.Errorf("40 minutes: coarse = %v (%v), want minutes only", coarse(segs), err)
	}
	if segs, _ := plan(d(2026, 1, 31, 21, 10, 0), d(2026, 1, 31, 23, 50, 0), GranularityAuto); !coarse(segs) {
		t.Error("a range with a whole hour is not coarse")
	}

	// A question by tenant never reads them.
	if summarizable(mustNormalize(t, UsageQuery{From: fixtureStart, By: []Dim{DimTenant, DimModel}})) ||
		summarizable(mustNormalize(t, UsageQuery{From: fixtureStart, By: []Dim{DimModel}, Where: map[Dim][]string{DimErrorType: {""}}})) {
		t.Error("a question by tenant or error type is summarizable")
	}

	// Today's row of one model counted twice in usage_model_1d: the check
	// of a range that ends now, which compares today whole in the summary
	// with today's hours and minutes in the rollups, notices, and the
	// range's own segments (the summaries' hours and usage_1m's minutes,
	// which agree) answer.
	db := w.Database()
	dupDay := func(day string) {
		t.Helper()
		if err := w.Conn().Exec(ctx, "INSERT INTO "+db+".usage_model_1d SELECT * FROM "+db+".usage_model_1d WHERE ts = toDateTime('"+day+" 00:00:00', 'UTC') AND model = 'gpt-4o'"); err != nil {
			t.Fatal(err)
		}
	}
	dupDay("2026-02-01")
	fromMidnight := UsageQuery{From: d(2026, 2, 1, 0, 0, 0), By: []Dim{DimModel}}
	got, err = atNow.Usage(ctx, fromMidnight)
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, "today's summary row doubled", fromMidnight.By, got, expect(evs, fromMidnight.From, now, fromMidnight.By, nil))

	// One day of usage_model_1d counted twice.
	dupDay("2026-01-31")
	logs.Reset()
	sameAsRollups(t, "a summary with an extra row", q, ref, evs)
	if q.SummaryFallbacks() == 0 || !strings.Contains(logs.String(), "disagree") {
		t.Errorf("no fallback noticed (%d): log %q", q.SummaryFallbacks(), logs.String())
	}

	// The summaries gone (a database migrated by an older costpipe).
	before := q.SummaryFallbacks()
	for _, tb := range warehouse.SummaryTables {
		if err := w.Conn().Exec(ctx, "DROP TABLE "+db+"."+tb.ModelMVName()); err != nil {
			t.Fatal(err)
		}
		if err := w.Conn().Exec(ctx, "DROP TABLE "+db+"."+tb.ModelName()); err != nil {
			t.Fatal(err)
		}
	}
	logs.Reset()
	sameAsRollups(t, "no summaries", q, ref, evs)
	if q.SummaryFallbacks() == before || !strings.Contains(logs.String(), "cannot") {
		t.Errorf("no fallback without summaries: log %q", logs.String())
	}
}

func mustNormalize(t *testing.T, uq UsageQuery) normalized {
	t.Helper()
	n, err := normalize(uq, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSummariesOnACluster asks the summarizable questions through the
// Distributed tables of two shards: the summaries answer as the rollups do,
// without a fallback. (A constant row count in the one-stage merge of the
// summaries failed there, code 171: the shards send it as a full column.)
func TestSummariesOnACluster(t *testing.T) {
	t.Parallel()
	ctx, w, s := migratedCluster(t)
	evs := genEvents()
	shards := map[int]bool{}
	for _, e := range evs {
		shards[s.ShardOf(e.partition)] = true
	}
	if len(shards) != 2 {
		t.Fatalf("the fixture's events land on %d shard(s), want both", len(shards))
	}
	if err := landAll(byShard{s}, evs); err != nil {
		t.Fatal(err)
	}
	end := d(2026, 2, 2, 0, 0, 0)
	var logs bytes.Buffer
	q := New(w, Options{Now: func() time.Time { return end }, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ref := New(w, Options{Now: func() time.Time { return end }, NoSummaries: true})
	sameAsRollups(t, "cluster", q, ref, evs)
	if n := q.SummaryFallbacks(); n != 0 {
		t.Errorf("%d of %d questions fell back to the rollups on a cluster; log:\n%s", n, len(summaryQueries()), logs.String())
	}

	// A cost correction lands through the shards (the Distributed tables
	// take no inserts of costpipe's: through them it failed, "Table
	// costpipe.usage_1m_input_v9 doesn't exist"), and every table then
	// holds the corrected cost; a second pass finds nothing to correct.
	cat, err := pricing.Parse("double.yaml", []byte("models:\n  - provider: openai\n    model: gpt-4o\n    prices:\n      - {from: 2025-01-01, input: \"5\", output: \"20\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	from, to := fixtureStart, fixtureStart.AddDate(0, 0, 3)
	res, err := q.RewriteCosts(ctx, RewriteQuery{From: from, To: to, Catalog: cat, Land: s})
	if err != nil {
		t.Fatalf("reprice on a cluster: %v", err)
	}
	for _, rt := range res.Tables {
		if rt.Corrected == 0 {
			t.Fatalf("%s: nothing to correct: the test catalog must change the fixture's costs", rt.Table.Name())
		}
		u, err := ref.Usage(ctx, UsageQuery{From: from, To: to, Granularity: map[warehouse.Table]Granularity{
			warehouse.Minute: GranularityMinute, warehouse.Hour: GranularityHour, warehouse.Day: GranularityDay}[rt.Table]})
		if err != nil || len(u) != 1 || u[0].CostUSD != rt.After {
			t.Errorf("%s after the correction: %+v %v; want cost %s", rt.Table.Name(), u, err, rt.After)
		}
	}
	again, err := q.RewriteCosts(ctx, RewriteQuery{From: from, To: to, Catalog: cat, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range again.Tables {
		if rt.Corrected != 0 {
			t.Errorf("%s: %d groups still to correct after the correction", rt.Table.Name(), rt.Corrected)
		}
	}
}

// usageAsRollups asks uq of q (summaries) and of ref (NoSummaries): the
// answers are identical and equal the truth of evs over uq's aligned
// range. It returns the rollups' answer.
func usageAsRollups(t *testing.T, label string, q, ref *Querier, evs []event, uq UsageQuery) []UsageRow {
	t.Helper()
	got, err := q.Usage(t.Context(), uq)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ref.Usage(t.Context(), uq)
	if err != nil {
		t.Fatal(err)
	}
	n := mustNormalize(t, uq)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: [%s, %s) by %v where %v: the summaries answer\n%+v\nthe rollups\n%+v", label, n.from, n.to, uq.By, uq.Where, got, want)
	}
	checkRows(t, label, uq.By, got, expect(evs, n.from, n.to, uq.By, uq.Where))
	return want
}

// sameAsRollups asks every summarizable question of q (summaries) and of
// ref (NoSummaries): the usage answers and the top groups are identical,
// and equal the truth of evs.
func sameAsRollups(t *testing.T, label string, q, ref *Querier, evs []event) {
	t.Helper()
	ctx := t.Context()
	for _, uq := range summaryQueries() {
		if !summarizable(mustNormalize(t, uq)) {
			t.Fatalf("%v by %v where %v: not summarizable", uq.From, uq.By, uq.Where)
		}
		usageAsRollups(t, label, q, ref, evs, uq)
		if len(uq.By) == 0 {
			continue
		}
		tq := TopQuery{From: uq.From, To: uq.To, Where: uq.Where, By: uq.By, N: 2}
		topGot, err := q.Top(ctx, tq)
		if err != nil {
			t.Fatal(err)
		}
		topWant, err := ref.Top(ctx, tq)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(topGot, topWant) {
			t.Errorf("%s: top 2 by %v differs between the summaries and the rollups:\n%+v\n%+v", label, uq.By, topGot, topWant)
		}
	}
}
