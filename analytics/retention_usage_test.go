package analytics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

// TestUsageAfterRetention is the review's case end to end: 7 calls at
// 2026-01-15 10:45, asked from 10:30. Once retention has dropped January's
// minutes, Usage, Top and what-if pricing count them from the hour's row
// and say the range starts at 10:00 (they answered 0 calls, and the range
// asked); a minute series over January says its steps read as zero, and a
// minute granularity fails.
func TestUsageAfterRetention(t *testing.T) {
	t.Parallel()
	w := migratedDB(t)
	ctx := context.Background()
	landCalls(t, w, d(2026, 1, 15, 10, 45, 0), 7, 1)
	now := d(2026, 3, 20, 0, 0, 0)
	q := New(w, Options{Now: func() time.Time { return now }})
	from, to := d(2026, 1, 15, 10, 30, 0), d(2026, 1, 16, 0, 0, 0)
	retain(t, w, now, 0)

	for _, by := range [][]Dim{nil, {DimModel}, {DimTenant}} { // totals, the summaries, the rollups
		rows, ans, err := q.UsageAnswered(ctx, UsageQuery{From: from, To: to, By: by, Reprice: pricing.Default()})
		if err != nil || len(rows) != 1 || rows[0].Requests != 7 || rows[0].Reprice == nil {
			t.Fatalf("usage by %v after retention = %+v, %v; want 7 calls, re-priced", by, rows, err)
		}
		if !ans.From.Equal(d(2026, 1, 15, 10, 0, 0)) || !ans.To.Equal(to) || !strings.Contains(ans.Note, "starts at 2026-01-15T10:00:00Z, not 2026-01-15T10:30:00Z") {
			t.Errorf("usage by %v answered %+v; want [10:00, next day) with a note", by, ans)
		}
	}
	res, err := q.Top(ctx, TopQuery{From: from, To: to, By: []Dim{DimModel}, N: 5})
	if err != nil || res.Total.Requests != 7 || !res.Answered.From.Equal(d(2026, 1, 15, 10, 0, 0)) || res.Answered.Note == "" {
		t.Errorf("top after retention = %+v, %v; want 7 calls from 10:00", res, err)
	}
	// A minute series over January: its steps read as zero, and it says so.
	if s, err := q.Series(ctx, SeriesQuery{From: from, To: to, Step: time.Minute}); err != nil || !strings.Contains(s.Note, "the steps of 2026-01 read as zero: usage_1m no longer holds them") {
		t.Errorf("a minute series over January = note %q, %v; want a note", s.Note, err)
	}
	// A minute granularity over January fails.
	if _, err := q.Usage(ctx, UsageQuery{From: from, To: d(2026, 1, 15, 11, 0, 0), Granularity: GranularityMinute}); !errors.Is(err, ErrDropped) {
		t.Errorf("minute granularity over January: %v; want ErrDropped", err)
	}
	if s, err := q.Series(ctx, SeriesQuery{From: from, To: to, Step: time.Hour, Metric: MetricRequests}); err != nil || s.Series[0].Values[0] != 7 {
		t.Errorf("an hour series over January = %+v, %v; want 7 calls in its first hour", s, err)
	}
	// This month's range is answered as asked.
	if _, ans, err := q.UsageAnswered(ctx, UsageQuery{From: thisMonth().Add(10*time.Hour + 30*time.Minute), To: thisMonth().Add(50 * time.Hour)}); err != nil || ans.Note != "" {
		t.Errorf("this month: %+v, %v", ans, err)
	}
}
