package analytics

import (
	"bytes"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/warehouse"
)

// TestToWeeks: the whole ISO weeks (Monday 00:00 UTC) of a day segment are
// read from the weekly summary, the days around them stay days, the
// current week is read whole only when the last day was (the range ends
// now), and fewer than two weeks are left as days.
func TestToWeeks(t *testing.T) {
	t.Parallel()
	h := func(from, to time.Time) segment { return segment{warehouse.Hour, from, to} }
	dd := func(from, to time.Time) segment { return segment{warehouse.Day, from, to} }
	wk := func(from, to time.Time) segment { return segment{warehouse.Week, from, to} }
	// 2026-11-04 is a Wednesday, 2026-11-09 and 2026-11-30 Mondays.
	for _, c := range []struct {
		name string
		in   []segment
		now  bool
		want []segment
	}{{
		name: "30 days ending now, today whole",
		in:   []segment{h(d(2026, 11, 4, 20, 0, 0), d(2026, 11, 5, 0, 0, 0)), dd(d(2026, 11, 5, 0, 0, 0), d(2026, 12, 5, 0, 0, 0))},
		now:  true,
		want: []segment{h(d(2026, 11, 4, 20, 0, 0), d(2026, 11, 5, 0, 0, 0)), dd(d(2026, 11, 5, 0, 0, 0), d(2026, 11, 9, 0, 0, 0)), wk(d(2026, 11, 9, 0, 0, 0), d(2026, 12, 7, 0, 0, 0))},
	}, {
		name: "the same days, not ending now",
		in:   []segment{dd(d(2026, 11, 5, 0, 0, 0), d(2026, 12, 5, 0, 0, 0)), h(d(2026, 12, 5, 0, 0, 0), d(2026, 12, 5, 3, 0, 0))},
		want: []segment{dd(d(2026, 11, 5, 0, 0, 0), d(2026, 11, 9, 0, 0, 0)), wk(d(2026, 11, 9, 0, 0, 0), d(2026, 11, 30, 0, 0, 0)), dd(d(2026, 11, 30, 0, 0, 0), d(2026, 12, 5, 0, 0, 0)), h(d(2026, 12, 5, 0, 0, 0), d(2026, 12, 5, 3, 0, 0))},
	}, {
		name: "whole weeks only",
		in:   []segment{dd(d(2026, 11, 9, 0, 0, 0), d(2026, 11, 23, 0, 0, 0))},
		want: []segment{wk(d(2026, 11, 9, 0, 0, 0), d(2026, 11, 23, 0, 0, 0))},
	}, {
		name: "one whole week: days",
		in:   []segment{dd(d(2026, 11, 8, 0, 0, 0), d(2026, 11, 22, 0, 0, 0))},
		want: []segment{dd(d(2026, 11, 8, 0, 0, 0), d(2026, 11, 22, 0, 0, 0))},
	}, {
		name: "one week and this one, ending now",
		in:   []segment{dd(d(2026, 11, 9, 0, 0, 0), d(2026, 11, 19, 0, 0, 0))},
		now:  true,
		want: []segment{wk(d(2026, 11, 9, 0, 0, 0), d(2026, 11, 23, 0, 0, 0))},
	}, {
		name: "no days",
		in:   []segment{h(d(2026, 11, 9, 3, 0, 0), d(2026, 11, 9, 9, 0, 0))},
		now:  true,
		want: []segment{h(d(2026, 11, 9, 3, 0, 0), d(2026, 11, 9, 9, 0, 0))},
	}} {
		if got := toWeeks(c.in, c.now); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: toWeeks(%v, %v)\n got %v\nwant %v", c.name, c.in, c.now, got, c.want)
		}
	}
	for _, ts := range []time.Time{d(2026, 11, 30, 0, 0, 0), d(2026, 12, 6, 23, 59, 59), d(2026, 12, 3, 12, 0, 0)} {
		if got := warehouse.Week.Truncate(ts); !got.Equal(d(2026, 11, 30, 0, 0, 0)) {
			t.Errorf("Week.Truncate(%s) = %s, want Monday 2026-11-30", ts, got)
		}
	}
}

