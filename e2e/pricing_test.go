package e2e

import (
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/schemas"
)

// tieredCatalog prices the test's events: a long-context tier, 1-hour cache
// writes, service tiers of every kind (own prices, a multiplier, a
// provider default) and a tenant discount.
const tieredCatalog = `
source: "e2e catalog"
updated: 2026-11-01
providers:
  anthropic:
    service_tiers:
      batch: { multiplier: "0.5" }
models:
  - provider: anthropic
    model: claude-sonnet-4-5
    prices:
      - from: 2025-01-01
        input: "3"
        cached_input: "0.30"
        cache_write: "3.75"
        cache_write_1h: "6"
        output: "15"
        tiers:
          - above: 200000
            input: "6"
            cached_input: "0.60"
            cache_write: "7.50"
            cache_write_1h: "12"
            output: "22.50"
  - provider: openai
    model: gpt-5
    prices:
      - from: 2025-01-01
        input: "1.25"
        cached_input: "0.125"
        output: "10"
        tiers:
          - above: 272000
            input: "2.50"
            output: "15"
        service_tiers:
          batch: { multiplier: "0.5" }
          flex: { input: "0.625", cached_input: "0.0625", output: "5" }
          priority:
            input: "2.50"
            cached_input: "0.25"
            output: "20"
            tiers:
              - above: 272000
                input: "5"
tenants:
  acme: { discount: "0.10" }
`

// negotiatedCatalog is the what-if: other rates, other thresholds'
// values (same thresholds), no discount, gpt-5 without flex.
const negotiatedCatalog = `
models:
  - provider: anthropic
    model: claude-sonnet-4-5
    prices:
      - from: 2025-01-01
        input: "2.4"
        cached_input: "0.24"
        cache_write: "3"
        cache_write_1h: "4.8"
        output: "12"
        tiers:
          - above: 200000
            input: "4.8"
            output: "18"
        service_tiers:
          batch: { multiplier: "0.4" }
  - provider: openai
    model: gpt-5
    prices:
      - from: 2025-01-01
        input: "1"
        cached_input: "0.1"
        output: "8"
        tiers:
          - above: 272000
            input: "2"
        service_tiers:
          priority: { multiplier: "1.5" }
`

