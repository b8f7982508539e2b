package analytics

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestDeriverFailingScopeAndDay: a scope that fails does not lose the
// others of its day (they are written), and a day that fails does not
// stop the days after it: the pass reports an error naming it, counts
// it in costpipe_derive_days_failed_total, and the next pass derives it
// again.
func TestDeriverFailingScopeAndDay(t *testing.T) {
	// Not parallel: deriveScopeFault is the package's (sequential tests
	// end before the parallel ones start).
	w := growthDB(t)
	ctx := context.Background()
	clock := time.Date(2026, 3, 11, 0, 30, 0, 0, time.UTC)
	q := New(w, Options{Now: func() time.Time { return clock }})
	reg := prometheus.NewRegistry()
	dv, err := NewDeriver(q, DeriverOptions{Backfill: 3, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	boom := fmt.Errorf("code: 159, message: Timeout exceeded")
	deriveScopeFault = func(day time.Time, m Metric, s Scope) error {
		switch {
		case day.Day() == 8 && s == ScopeTenantModel:
			return boom
		case day.Day() == 9:
			return boom
		}
		return nil
	}
	t.Cleanup(func() { deriveScopeFault = nil })
	got, err := dv.RunOnce(ctx)
	// 2026-03-08: 2 metrics × (2 + 2) rows, without tenant × model (it
	// failed) and without the total (left out while a scope fails).
	if derivedDays(got) != "2026-03-08:8 2026-03-09:0 2026-03-10:16" {
		t.Errorf("failing pass derived %q", derivedDays(got))
	}
	if err == nil || !strings.Contains(err.Error(), "2 of 3 day(s) not derived") || !strings.Contains(err.Error(), "by tenant_model: code: 159") {
		t.Errorf("failing pass: %v", err)
	}
	if len(got) == 3 && (got[0].Err == nil || got[0].Failed != 2 || got[1].Err == nil || got[1].Failed != 8 || got[2].Err != nil) {
		t.Errorf("results %+v: want the first two failed (2 and 8 scopes), the last not", got)
	}
	if n := len(growthRows(t, w, "day = '2026-03-08' AND scope = 'tenant'", false)); n != 4 {
		t.Errorf("2026-03-08 has %d tenant rows, want 4 (2 tenants, cost and requests): a failing scope lost the others", n)
	}
	if n := len(growthRows(t, w, "day = '2026-03-08' AND scope = 'total'", false)); n != 0 {
		t.Errorf("2026-03-08 has %d total rows, want none while a scope of the day failed", n)
	}
	for name, want := range map[string]float64{"costpipe_derive_days_failed_total": 2, "costpipe_derive_days_derived_total": 1,
		"costpipe_derive_rows_written_total": 24} {
		if v := metricValue(t, reg, name); v != want {
			t.Errorf("%s %v, want %v", name, v, want)
		}
	}
	if v := metricValue(t, reg, "costpipe_derive_runs_total", "result", "error"); v != 1 {
		t.Errorf(`costpipe_derive_runs_total{result="error"} %v, want 1`, v)
	}
	deriveScopeFault = nil
	got, err = dv.RunOnce(ctx)
	if err != nil || derivedDays(got) != "2026-03-08:16 2026-03-09:16" {
		t.Errorf("next pass derived %q, %v; want the two failed days", derivedDays(got), err)
	}
	if got, err := dv.RunOnce(ctx); err != nil || len(got) != 0 {
		t.Errorf("the pass after derived %q, %v; want nothing", derivedDays(got), err)
	}

	// Derived again for late calls, with a scope failing: the day stays
	// due (its total's to_date still differs from the rollups), also for
	// a new process, until every scope is derived again.
	landLate(t, w, time.Date(2026, 3, 10, 23, 50, 0, 0, time.UTC), "acme", 1000, "1000", 900)
	clock = clock.Add(10 * time.Minute) // the rows written now are newer (computed_at)
	deriveScopeFault = func(day time.Time, m Metric, s Scope) error {
		if s == ScopeTenant {
			return boom
		}
		return nil
	}
	if got, err := dv.RunOnce(ctx); err == nil || !strings.Contains(derivedDays(got), "2026-03-10:") {
		t.Errorf("pass with late calls and a failing scope derived %q, %v; want 2026-03-10 again and an error", derivedDays(got), err)
	}
	deriveScopeFault = nil
	fresh, err := NewDeriver(q, DeriverOptions{Backfill: 3, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*Deriver{dv, fresh} {
		due, err := d.Pending(ctx)
		if err != nil || len(due) != 1 || !due[0].Day.Equal(time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)) || !due[0].Again {
			t.Errorf("due after the failed re-derivation: %+v, %v; want 2026-03-10 again", due, err)
		}
	}
	clock = clock.Add(10 * time.Minute)
	if got, err := dv.RunOnce(ctx); err != nil || derivedDays(got) != "2026-03-10:16" {
		t.Errorf("next pass derived %q, %v; want 2026-03-10 whole", derivedDays(got), err)
	}
	if toDate, _ := totalRow(t, w, "2026-03-10", MetricRequests); toDate == 0 {
		t.Errorf("2026-03-10's total to_date %v after the late calls", toDate)
	}
}