// TestWeeklySummaryAnswersAsTheRollups lands 40 days of calls (weeks that
// begin in one month and end in the next among them) and asks month-long
// questions by model and provider, ending now or not, ragged or on whole
// days: the weekly summary answers them, identically to the rollups and to
// the events' truth (every measure, every percentile). A stray row in the
// weekly summary is noticed by the check: the rollups answer, and the
// fallback is counted.
func TestWeeklySummaryAnswersAsTheRollups(t *testing.T) {
	t.Parallel()
	w := migratedDB(t)
	ctx := t.Context()
	evs := genEvents()
	r := rand.New(rand.NewPCG(3, 4))
	start := d(2026, 1, 3, 5, 17, 0) // a Saturday
	var last time.Time
	for i := range evs {
		evs[i].ts = start.Add(time.Duration(r.IntN(40*24*3600)) * time.Second)
		if evs[i].ts.After(last) {
			last = evs[i].ts
		}
	}
	if err := landAll(w, evs); err != nil {
		t.Fatal(err)
	}
	now := last.Add(time.Second)
	var logs bytes.Buffer
	q := New(w, Options{Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ref := New(w, Options{Now: func() time.Time { return now }, NoSummaries: true})
	var questions []UsageQuery
	for _, by := range [][]Dim{nil, {DimModel}, {DimProvider, DimModel}} {
		for _, uq := range []UsageQuery{
			{From: now.Add(-30 * day)},                                    // ends now: this week whole
			{From: d(2026, 1, 7, 9, 41, 30), To: d(2026, 2, 9, 13, 5, 0)}, // ragged, across the month
			{From: d(2026, 1, 5, 0, 0, 0), To: d(2026, 2, 9, 0, 0, 0)},    // whole weeks
		} {
			uq.By = by
			questions = append(questions, uq)
		}
	}
	questions = append(questions, UsageQuery{From: now.Add(-30 * day), By: []Dim{DimModel}, Where: map[Dim][]string{DimModel: {"gpt-4o", "claude-sonnet"}}})
	for _, uq := range questions {
		n := mustNormalize(t, uq)
		segs, err := plan(n.from, n.to, n.g)
		if err != nil {
			t.Fatal(err)
		}
		planned, whole := toEndOfDay(segs, now)
		if !slices.ContainsFunc(toWeeks(planned, whole), func(s segment) bool { return s.table == warehouse.Week }) {
			t.Fatalf("[%s, %s): no week in the plan %v", n.from, n.to, toWeeks(planned, whole))
		}
		want := usageAsRollups(t, "weeks", q, ref, evs, uq)
		// The same segments read from the rollups (a week as its days) are
		// the same answer.
		fromRollups, _, err := ref.readUsage(ctx, n, toWeeks(planned, whole), 1000, false, false)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fromRollups, want) {
			t.Errorf("[%s, %s) by %v: the weekly segments read from the rollups answer\n%+v\nnot\n%+v", n.from, n.to, uq.By, fromRollups, want)
		}
	}
	if n := q.SummaryFallbacks(); n != 0 {
		t.Fatalf("%d fallbacks on consistent summaries (log: %s)", n, logs.String())
	}

	// One week of one model counted twice in usage_model_1w.
	db := w.Database()
	if err := w.Conn().Exec(ctx, "INSERT INTO "+db+".usage_model_1w SELECT * FROM "+db+".usage_model_1w WHERE ts = toDateTime('2026-01-19 00:00:00', 'UTC') AND model = 'gpt-4o'"); err != nil {
		t.Fatal(err)
	}
	uq := UsageQuery{From: now.Add(-30 * day), By: []Dim{DimModel}}
	got, err := q.Usage(ctx, uq)
	if err != nil {
		t.Fatal(err)
	}
	n := mustNormalize(t, uq)
	checkRows(t, "a stray week", uq.By, got, expect(evs, n.from, n.to, uq.By, nil))
	if f := q.SummaryFallbacks(); f != 1 || !strings.Contains(logs.String(), "disagree") {
		t.Errorf("a stray row in the weekly summary: %d fallbacks, log %q; want 1, saying they disagree", f, logs.String())
	}
}