// TestServiceTiersEndToEnd sends calls on every service tier, below and
// above the long-context thresholds, with 1-hour cache writes, through a
// real client (kcat) and the aggregator into ClickHouse; `query usage`
// reports the cost per tenant and model exactly, and `--reprice` with
// another catalog equals pricing every call with it.
func TestServiceTiersEndToEnd(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat is required (apt-get install kcat; .ci/run installs it)")
	}
	dir := t.TempDir()
	live, other := filepath.Join(dir, "live.yaml"), filepath.Join(dir, "negotiated.yaml")
	for p, s := range map[string]string{live: tieredCatalog, other: negotiatedCatalog} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	liveCat, err := pricing.Parse(live, []byte(tieredCatalog))
	if err != nil {
		t.Fatal(err)
	}
	otherCat, err := pricing.Parse(other, []byte(negotiatedCatalog))
	if err != nil {
		t.Fatal(err)
	}

	srv := chtest.Start(t)
	db := srv.NewDatabase(t)
	conn := srv.Conn(t, db)
	b := kafkatest.Start(t, 4)

	rng := rand.New(rand.NewPCG(14, 14))
	now := time.Now().UTC()
	from := now.Add(-2 * time.Hour).Truncate(time.Hour)
	tiers := []string{"", "", "batch", "flex", "priority", "Standard", "scale", "DEFAULT"}
	type groupKey struct{ tenant, model string }
	wantLive := map[groupKey]pricing.Pico{}
	wantOther := map[groupKey]pricing.Pico{}
	wantTier := map[string]uint64{}
	var lines []kcatLine
	const n = 3000
	for i := range n {
		ev := schemas.Event{
			EventID:   fmt.Sprintf("tier-%d", i),
			Timestamp: from.Add(time.Duration(rng.Int64N(int64(now.Sub(from)))) / time.Millisecond * time.Millisecond),
			Tenant:    []string{"acme", "globex"}[rng.IntN(2)],
			Status:    schemas.StatusOK,
		}
		if rng.IntN(2) == 0 {
			ev.Provider, ev.Model = "anthropic", "claude-sonnet-4-5"
		} else {
			ev.Provider, ev.Model = "openai", "gpt-5"
		}
		ev.ServiceTier = tiers[rng.IntN(len(tiers))]
		switch rng.IntN(4) {
		case 0: // long context, around and above both thresholds
			ev.InputTokens = 150_000 + rng.Int64N(200_000)
		case 1:
			ev.InputTokens = []int64{200_000, 200_001, 272_000, 272_001}[rng.IntN(4)]
		default:
			ev.InputTokens = rng.Int64N(20_000)
		}
		ev.CachedInputTokens = rng.Int64N(ev.InputTokens/3 + 1)
		ev.CacheWriteTokens = rng.Int64N(ev.InputTokens/3 + 1)
		ev.CacheWrite1hTokens = rng.Int64N(ev.CacheWriteTokens + 1)
		ev.OutputTokens = rng.Int64N(4000)
		ev.ReasoningTokens = rng.Int64N(ev.OutputTokens + 1)
		k := groupKey{ev.Tenant, ev.Model}
		c, ok := liveCat.Total(&ev)
		if !ok {
			t.Fatalf("event %d unpriced", i)
		}
		wantLive[k] = wantLive[k].Add(c)
		c, ok = otherCat.Total(&ev)
		if !ok {
			t.Fatalf("event %d unpriced by the other catalog", i)
		}
		wantOther[k] = wantOther[k].Add(c)
		wantTier[pricing.NormalizeServiceTier(ev.ServiceTier)]++
		lines = append(lines, kcatLine{ev.Key(), schemas.AppendJSON(nil, &ev)})
	}
	if err := kcatProduce(b.Addr(), schemas.ContentTypeJSON, lines); err != nil {
		t.Fatal(err)
	}
	a := startAggregator(t, "A", b.Addr(), srv.DSN(db), "e2e-tiers", "--flush-interval", "300ms", "--prices", live)
	waitFor(t, 60*time.Second, "every call to land", func() bool { return landedRequests(conn, db) >= n })
	a.mustTerm()

	query := func(args ...string) []map[string]any {
		t.Helper()
		cmd := exec.Command(binPath, append([]string{"--clickhouse", srv.DSN(db), "query", "usage",
			"--from", from.Format(time.RFC3339), "--to", now.Add(time.Hour).Format(time.RFC3339), "--format", "json"}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("query usage %v: %v\n%s", args, err, out)
		}
		var rows []map[string]any
		if err := json.Unmarshal(out, &rows); err != nil {
			t.Fatalf("query usage %v: %v\n%s", args, err, out)
		}
		return rows
	}
	rows := query("--by", "tenant,model", "--reprice", other, "--compare")
	if len(rows) != len(wantLive) {
		t.Fatalf("%d groups, want %d: %v", len(rows), len(wantLive), rows)
	}
	for _, r := range rows {
		k := groupKey{r["tenant"].(string), r["model"].(string)}
		if got, want := r["stored_cost_usd"], wantLive[k].String(); got != want {
			t.Errorf("%v: stored_cost_usd %v, want %s", k, got, want)
		}
		if got, want := r["cost_usd"], wantOther[k].String(); got != want {
			t.Errorf("%v: re-priced cost_usd %v, want %s (every call priced with the other catalog)", k, got, want)
		}
		if r["unpriced_requests"].(float64) != 0 {
			t.Errorf("%v: %v unpriced under the other catalog", k, r["unpriced_requests"])
		}
	}
	// Re-pricing with the live catalog reproduces the stored cost (within
	// 1e-9 USD per group: the discounted tenant's costs are rounded per
	// group instead of per call); a catalog that halves claude's prices
	// halves exactly claude's cost.
	half := filepath.Join(dir, "half.yaml")
	halver := strings.NewReplacer(`input: "3"`, `input: "1.5"`, `cached_input: "0.30"`, `cached_input: "0.15"`,
		`cache_write: "3.75"`, `cache_write: "1.875"`, `cache_write_1h: "6"`, `cache_write_1h: "3"`, `output: "15"`, `output: "7.5"`,
		`input: "6"`, `input: "3"`, `cached_input: "0.60"`, `cached_input: "0.30"`, `cache_write: "7.50"`, `cache_write: "3.75"`,
		`cache_write_1h: "12"`, `cache_write_1h: "6"`, `output: "22.50"`, `output: "11.25"`)
	// Only the claude entry: it ends where gpt-5's begins.
	cut := strings.Index(tieredCatalog, "  - provider: openai")
	halved := halver.Replace(tieredCatalog[:cut]) + tieredCatalog[cut:]
	if err := os.WriteFile(half, []byte(halved), 0o644); err != nil {
		t.Fatal(err)
	}
	near := func(got any, want *big.Rat) bool {
		g, ok := new(big.Rat).SetString(got.(string))
		return ok && new(big.Rat).Abs(new(big.Rat).Sub(g, want)).Cmp(big.NewRat(1, 1e9)) <= 0
	}
	for _, tc := range []struct {
		catalog string
		factor  map[string]*big.Rat
	}{
		{live, map[string]*big.Rat{"claude-sonnet-4-5": big.NewRat(1, 1), "gpt-5": big.NewRat(1, 1)}},
		{half, map[string]*big.Rat{"claude-sonnet-4-5": big.NewRat(1, 2), "gpt-5": big.NewRat(1, 1)}},
	} {
		for _, r := range query("--by", "tenant,model", "--reprice", tc.catalog, "--compare") {
			k := groupKey{r["tenant"].(string), r["model"].(string)}
			stored, _ := new(big.Rat).SetString(wantLive[k].String())
			want := new(big.Rat).Mul(stored, tc.factor[k.model])
			if !near(r["cost_usd"], want) {
				t.Errorf("%s %v: re-priced %v, want %s ± 1e-9", filepath.Base(tc.catalog), k, r["cost_usd"], want.FloatString(12))
			}
		}
	}
	for _, r := range query("--by", "service_tier") {
		st := r["service_tier"].(string)
		if got := uint64(r["requests"].(float64)); got != wantTier[st] {
			t.Errorf("service tier %q: %d requests, want %d", st, got, wantTier[st])
		}
	}
	// The unknown "scale" tier is charged standard rates, and coverage says so.
	out, err := exec.Command(binPath, "--clickhouse", srv.DSN(db), "prices", "coverage", "--since", "1d", "--prices", live).CombinedOutput()
	if err != nil {
		t.Fatalf("prices coverage: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "service_tier") || !strings.Contains(string(out), "no scale price") {
		t.Errorf("prices coverage does not report the scale calls:\n%s", out)
	}
	t.Logf("%d calls on %d service tiers; cost and what-if cost exact for %d groups\n%s", n, len(wantTier), len(rows), out)
}
