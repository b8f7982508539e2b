package analytics

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/warehouse"
)

// TestRepriceAcrossAPriceChange: a catalog whose price changes at noon
// re-prices the calls before noon at the old price and after at the new,
// although the range is read from usage_1d and usage_1h elsewhere; calls
// are kept apart by service tier and context band; --map-model prices one
// model's calls as another's.
func TestRepriceAcrossAPriceChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := migratedDB(t)
	cat, err := pricing.Parse("whatif.yaml", []byte(`
models:
  - provider: p
    model: m
    prices:
      - from: 2026-01-01
        input: "1"
        output: "2"
        tiers:
          - above: 200000
            input: "10"
        service_tiers:
          batch: { multiplier: "0.5" }
      - from: 2026-03-10T12:00:00Z
        input: "3"
        output: "4"
  - provider: p
    model: cheap
    prices:
      - from: 2026-01-01
        input: "0.1"
        output: "0.2"
`))
	if err != nil {
		t.Fatal(err)
	}
	// One call's worth of usage every hour of 2026-03-09 … 2026-03-11, landed
	// in every table; odd hours on the batch tier, every 5th a long call.
	start := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	want := pricing.Pico{}
	wantMapped := pricing.Pico{}
	var rows [3][]warehouse.Rollup
	off := int64(0)
	for h := 0; h < 72; h++ {
		ts := start.Add(time.Duration(h)*time.Hour + 17*time.Minute)
		r := warehouse.Rollup{TS: ts, Tenant: "acme", Provider: "p", Model: "m", SrcTopic: "costpipe.events",
			Requests: 1, InputTokens: 1000, OutputTokens: 100}
		price := [2]int64{1, 2}
		if !ts.Before(time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)) {
			price = [2]int64{3, 4}
		}
		num, den := int64(1), int64(1)
		if h%2 == 1 {
			r.ServiceTier = "batch"
			if price[0] == 1 { // only the first price has a batch tier
				den = 2
			}
		}
		if h%5 == 0 {
			r.InputTokens, r.ContextBand = 250_000, 200_000
			if price[0] == 1 {
				price[0] = 10
			}
		}
		// cost in pico-dollars: tokens × USD per 1M × 10^6
		c := (int64(r.InputTokens)*price[0] + int64(r.OutputTokens)*price[1]) * 1_000_000 * num / den
		want = want.Add(pricing.FromPicos(c))
		wantMapped = wantMapped.Add(pricing.FromPicos(int64(r.InputTokens)*100_000 + int64(r.OutputTokens)*200_000))
		for i, tb := range warehouse.Tables {
			x := r
			x.TS = tb.Truncate(ts)
			off++
			x.SrcOffset = off
			rows[i] = append(rows[i], x)
		}
	}
	for i, tb := range warehouse.Tables {
		byMonth := rows[i]
		if err := w.InsertRollups(ctx, tb, byMonth); err != nil {
			t.Fatal(err)
		}
	}
	q := New(w, Options{Now: func() time.Time { return time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC) }})
	got, err := q.Usage(ctx, UsageQuery{From: start, To: start.Add(72 * time.Hour), Reprice: cat})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Reprice == nil || got[0].Reprice.CostUSD != want {
		t.Fatalf("re-priced %+v, want %s", got[0].Reprice, want)
	}
	got, err = q.Usage(ctx, UsageQuery{From: start, To: start.Add(72 * time.Hour), Reprice: cat, MapModel: map[string]string{"m": "cheap"}})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Reprice.CostUSD != wantMapped {
		t.Errorf("mapped to cheap: %s, want %s", got[0].Reprice.CostUSD, wantMapped)
	}
	// A price change inside a minute cannot be re-priced from the rollups.
	odd, err := pricing.Parse("odd.yaml", []byte("models:\n  - provider: p\n    model: m\n    prices:\n      - {from: 2026-01-01, input: \"1\", output: \"1\"}\n      - {from: \"2026-03-10T12:00:30Z\", input: \"2\", output: \"2\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Usage(ctx, UsageQuery{From: start, To: start.Add(72 * time.Hour), Reprice: odd}); err == nil || !strings.Contains(err.Error(), "inside a minute") {
		t.Errorf("price change at :30 s: %v", err)
	}
	if _, err := q.Usage(ctx, UsageQuery{From: start, To: start.Add(72 * time.Hour), Reprice: cat, MapModel: map[string]string{"m": "nope"}}); err == nil || !strings.Contains(err.Error(), `no entry named "nope"`) {
		t.Errorf("map to an unknown model: %v", err)
	}
	// A change inside an hour is read from the hour's minute rows; once
	// retention dropped them, the hour's call must not silently vanish
	// from the re-priced cost (it was 71 of 72 calls before the check).
	halfHour, err := pricing.Parse("half.yaml", []byte("models:\n  - provider: p\n    model: m\n    prices:\n      - {from: 2026-01-01, input: \"1\", output: \"1\"}\n      - {from: \"2026-03-10T12:30:00Z\", input: \"2\", output: \"2\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Usage(ctx, UsageQuery{From: start, To: start.Add(72 * time.Hour), Reprice: halfHour}); err != nil {
		t.Fatalf("change at 12:30 with the minute rows kept: %v", err)
	}
	if err := w.Conn().Exec(ctx, "ALTER TABLE "+w.Database()+".usage_1m DROP PARTITION 202603"); err != nil {
		t.Fatal(err)
	}
	_, err = q.Usage(ctx, UsageQuery{From: start, To: start.Add(72 * time.Hour), Reprice: halfHour})
	if err == nil || !strings.Contains(err.Error(), "1 of its 72 calls") || !strings.Contains(err.Error(), "2026-03-10T12:30:00Z") {
		t.Errorf("change at 12:30 after the minute rows were dropped: %v, want an error naming the call and the change", err)
	}
}
