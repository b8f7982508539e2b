package analytics

import (
	"context"
	"math"
	"testing"
	"time"
)

// TestDaily: the daily series of every zone (UTC from usage_1d, a
// whole-hour zone from usage_1h, a half-hour zone from usage_1m) equal the
// events summed by their calendar day in that zone.
func TestDaily(t *testing.T) {
	fx := loadFixture(t)
	q := fx.querier(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	for _, zone := range []string{"UTC", "Europe/Berlin", "Asia/Kolkata", "America/New_York"} {
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
