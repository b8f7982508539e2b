package analytics

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"
)

// TestDaily: the daily series of every zone (UTC from usage_1d, the others
// from usage_1h, the hours that a midnight of +5:30, +5:45 or -3:30 splits
// from usage_1m) equal the events summed by their calendar day in that
// zone.
func TestDaily(t *testing.T) {
	t.Parallel()
	fx := loadFixture(t)
	q := fx.querier(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	for _, zone := range []string{"UTC", "Europe/Berlin", "Asia/Kolkata", "America/New_York", "Asia/Kathmandu", "America/St_Johns"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		first := time.Date(2026, 1, 29, 0, 0, 0, 0, loc)
		last := time.Date(2026, 2, 2, 0, 0, 0, 0, loc)
		for _, m := range []Metric{MetricCost, MetricRequests, MetricTokens} {
			days, series, err := q.Daily(context.Background(), DailyQuery{First: first, Last: last, Location: loc, By: []Dim{DimTenant}, Metric: m})
			if err != nil {
				t.Fatalf("%s %s: %v", zone, m, err)
			}
			if len(days) != 5 || !days[0].Equal(first) {
				t.Fatalf("%s: days %v", zone, days)
			}
			want := map[string][]float64{}
			for _, e := range fx.events {
				d := dayStart(e.ts, loc)
				i := int(math.Round(d.Sub(first).Hours() / 24))
				if i < 0 || i >= len(days) {
					continue
				}
				if want[e.tenant] == nil {
					want[e.tenant] = make([]float64, len(days))
				}
				switch m {
				case MetricCost:
					want[e.tenant][i] += e.cost.Float64()
				case MetricRequests:
					want[e.tenant][i]++
				case MetricTokens:
					want[e.tenant][i] += float64(e.input + e.output)
				}
			}
			if len(series) != len(want) {
				t.Fatalf("%s %s: %d series, want %d", zone, m, len(series), len(want))
			}
			for _, s := range series {
				w := want[s.Group[DimTenant]]
				for i := range w {
					if math.Abs(s.Values[i]-w[i]) > 1e-6*math.Max(1, w[i]) {
						t.Errorf("%s %s tenant %q day %s: %v, want %v", zone, m, s.Group[DimTenant], days[i].Format(time.DateOnly), s.Values[i], w[i])
					}
				}
			}
		}
	}
	if _, _, err := q.Daily(context.Background(), DailyQuery{First: time.Now(), Last: time.Now(), Location: time.Local}); err == nil {
		t.Error("the machine's Local zone was accepted")
	}
}

// TestDailyOddOffsetAfterRetention: in a zone whose midnight falls inside
// a UTC hour, a day whose minutes retention has dropped still counts its
// calls (the hour that midnight splits goes whole to the day it starts
// in), where it read as zero; days whose minutes are kept stay exact.
func TestDailyOddOffsetAfterRetention(t *testing.T) {
	t.Parallel()
	w := migratedDB(t)
	ctx := context.Background()
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	landCalls(t, w, d(2026, 1, 15, 18, 10, 0), 3, 1) // 23:40 on the 15th in Kolkata
	landCalls(t, w, d(2026, 1, 15, 18, 40, 0), 5, 2) // 00:10 on the 16th
	landCalls(t, w, d(2026, 1, 16, 10, 0, 0), 7, 3)  // 15:30 on the 16th
	landCalls(t, w, d(2026, 3, 10, 18, 10, 0), 1, 4) // 23:40 on March 10th
	landCalls(t, w, d(2026, 3, 10, 18, 40, 0), 2, 5) // 00:10 on March 11th
	now := d(2026, 3, 20, 0, 0, 0)
	q := New(w, Options{Now: func() time.Time { return now }})
	daily := func(first, last time.Time) []float64 {
		t.Helper()
		_, series, err := q.Daily(ctx, DailyQuery{First: first, Last: last, Location: kolkata, Metric: MetricRequests})
		if err != nil || len(series) != 1 {
			t.Fatalf("daily %s: %+v, %v", first.Format(time.DateOnly), series, err)
		}
		return series[0].Values
	}
	jan15, mar10 := time.Date(2026, 1, 15, 0, 0, 0, 0, kolkata), time.Date(2026, 3, 10, 0, 0, 0, 0, kolkata)
	if got := daily(jan15, jan15.AddDate(0, 0, 1)); !slices.Equal(got, []float64{3, 12}) {
		t.Errorf("January with its minutes: %v, want [3 12]", got)
	}
	retain(t, w, now, 0) // drops January's minutes
	if got := daily(jan15, jan15.AddDate(0, 0, 1)); !slices.Equal(got, []float64{8, 7}) {
		t.Errorf("January without its minutes: %v, want [8 7] (18:00–19:00 UTC whole on the 15th)", got)
	}
	if got := daily(mar10, mar10.AddDate(0, 0, 1)); !slices.Equal(got, []float64{1, 2}) {
		t.Errorf("March, minutes kept: %v, want [1 2]", got)
	}
	// A range across both: each day as above.
	if got := daily(jan15, mar10.AddDate(0, 0, 1)); got[0] != 8 || got[1] != 7 || got[len(got)-2] != 1 || got[len(got)-1] != 2 {
		t.Errorf("January to March: first days %v, last %v", got[:2], got[len(got)-2:])
	}
}
