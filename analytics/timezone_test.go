package analytics

import (
	"context"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/whtest"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/warehouse"
)

// TestTimezoneServers reads calls on both sides of a UTC month boundary
// from servers in Europe/Berlin and America/New_York: every UTC day, month
// and granularity holds exactly its own calls.
func TestTimezoneServers(t *testing.T) {
	t.Parallel()
	jan, feb := time.Date(2026, 1, 31, 23, 30, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 30, 0, 0, time.UTC)
	for _, tz := range []string{"Europe/Berlin", "America/New_York"} {
		t.Run(tz, func(t *testing.T) {
			srv := chtest.StartWithOptions(t, chtest.Options{Timezone: tz})
			ctx := context.Background()
			w := whtest.Migrated(t, srv.DSN("costpipe"))
			for i, ev := range []struct {
				ts       time.Time
				requests uint64
			}{{jan, 3}, {feb, 5}} {
				for _, tb := range warehouse.Tables {
					r := warehouse.Rollup{TS: tb.Truncate(ev.ts), Tenant: "acme", Provider: "openai", Model: "gpt-4o",
						SrcTopic: "costpipe.events", SrcOffset: int64(10 + i), Requests: ev.requests, Cost: pricing.FromPicos(int64(ev.requests))}
					if err := w.InsertRollups(ctx, tb, []warehouse.Rollup{r}); err != nil {
						t.Fatal(err)
					}
				}
			}
			q := New(w, Options{Now: func() time.Time { return time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) }})
			day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
			for _, c := range []struct {
				name     string
				from, to time.Time
				g        Granularity
				want     uint64
			}{
				{"Jan 31 (UTC day), auto", day(2026, 1, 31), day(2026, 2, 1), GranularityAuto, 3},
				{"Feb 1 (UTC day), auto", day(2026, 2, 1), day(2026, 2, 2), GranularityAuto, 5},
				{"Jan 31 from usage_1d", day(2026, 1, 31), day(2026, 2, 1), GranularityDay, 3},
				{"Feb 1 from usage_1d", day(2026, 2, 1), day(2026, 2, 2), GranularityDay, 5},
				{"January", day(2026, 1, 1), day(2026, 2, 1), GranularityAuto, 3},
				{"February", day(2026, 2, 1), day(2026, 3, 1), GranularityAuto, 5},
				{"23:00-24:00Z from usage_1h", jan.Truncate(time.Hour), feb.Truncate(24 * time.Hour), GranularityHour, 3},
				{"00:00-01:00Z from usage_1m", feb.Truncate(time.Hour), feb.Truncate(time.Hour).Add(time.Hour), GranularityMinute, 5},
				{"ragged 23:15Z-00:45Z", jan.Add(-15 * time.Minute), feb.Add(15 * time.Minute), GranularityAuto, 8},
			} {
				rows, err := q.Usage(ctx, UsageQuery{From: c.from, To: c.to, Granularity: c.g})
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				var got uint64
				if len(rows) == 1 {
					got = rows[0].Requests
				}
				if got != c.want || (len(rows) == 1 && rows[0].CostUSD != pricing.FromPicos(int64(c.want))) {
					t.Errorf("%s: %d requests (%d rows), want %d", c.name, got, len(rows), c.want)
				}
			}
			// The analyst views put the rows on their UTC days too.
			var jan31, feb1 uint64
			if err := w.Conn().QueryRow(ctx, "SELECT sumIf(requests, day = toDate('2026-01-31')), sumIf(requests, day = toDate('2026-02-01')) FROM costpipe.cost_by_model_daily").
				Scan(&jan31, &feb1); err != nil {
				t.Fatal(err)
			}
			if jan31 != 3 || feb1 != 5 {
				t.Errorf("cost_by_model_daily: Jan 31 %d, Feb 1 %d; want 3, 5", jan31, feb1)
			}
		})
	}
}
