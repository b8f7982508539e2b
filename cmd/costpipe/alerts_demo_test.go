package main

import (
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/producers/loadgen"
)

// The demo's budget is over the current UTC day, or the week or month when
// the growth scenario's traffic (spread over the last 35 days) leaves the
// day or week without spend, or the day or week ends during the run: a run
// just after or just before midnight must still have a budget its traffic
// crosses, and none that resolves while it runs.
func TestDemoBudgetPeriod(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		now  string
		want analytics.Period
	}{
		{"2026-12-05T12:00:00Z", analytics.PeriodDay},   // Saturday noon
		{"2026-12-05T00:00:20Z", analytics.PeriodWeek},  // Saturday, just after midnight
		{"2026-12-07T00:00:20Z", analytics.PeriodMonth}, // Monday, just after midnight
		{"2026-12-05T23:59:30Z", analytics.PeriodWeek},  // Saturday: the day ends during the run
		{"2026-12-06T23:59:30Z", analytics.PeriodMonth}, // Sunday: so does the week
		{"2026-06-01T00:00:20Z", ""},                    // Monday the 1st: nothing to cross
	} {
		now, _ := time.Parse(time.RFC3339, tc.now)
		// The options of the demo as TestDemoLiveAlerts runs it.
		o := loadgen.DefaultOptions()
		o.Rate, o.Duration, o.Seed, o.Tenants, o.DuplicateRate = 1500, 5*time.Second, 1, 12, 0.002
		o.Scenario, o.SimulatedSpan, o.GrowthFactor = loadgen.Growth, 35*24*time.Hour, 100
		o.Catalog = pricing.Default()
		o.Now = func() time.Time { return now }
		p, spend, err := demoBudget(o, o.Catalog, now, now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if p != tc.want || (p == "") != (spend == 0) || (p != "" && spend < demoMinSpend) {
			t.Errorf("at %s: budget over %q spending %v, want %q", tc.now, p, spend, tc.want)
		}
		if p != "" {
			if a := demoBudgetAmount(spend); a < 0.01 || a >= spend {
				t.Errorf("at %s: a budget of %v for a spend of %v", tc.now, a, spend)
			}
		}
	}
	// Rounded to the nearest cent, 90% of $0.0186 was $0.02: never crossed.
	for _, spend := range []float64{0.02, 0.0186, 0.0299, 0.04, 1.234} {
		if a := demoBudgetAmount(spend); a < 0.01 || a >= spend {
			t.Errorf("a budget of %v for a spend of %v", a, spend)
		}
	}
}
