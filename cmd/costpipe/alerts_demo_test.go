package main

import (
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/producers/loadgen"
)

// The demo's budget is over the current UTC day, or the week or month when
// the growth scenario's traffic (spread over the last 30 days) leaves the
// day or week without spend: a run just after midnight must still have a
// budget its traffic crosses.
func TestDemoBudgetPeriod(t *testing.T) {
	for _, tc := range []struct {
		now  string
		want analytics.Period
	}{
		{"2026-12-05T12:00:00Z", analytics.PeriodDay},   // Saturday noon
		{"2026-12-05T00:00:20Z", analytics.PeriodWeek},  // Saturday, just after midnight
		{"2026-12-07T00:00:20Z", analytics.PeriodMonth}, // Monday, just after midnight
		{"2026-06-01T00:00:20Z", ""},                    // Monday the 1st: nothing to cross
	} {
		now, _ := time.Parse(time.RFC3339, tc.now)
		o := loadgen.DefaultOptions()
		o.Rate, o.Duration, o.Seed = 1500, 5*time.Second, 1
		o.Scenario = loadgen.Growth
		o.Catalog = pricing.Default()
		o.Now = func() time.Time { return now }
		p, spend, err := demoBudget(o, o.Catalog, now)
		if err != nil {
			t.Fatal(err)
		}
		if p != tc.want || (p == "") != (spend == 0) || (p != "" && spend < 0.01) {
			t.Errorf("at %s: budget over %q spending %v, want %q", tc.now, p, spend, tc.want)
		}
	}
}
