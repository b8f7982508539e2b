package analytics

import (
	"context"
	"testing"
	"time"
)

// TestDeriverRecheckWindow: only the last Recheck days are compared with
// the rollups. Calls landing late for a day before the window are not
// followed (derive --day derives such a day again); when that day is in
// the window's first month, the window's days, whose month to date
// includes it, are derived again.
func TestDeriverRecheckWindow(t *testing.T) {
	t.Parallel()
	w := growthDB(t)
	ctx := context.Background()
	clock := time.Date(2026, 3, 11, 0, 30, 0, 0, time.UTC)
	q := New(w, Options{Now: func() time.Time { return clock }})
	dv, err := NewDeriver(q, DeriverOptions{Backfill: 7, Recheck: 2, Derive: DeriveOptions{Metrics: []Metric{MetricRequests}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dv.RunOnce(ctx); err != nil || len(got) != 7 {
		t.Fatalf("first pass derived %q, %v; want 7 days", derivedDays(got), err)
	}
	before5, _ := totalRow(t, w, "2026-03-05", MetricRequests)
	// (globex on gpt-4o: one more tenant × model group, 9 rows a day)
	landLate(t, w, time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC), "globex", 7, "1", 1)
	got, err := dv.RunOnce(ctx)
	if err != nil || derivedDays(got) != "2026-03-09:9 2026-03-10:9" || !got[0].Again || !got[1].Again {
		t.Fatalf("after late calls of 2026-03-05 derived %+v, %v; want the window, 2026-03-09 and 2026-03-10, again", got, err)
	}
	if after5, _ := totalRow(t, w, "2026-03-05", MetricRequests); after5 != before5 {
		t.Errorf("2026-03-05, before the window, was derived again: to_date %v, was %v", after5, before5)
	}
	if toDate, _ := totalRow(t, w, "2026-03-10", MetricRequests); toDate != 10*190+7 {
		t.Errorf("2026-03-10 to_date %v, want %v", toDate, 10*190+7)
	}
	if _, err := dv.DeriveDay(ctx, time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if after5, _ := totalRow(t, w, "2026-03-05", MetricRequests); after5 != before5+7 {
		t.Errorf("2026-03-05 after DeriveDay: to_date %v, want %v", after5, before5+7)
	}
}
