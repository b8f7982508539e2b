package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/schemas"
)

// TestGrowthEndToEnd sends 35 days of calls whose daily cost follows known
// curves through a real client (kcat), the aggregator and ClickHouse, and
// asks `query growth`: a tenant doubling every 5 days (±30% daily noise,
// weekends at 40%) reports a doubling time within 10% of 5 days; a flat one
// (weekends at 40%) reports none; a shrinking one (halving every 10 days) reports halving; one
// that started 10 days ago gets a note and no rate. `query forecast` gives
// the month's p10 ≤ p50 ≤ p90 with the period so far exact.
func TestGrowthEndToEnd(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat is required (apt-get install kcat; .ci/run installs it)")
	}
	dir := t.TempDir()
	prices := filepath.Join(dir, "prices.yaml")
	// USD 1 per 1M input tokens: a call's cost is its input tokens / 10^6.
	if err := os.WriteFile(prices, []byte("models:\n  - provider: p\n    model: m\n    prices:\n      - {from: 2020-01-01, input: \"1\", output: \"0\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := chtest.Start(t)
	db := srv.NewDatabase(t)
	conn := srv.Conn(t, db)
	b := kafkatest.Start(t, 2)

	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	// Every question is asked at the test's now: a midnight between it
	// and the questions would move "today".
	at := now.Format(time.RFC3339)
	rng := rand.New(rand.NewPCG(8, 8))
	curves := map[string]func(day int) float64{ // day 0 = today, −1 = yesterday, …
		"doubling":  func(d int) float64 { return 100 * math.Pow(2, float64(d)/5) },
		"flat":      func(int) float64 { return 50 },
		"shrinking": func(d int) float64 { return 80 * math.Pow(2, -float64(d)/10) },
		"new":       func(d int) float64 { return map[bool]float64{true: 30, false: 0}[d >= -10] },
	}
	var lines []kcatLine
	var calls uint64
	// A fixed order, so the same seed gives the same noise. The flat tenant
	// has no noise: a noisy flat series shows a "significant" trend in ~5%
	// of draws by the nature of a 90% interval (the unit tests measure that
	// rate over 500 seeds); here it must not depend on the day the test runs.
	for _, tenant := range []string{"doubling", "flat", "shrinking", "new"} {
		f := curves[tenant]
		noise := 0.3
		if tenant == "flat" {
			noise = 0
		}
		for d := -35; d <= -1; d++ {
			day := today.AddDate(0, 0, d)
			v := f(d) * (1 + noise*(2*rng.Float64()-1))
			if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
				v *= 0.4
			}
			if v <= 0 {
				continue
			}
			// The day's cost in four calls at random times of the day.
			for i := range 4 {
				ev := schemas.Event{EventID: fmt.Sprintf("%s-%d-%d", tenant, d, i), Tenant: tenant, Provider: "p", Model: "m",
					Status: schemas.StatusOK, Timestamp: day.Add(time.Duration(rng.Int64N(int64(24 * time.Hour)))).Truncate(time.Millisecond),
					InputTokens: int64(v / 4 * 1e6)}
				lines = append(lines, kcatLine{ev.Key(), schemas.AppendJSON(nil, &ev)})
				calls++
			}
		}
	}
	if err := kcatProduce(b.Addr(), schemas.ContentTypeJSON, lines); err != nil {
		t.Fatal(err)
	}
	a := startAggregator(t, "A", b.Addr(), srv.DSN(db), "e2e-growth", "--flush-interval", "300ms", "--prices", prices,
		"--max-event-age", fmt.Sprint(40*24*time.Hour))
	waitFor(t, 60*time.Second, "every call to land", func() bool { return landedRequests(conn, db) >= calls })
	a.mustTerm()

	out, err := exec.Command(binPath, "--clickhouse", srv.DSN(db), "query", "growth", "--at", at, "--by", "tenant", "--format", "json").Output()
	if err != nil {
		t.Fatalf("query growth: %v\n%s", err, out)
	}
	var rows []map[string]any
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := map[string]map[string]any{}
	for _, r := range rows {
		got[r["tenant"].(string)] = r
	}
	if len(got) != 4 {
		t.Fatalf("%d tenants: %s", len(got), out)
	}
	if d, ok := got["doubling"]["doubling_days"].(float64); !ok || math.Abs(d-5) > 0.5 {
		t.Errorf("doubling: doubling_days %v, want 5 ± 10%%", got["doubling"]["doubling_days"])
	}
	if got["flat"]["doubling_days"] != nil || got["flat"]["halving_days"] != nil {
		t.Errorf("flat: doubling %v halving %v, want neither", got["flat"]["doubling_days"], got["flat"]["halving_days"])
	}
	if h, ok := got["shrinking"]["halving_days"].(float64); !ok || math.Abs(h-10) > 1.5 || got["shrinking"]["doubling_days"] != nil {
		t.Errorf("shrinking: halving_days %v doubling %v, want 10 ± 15%% and no doubling", got["shrinking"]["halving_days"], got["shrinking"]["doubling_days"])
	}
	if got["new"]["daily_rate"] != nil || got["new"]["note"] == "" {
		t.Errorf("new: daily_rate %v note %q, want a note and no rate", got["new"]["daily_rate"], got["new"]["note"])
	}
	table, err := exec.Command(binPath, "--clickhouse", srv.DSN(db), "query", "growth", "--at", at, "--by", "tenant").CombinedOutput()
	if err != nil {
		t.Fatalf("query growth (table): %v\n%s", err, table)
	}

	out, err = exec.Command(binPath, "--clickhouse", srv.DSN(db), "query", "forecast", "--at", at, "--by", "tenant", "--format", "json", "--budget", "2000").Output()
	if err != nil {
		t.Fatalf("query forecast: %v\n%s", err, out)
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// Money, the forecasts of cost included, is an exact decimal string.
	usd := func(v any) (float64, bool) {
		s, ok := v.(string)
		if _, err := pricing.ParsePico(s); !ok || err != nil {
			return 0, false
		}
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil
	}
	for _, r := range rows {
		p10, ok1 := usd(r["forecast_p10"])
		p50, ok2 := usd(r["forecast_p50"])
		p90, ok3 := usd(r["forecast_p90"])
		if r["tenant"] != "new" && (!ok1 || !ok2 || !ok3 || p10 > p50 || p50 > p90) {
			t.Errorf("%v: p10 %v p50 %v p90 %v", r["tenant"], r["forecast_p10"], r["forecast_p50"], r["forecast_p90"])
		}
	}
	// The next 14 days instead of the month.
	out, err = exec.Command(binPath, "--clickhouse", srv.DSN(db), "query", "forecast", "--at", at, "--horizon", "14", "--format", "json").Output()
	if err != nil {
		t.Fatalf("query forecast --horizon: %v\n%s", err, out)
	}
	if err := json.Unmarshal(out, &rows); err != nil || len(rows) != 1 || rows[0]["forecast_p50"] == nil ||
		rows[0]["period_end"] != today.AddDate(0, 0, 13).Format(time.DateOnly) {
		t.Errorf("forecast --horizon 14: %v\n%s", err, out)
	}
	fc, _ := exec.Command(binPath, "--clickhouse", srv.DSN(db), "query", "forecast", "--at", at, "--by", "tenant", "--budget", "2000").CombinedOutput()
	t.Logf("%d calls over 35 days\n%s\n%s", calls, table, fc)
}
