package analytics

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/warehouse"
)

// landCalls lands n calls at ts in every rollup table, as the aggregator
// does (one row per table, the bucket holding ts).
func landCalls(t *testing.T, w *warehouse.Warehouse, ts time.Time, n uint64, offset int64) {
	t.Helper()
	for _, tb := range warehouse.Tables {
		r := warehouse.Rollup{TS: tb.Truncate(ts), Tenant: "acme", Provider: "openai", Model: "gpt-4o", SrcTopic: "costpipe.events",
			SrcPartition: 7, SrcOffset: offset, Requests: n, Cost: pricing.MustParsePico("100")}
		if err := w.InsertRollups(context.Background(), tb, []warehouse.Rollup{r}); err != nil {
			t.Fatal(err)
		}
	}
}

// retain runs retention at now with the default limits but keepHours.
func retain(t *testing.T, w *warehouse.Warehouse, now time.Time, keepHours time.Duration) {
	t.Helper()
	o := warehouse.DefaultRetentionOptions()
	o.Now = func() time.Time { return now }
	if keepHours > 0 {
		o.KeepHours = keepHours
	}
	if _, err := w.Retention(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}

// monthList is the months of set, in order.
func monthList(set map[warehouse.Month]bool) []warehouse.Month {
	var out []warehouse.Month
	for m, ok := range set {
		if ok {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// TestLookRetained reads which months retention dropped: those usage_1d
// holds and usage_1m (or usage_1h) no longer does.
func TestLookRetained(t *testing.T) {
	t.Parallel()
	w := migratedDB(t)
	ctx := context.Background()
	for i, ts := range []time.Time{d(2025, 12, 10, 10, 45, 0), d(2026, 1, 15, 10, 45, 0), d(2026, 3, 2, 10, 45, 0)} {
		landCalls(t, w, ts, 7, int64(i+1))
	}
	q := New(w, Options{Now: func() time.Time { return d(2026, 3, 20, 0, 0, 0) }})
	k, err := q.lookRetained(ctx)
	if err != nil || len(monthList(k.minutesGone))+len(monthList(k.hoursGone)) != 0 {
		t.Fatalf("before retention: %+v, %v; want nothing dropped", k, err)
	}
	retain(t, w, d(2026, 3, 20, 0, 0, 0), 0)
	if k, err = q.lookRetained(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := monthList(k.minutesGone), []warehouse.Month{202512, 202601}; !reflect.DeepEqual(got, want) || len(k.hoursGone) != 0 {
		t.Errorf("after retention: minutes gone %v, hours gone %v; want %v and none", got, monthList(k.hoursGone), want)
	}
	retain(t, w, d(2026, 3, 20, 0, 0, 0), 70*24*time.Hour)
	if k, err = q.lookRetained(ctx); err != nil {
		t.Fatal(err)
	}
	if got := monthList(k.hoursGone); !reflect.DeepEqual(got, []warehouse.Month{202512}) {
		t.Errorf("after retention of hours for 70 days: hours gone %v, want [202512]", got)
	}
}

// TestAnswerableAfterRetention is the review's case: 7 calls at
// 2026-01-15 10:45 and a range from 10:30. Once retention has dropped
// January's minutes, the range is answered from 10:00, the hour's row, and
// says so; a usage question over that range counts the calls again.
func TestAnswerableAfterRetention(t *testing.T) {
	t.Parallel()
	w := migratedDB(t)
	ctx := context.Background()
	landCalls(t, w, d(2026, 1, 15, 10, 45, 0), 7, 1)
	now := d(2026, 3, 20, 0, 0, 0)
	q := New(w, Options{Now: func() time.Time { return now }})
	from, to := d(2026, 1, 15, 10, 30, 0), d(2026, 1, 16, 0, 0, 0)
	requests := func(from, to time.Time) uint64 {
		rows, err := q.Usage(ctx, UsageQuery{From: from, To: to})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			return 0
		}
		return rows[0].Requests
	}
	a, err := q.Answerable(ctx, from, to)
	if err != nil || !a.From.Equal(from) || !a.To.Equal(to) || a.Note != "" {
		t.Errorf("before retention: Answerable = %+v, %v; want the range as asked", a, err)
	}
	retain(t, w, now, 0)
	if n := requests(from, to); n != 0 {
		t.Logf("(Usage over the range as asked, after retention: %d calls)", n)
	}
	a, err = q.Answerable(ctx, from, to)
	if err != nil || !a.From.Equal(d(2026, 1, 15, 10, 0, 0)) || !a.To.Equal(to) ||
		!strings.Contains(a.Note, "starts at 2026-01-15T10:00:00Z, not 2026-01-15T10:30:00Z") {
		t.Fatalf("after retention: Answerable = %+v, %v; want it from 10:00, with a note", a, err)
	}
	if n := requests(a.From, a.To); n != 7 {
		t.Errorf("usage over the answerable range = %d calls, want 7", n)
	}
	// A range of this month (the wall clock's, later than the Querier's) is
	// not looked up.
	before := q.lookups.Load()
	month := thisMonth()
	if a, err := q.Answerable(ctx, month.Add(10*time.Hour+30*time.Minute), month.Add(11*time.Hour+15*time.Minute)); err != nil || a.Note != "" || q.lookups.Load() != before {
		t.Errorf("this month's range: %+v, %v, %d lookups; want it as asked, without one", a, err, q.lookups.Load()-before)
	}
}

// thisMonth is the start of the wall clock's month (UTC): no month since
// can have been dropped.
func thisMonth() time.Time {
	y, m, _ := time.Now().UTC().Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
}

// reads records the ranges a retainedRead's read function was called with.
type reads struct {
	mu     sync.Mutex
	ranges []string
}

func (r *reads) read(n normalized) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ranges = append(r.ranges, rangeString(n.from, n.to))
	return nil
}

func (r *reads) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.ranges
	r.ranges = nil
	return out
}

// TestRetainedRead: a question reads minutes retention dropped neither
// silently nor twice when avoidable. This month's are read without a look;
// a first question whose edge the default retention would have dropped
// looks first; others read over what the last look found while a new one
// runs beside, and read again only when it finds otherwise (retention ran
// meanwhile); one table's rows over a dropped month fail. The months are
// the wall clock's: those before its month may have been dropped.
func TestRetainedRead(t *testing.T) {
	t.Parallel()
	w := migratedDB(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	m0 := thisMonth()
	m1, m3 := m0.AddDate(0, -1, 0), m0.AddDate(0, -3, 0) // last month; one the default retention drops
	at := func(m time.Time, day, h, min int) time.Time {
		return m.AddDate(0, 0, day-1).Add(time.Duration(h)*time.Hour + time.Duration(min)*time.Minute)
	}
	for i, ts := range []time.Time{at(m3, 15, 10, 45), at(m1, 25, 10, 45), at(m0, 1, 0, 45)} {
		landCalls(t, w, ts, 7, int64(i+1))
	}
	var logs bytes.Buffer
	q := New(w, Options{Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	var r reads
	ask := func(q *Querier, from, to time.Time, g Granularity) (normalized, error) {
		n, err := normalize(UsageQuery{From: from, To: to, Granularity: g}, now)
		if err != nil {
			t.Fatal(err)
		}
		return q.retainedRead(ctx, n, r.read)
	}
	check := func(what string, q *Querier, n normalized, err error, lookups uint64, want ...[2]time.Time) {
		t.Helper()
		var ws []string
		for _, w := range want {
			ws = append(ws, rangeString(w[0], w[1]))
		}
		if got := r.take(); err != nil || !reflect.DeepEqual(got, ws) || q.lookups.Load() != lookups {
			t.Errorf("%s: read %q (%v), %d lookups; want %q, %d lookups", what, got, err, q.lookups.Load(), ws, lookups)
		}
		if last := ws[len(ws)-1]; rangeString(n.from, n.to) != last {
			t.Errorf("%s: returned %s, want the range last read, %s", what, rangeString(n.from, n.to), last)
		}
	}
	span := func(from, to time.Time) [2]time.Time { return [2]time.Time{from, to} }

	n, err := ask(q, at(m0, 1, 10, 30), at(m0, 1, 12, 15), "")
	check("this month", q, n, err, 0, span(at(m0, 1, 10, 30), at(m0, 1, 12, 15)))
	// Last month: not dropped by the default retention; the first look is
	// beside the question, which it leaves as it is.
	n, err = ask(q, at(m1, 25, 10, 30), at(m1, 26, 12, 15), "")
	check("last month", q, n, err, 1, span(at(m1, 25, 10, 30), at(m1, 26, 12, 15)))

	retain(t, w, now, 0) // the minutes of m3 go
	// The last look knew of no dropped month: the question is read as
	// asked, then again over what the look beside it found.
	n, err = ask(q, at(m3, 15, 10, 30), at(m3, 16, 0, 0), "")
	check("a dropped month, retention since the last look", q, n, err, 2,
		span(at(m3, 15, 10, 30), at(m3, 16, 0, 0)), span(at(m3, 15, 10, 0), at(m3, 16, 0, 0)))
	// Now known: read widened at once (the look beside confirms it).
	n, err = ask(q, at(m3, 15, 10, 30), at(m3, 16, 0, 0), "")
	check("the dropped month again", q, n, err, 3, span(at(m3, 15, 10, 0), at(m3, 16, 0, 0)))
	// Widened to its hour, the day's second hour on are read from usage_1h,
	// which retention may have dropped too: looked up ...
	n, err = ask(q, at(m3, 15, 1, 30), at(m3, 16, 0, 0), "")
	check("its second hour", q, n, err, 4, span(at(m3, 15, 1, 0), at(m3, 16, 0, 0)))
	// ... while its first hour widens to the whole day, which retention
	// never drops: no look ...
	n, err = ask(q, at(m3, 15, 0, 30), at(m3, 16, 0, 0), "")
	check("its first hour", q, n, err, 4, span(at(m3, 15, 0, 0), at(m3, 16, 0, 0)))
	// ... nor for a range of whole days.
	n, err = ask(q, at(m3, 15, 0, 0), at(m3, 17, 0, 0), "")
	check("whole days", q, n, err, 4, span(at(m3, 15, 0, 0), at(m3, 17, 0, 0)))

	// A new Querier (a command's) looks first when the default retention
	// would have dropped the edge, and reads once.
	q2 := New(w, Options{Now: func() time.Time { return now }})
	n, err = ask(q2, at(m3, 15, 10, 30), at(m3, 16, 0, 0), "")
	check("a new querier", q2, n, err, 1, span(at(m3, 15, 10, 0), at(m3, 16, 0, 0)))

	// One table's rows over a dropped month: an error, not zeros.
	_, err = ask(q, at(m3, 15, 10, 30), at(m3, 15, 11, 0), GranularityMinute)
	if !errors.Is(err, ErrDropped) || !strings.Contains(err.Error(), "usage_1m no longer holds "+m3.Format("2006-01")) {
		t.Errorf("minute granularity over %s: %v; want ErrDropped", m3.Format("2006-01"), err)
	}
	// It was read, for a caller that keeps what it read (a series).
	if got := r.take(); len(got) != 1 {
		t.Errorf("minute granularity over a dropped month: read %q, want it read once", got)
	}
	if _, err := ask(q, at(m1, 25, 10, 30), at(m1, 25, 11, 0), GranularityMinute); err != nil {
		t.Errorf("minute granularity over last month (kept): %v", err)
	}
	if logs.Len() > 0 {
		t.Errorf("log: %s", logs.String())
	}
}

// TestLookRetainedOnACluster: on a cluster every shard's parts are read
// through the shard-local database (the DSN's holds Distributed tables),
// and a month retention dropped ON CLUSTER is found dropped.
func TestLookRetainedOnACluster(t *testing.T) {
	t.Parallel()
	ctx, w, s := migratedCluster(t)
	for p := int32(0); p < 2; p++ {
		for i, ts := range []time.Time{d(2026, 1, 15, 10, 45, 0), d(2026, 2, 15, 10, 45, 0)} {
			for _, tb := range warehouse.Tables {
				r := warehouse.Rollup{TS: tb.Truncate(ts), Tenant: "acme", Provider: "openai", Model: "gpt-4o", SrcTopic: "costpipe.events",
					SrcPartition: p, SrcOffset: int64(i), Requests: 7, Cost: pricing.MustParsePico("1")}
				if err := s.InsertRollups(ctx, tb, []warehouse.Rollup{r}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	now := d(2026, 3, 10, 0, 0, 0)
	q := New(w, Options{Now: func() time.Time { return now }})
	k, err := q.lookRetained(ctx)
	if err != nil || len(k.minutesGone)+len(k.hoursGone) != 0 {
		t.Fatalf("before retention: %+v, %v; want nothing dropped", k, err)
	}
	retain(t, w, now, 0) // January's minutes, on both shards
	if k, err = q.lookRetained(ctx); err != nil || !reflect.DeepEqual(monthList(k.minutesGone), []warehouse.Month{202601}) || len(k.hoursGone) != 0 {
		t.Errorf("after retention: %+v, %v; want the minutes of 202601 gone", k, err)
	}
	a, err := q.Answerable(ctx, d(2026, 1, 15, 10, 30, 0), d(2026, 1, 16, 0, 0, 0))
	if err != nil || !a.From.Equal(d(2026, 1, 15, 10, 0, 0)) {
		t.Errorf("Answerable on the cluster = %+v, %v; want it from 10:00", a, err)
	}
	rows, err := q.Usage(ctx, UsageQuery{From: a.From, To: a.To})
	if err != nil || len(rows) != 1 || rows[0].Requests != 14 {
		t.Errorf("usage over the answerable range = %+v, %v; want 14 calls (7 per shard)", rows, err)
	}
}

// TestUsageStepsAfterRetention: hour steps over a month whose hour rows
// retention dropped are a DroppedError (they would read as no calls),
// naming the table and the month; hour steps over a month kept, and day
// steps over the dropped one, count the calls.
func TestUsageStepsAfterRetention(t *testing.T) {
	t.Parallel()
	w := migratedDB(t)
	ctx := context.Background()
	landCalls(t, w, d(2025, 12, 10, 10, 45, 0), 7, 1)
	landCalls(t, w, d(2026, 3, 2, 10, 45, 0), 5, 2)
	now := d(2026, 3, 20, 0, 0, 0)
	retain(t, w, now, 70*24*time.Hour)
	q := New(w, Options{Now: func() time.Time { return now }})
	calls := func(from, to time.Time, step time.Duration) (uint64, error) {
		rows, err := q.UsageSteps(ctx, UsageQuery{From: from, To: to}, step)
		var n uint64
		for _, r := range rows {
			n += r.Requests
		}
		return n, err
	}
	_, err := calls(d(2025, 12, 10, 0, 0, 0), d(2025, 12, 11, 0, 0, 0), time.Hour)
	var de *DroppedError
	if !errors.As(err, &de) || de.Table != warehouse.Hour || !reflect.DeepEqual(de.Months, []warehouse.Month{202512}) {
		t.Errorf("hour steps over December: %v; want a DroppedError of usage_1h, 2025-12", err)
	}
	if n, err := calls(d(2026, 3, 2, 0, 0, 0), d(2026, 3, 3, 0, 0, 0), time.Hour); err != nil || n != 5 {
		t.Errorf("hour steps over March: %d calls, %v; want 5", n, err)
	}
	if n, err := calls(d(2025, 12, 1, 0, 0, 0), d(2025, 12, 31, 0, 0, 0), day); err != nil || n != 7 {
		t.Errorf("day steps over December: %d calls, %v; want 7", n, err)
	}
}
