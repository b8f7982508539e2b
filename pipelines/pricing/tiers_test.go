package pricing

import (
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/costpipe/costpipe/schemas"
)

// tierCatalog has long-context tiers, service tiers of every kind and a
// provider default. Expected costs are computed by hand or by refCost.
const tierCatalog = `
source: "test catalog"
updated: 2026-07-24
providers:
  anthropic:
    service_tiers:
      batch: { multiplier: "0.5" }
      priority: { multiplier: "2" }
models:
  - provider: anthropic
    model: sonnet
    source: litellm
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
        service_tiers:
          priority:
            input: "5"
            output: "25"
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
          - above: 128000
            output: "12"
        service_tiers:
          batch: { multiplier: "0.5" }
          flex:
            input: "0.625"
            cached_input: "0.0625"
            output: "5"
          priority:
            input: "2.50"
            cached_input: "0.25"
            output: "20"
            tiers:
              - above: 272000
                input: "5"
`

func TestLongContextTiers(t *testing.T) {
	c := mustParse(t, tierCatalog)
	ev := func(in, cached, write, write1h, out int64) schemas.Event {
		return schemas.Event{Provider: "anthropic", Model: "sonnet", Timestamp: t0,
			InputTokens: in, CachedInputTokens: cached, CacheWriteTokens: write, CacheWrite1hTokens: write1h, OutputTokens: out}
	}
	for _, tc := range []struct {
		name string
		e    schemas.Event
		want string
	}{
		// 250k input: every token at the above-200k rates.
		// (250000−50000−20000)·6 + 50000·0.60 + (20000−5000)·7.50 + 5000·12 + 1000·22.50 = 1 080 000 + 30 000 + 112 500 + 60 000 + 22 500
		{"250k", ev(250_000, 50_000, 20_000, 5_000, 1_000), "1.305000000000"},
		// 150k input: base rates. 80000·3 + 50000·0.30 + 15000·3.75 + 5000·6 + 1000·15
		{"150k", ev(150_000, 50_000, 20_000, 5_000, 1_000), "0.356250000000"},
		// Exactly at the threshold: base (the tier applies above it).
		{"200k", ev(200_000, 0, 0, 0, 0), "0.600000000000"},
		{"200k+1", ev(200_001, 0, 0, 0, 0), "1.200006000000"},
	} {
		got, ok := c.Total(&tc.e)
		if !ok || got.String() != tc.want {
			t.Errorf("%s: Total = %s, %v; want %s", tc.name, got, ok, tc.want)
		}
		q := c.Cost(&tc.e)
		if q.Total != got {
			t.Errorf("%s: Cost total %s != Total %s", tc.name, q.Total, got)
		}
		if want := int64(0); tc.e.InputTokens > 200_000 {
			if q.Tier != 200_000 {
				t.Errorf("%s: Quote.Tier = %d, want 200000", tc.name, q.Tier)
			}
		} else if q.Tier != want {
			t.Errorf("%s: Quote.Tier = %d, want 0", tc.name, q.Tier)
		}
	}
}

func TestServiceTiers(t *testing.T) {
	c := mustParse(t, tierCatalog)
	gpt := func(tier string, in, cached, out int64) schemas.Event {
		return schemas.Event{Provider: "openai", Model: "gpt-5", Timestamp: t0, ServiceTier: tier,
			InputTokens: in, CachedInputTokens: cached, OutputTokens: out}
	}
	sonnet := func(tier string, in, out int64) schemas.Event {
		return schemas.Event{Provider: "anthropic", Model: "sonnet", Timestamp: t0, ServiceTier: tier, InputTokens: in, OutputTokens: out}
	}
	for _, tc := range []struct {
		name     string
		e        schemas.Event
		want     string
		pricedAt string
	}{
		// Standard: 900000·1.25 + 100000·0.125 + 1e6·10 = 1.125 + 0.0125 + 10 (but 1M input > 272k: input 2.50, output 12)
		{"standard small", gpt("", 9_000, 1_000, 10_000), "0.110125000000", ""},
		{"default is standard", gpt("default", 9_000, 1_000, 10_000), "0.110125000000", ""},
		{"STANDARD is standard", gpt("Standard", 9_000, 1_000, 10_000), "0.110125000000", ""},
		// flex: 8000·0.625 + 1000·0.0625 + 10000·5
		{"flex", gpt("flex", 9_000, 1_000, 10_000), "0.055062500000", "flex"},
		{"FLEX", gpt("FLEX", 9_000, 1_000, 10_000), "0.055062500000", "flex"},
		// batch: half of standard
		{"batch", gpt("batch", 9_000, 1_000, 10_000), "0.055062500000", "batch"},
		// unknown service tier: standard rates
		{"scale", gpt("scale", 9_000, 1_000, 10_000), "0.110125000000", ""},
		// standard above 272k: input 2.50 (272k tier), cached 0.125 (base, the tier
		// does not give it), output 10 (the 272k tier does not give it: the 128k
		// tier's 12 does not apply, tiers are not cumulative).
		// 299000·2.50 + 1000·0.125 + 1000·10
		{"standard 300k", gpt("", 300_000, 1_000, 1_000), "0.757625000000", ""},
		// 128k < input ≤ 272k: output 12. 149000·1.25 + 1000·0.125 + 1000·12
		{"standard 150k", gpt("", 150_000, 1_000, 1_000), "0.198375000000", ""},
		// priority 300k: input from priority's 272k tier (5), cached from
		// priority (0.25), output from priority (20): its own tier, then the
		// standard tier (no output there), then its own flat rates.
		// 299000·5 + 1000·0.25 + 1000·20
		{"priority 300k", gpt("priority", 300_000, 1_000, 1_000), "1.515250000000", "priority"},
		// priority 150k: the standard 128k tier's output (12) wins over
		// priority's flat 20. 149000·2.50 + 1000·0.25 + 1000·12
		{"priority 150k", gpt("priority", 150_000, 1_000, 1_000), "0.384750000000", "priority"},
		// batch 300k: half of the standard 300k cost.
		{"batch 300k", gpt("batch", 300_000, 1_000, 1_000), "0.378812500000", "batch"},
		// Provider default batch for anthropic: half of 10000·3 + 1000·15
		{"provider batch", sonnet("batch", 10_000, 1_000), "0.022500000000", "batch"},
		// The entry's own priority wins over the provider's ×2: 10000·5 + 1000·25
		{"own priority", sonnet("priority", 10_000, 1_000), "0.075000000000", "priority"},
		// Own priority above 200k: the standard tier's rates win (6, 22.50).
		{"own priority 250k", sonnet("priority", 250_000, 1_000), "1.522500000000", "priority"},
	} {
		got, ok := c.Total(&tc.e)
		if !ok || got.String() != tc.want {
			t.Errorf("%s: Total = %s, %v; want %s", tc.name, got, ok, tc.want)
		}
		q := c.Cost(&tc.e)
		if q.Total != got || q.PricedServiceTier != tc.pricedAt {
			t.Errorf("%s: Cost = %s priced at %q; want %s at %q", tc.name, q.Total, q.PricedServiceTier, got, tc.pricedAt)
		}
	}
	// The accessors agree.
	p := c.Lookup("openai", "gpt-5").Prices[0]
	if got := p.ServiceTierNames(); strings.Join(got, ",") != "batch,flex,priority" {
		t.Errorf("ServiceTierNames = %v", got)
	}
	if got := c.Lookup("anthropic", "sonnet").Prices[0].ServiceTierNames(); strings.Join(got, ",") != "batch,priority" {
		t.Errorf("sonnet ServiceTierNames = %v", got)
	}
	if r, st, above := p.RatesFor("PRIORITY", 300_000); st != "priority" || above != 272_000 || r.Input.String() != "5.000000000000" || r.Output.String() != "20.000000000000" {
		t.Errorf("RatesFor(priority, 300k) = %+v %q %d", r, st, above)
	}
	if c.Source() != "test catalog" || c.Updated() != "2026-07-24" || c.Lookup("anthropic", "sonnet").Source != "litellm" {
		t.Errorf("source %q updated %q entry source %q", c.Source(), c.Updated(), c.Lookup("anthropic", "sonnet").Source)
	}
	if got := c.Providers(); len(got) != 1 || got[0] != "anthropic" {
		t.Errorf("Providers = %v", got)
	}
}

// TestTiersMatchReference prices random events with a reference
// implementation of docs/contracts.md §2 in big.Rat, independent of the
// engine's bands and fixed-point arithmetic.
func TestTiersMatchReference(t *testing.T) {
	c := mustParse(t, tierCatalog+`
tenants:
  acme: { discount: "0.15" }
`)
	rng := rand.New(rand.NewPCG(1, 2))
	tiers := []string{"", "batch", "flex", "priority", "scale", "Default"}
	for i := 0; i < 20_000; i++ {
		e := schemas.Event{Timestamp: t0, ServiceTier: tiers[rng.IntN(len(tiers))]}
		if rng.IntN(2) == 0 {
			e.Provider, e.Model = "openai", "gpt-5"
		} else {
			e.Provider, e.Model = "anthropic", "sonnet"
		}
		if rng.IntN(3) == 0 {
			e.Tenant = "acme"
		}
		e.InputTokens = rng.Int64N(400_000)
		if rng.IntN(4) == 0 {
			e.InputTokens = []int64{128_000, 128_001, 200_000, 200_001, 272_000, 272_001}[rng.IntN(6)]
		}
		e.CachedInputTokens = rng.Int64N(e.InputTokens/2 + 1)
		e.CacheWriteTokens = rng.Int64N(e.InputTokens - e.CachedInputTokens + 1)
		e.CacheWrite1hTokens = rng.Int64N(e.CacheWriteTokens + 1)
		e.OutputTokens = rng.Int64N(50_000)
		e.ReasoningTokens = rng.Int64N(e.OutputTokens + 1)
		got, ok := c.Total(&e)
		if !ok {
			t.Fatalf("unpriced: %+v", e)
		}
		want := refCost(t, e)
		if got.String() != want {
			t.Fatalf("event %+v: Total = %s, reference %s", e, got, want)
		}
	}
}

// refCost is the reference: the catalog above written out by hand as maps
// of given fields per level, combined per the contract.
func refCost(t *testing.T, e schemas.Event) string {
	type lv map[string]string
	var base lv
	var tiers map[int64]lv
	svc := map[string]lv{}
	svcTiers := map[string]map[int64]lv{}
	mult := map[string]string{}
	switch e.Model {
	case "sonnet":
		base = lv{"input": "3", "cached_input": "0.30", "cache_write": "3.75", "cache_write_1h": "6", "output": "15"}
		tiers = map[int64]lv{200_000: {"input": "6", "cached_input": "0.60", "cache_write": "7.50", "cache_write_1h": "12", "output": "22.50"}}
		svc["priority"] = lv{"input": "5", "output": "25"}
		mult["batch"] = "0.5"
	case "gpt-5":
		base = lv{"input": "1.25", "cached_input": "0.125", "output": "10"}
		tiers = map[int64]lv{272_000: {"input": "2.50"}, 128_000: {"output": "12"}}
		mult["batch"] = "0.5"
		svc["flex"] = lv{"input": "0.625", "cached_input": "0.0625", "output": "5"}
		svc["priority"] = lv{"input": "2.50", "cached_input": "0.25", "output": "20"}
		svcTiers["priority"] = map[int64]lv{272_000: {"input": "5"}}
	}
	st := strings.ToLower(e.ServiceTier)
	if st == "default" {
		st = ""
	}
	var above int64 = -1
	for a := range tiers {
		if e.InputTokens > a && a > above {
			above = a
		}
	}
	_, hasSvc := svc[st]
	get := func(f string) (string, bool) {
		var chain []lv
		if hasSvc {
			chain = []lv{svcTiers[st][above], tiers[above], svc[st], base}
		} else {
			chain = []lv{tiers[above], base}
		}
		for _, l := range chain {
			if v, ok := l[f]; ok {
				return v, true
			}
		}
		return "", false
	}
	rat := func(s string) *big.Rat {
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("bad rat %q", s)
		}
		return r
	}
	rate := func(f string, defaults ...string) *big.Rat {
		for _, name := range append([]string{f}, defaults...) {
			if v, ok := get(name); ok {
				return rat(v)
			}
		}
		return new(big.Rat)
	}
	in := rate("input")
	cached := rate("cached_input", "input")
	write := rate("cache_write", "input")
	write1h := rate("cache_write_1h", "cache_write", "input")
	out := rate("output")
	reasoning := rate("reasoning", "output")
	m := new(big.Rat).SetInt64(1)
	if v, ok := mult[st]; ok && !hasSvc {
		m = rat(v)
	}
	sum := new(big.Rat)
	addp := func(n int64, r *big.Rat) {
		x := new(big.Rat).Mul(new(big.Rat).SetInt64(n), r)
		// A multiplied rate is rounded to 12 digits in the engine; the
		// multipliers here (0.5, 2) keep these rates exact.
		x.Mul(x, m)
		sum.Add(sum, x)
	}
	addp(e.InputTokens-e.CachedInputTokens-e.CacheWriteTokens, in)
	addp(e.CachedInputTokens, cached)
	addp(e.CacheWriteTokens-e.CacheWrite1hTokens, write)
	addp(e.CacheWrite1hTokens, write1h)
	addp(e.OutputTokens-e.ReasoningTokens, out)
	addp(e.ReasoningTokens, reasoning)
	sum.Quo(sum, big.NewRat(1_000_000, 1))
	if e.Tenant == "acme" {
		sum.Mul(sum, rat("0.85"))
	}
	return roundRat12(sum)
}

// roundRat12 rounds r ≥ 0 half to even to 12 fraction digits.
func roundRat12(r *big.Rat) string {
	scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(12), nil)))
	q, rem := new(big.Int).QuoRem(scaled.Num(), scaled.Denom(), new(big.Int))
	twice := new(big.Int).Mul(rem, big.NewInt(2))
	if c := twice.Cmp(scaled.Denom()); c > 0 || (c == 0 && q.Bit(0) == 1) {
		q.Add(q, big.NewInt(1))
	}
	d := q.String()
	if len(d) <= 12 {
		d = strings.Repeat("0", 13-len(d)) + d
	}
	return d[:len(d)-12] + "." + d[len(d)-12:]
}

func TestTiersParseRejects(t *testing.T) {
	head := "models:\n  - provider: p\n    model: m\n    prices:\n      - from: 2025-01-01\n        input: \"1\"\n        output: \"2\"\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"above not a number", head + "        tiers:\n          - above: 200k\n            input: \"2\"\n",
			`field "above" = "200k" must be a whole number of input tokens`},
		{"above zero", head + "        tiers:\n          - above: 0\n",
			`field "above" = "0" must be a whole number`},
		{"above missing", head + "        tiers:\n          - input: \"2\"\n", `missing field "above"`},
		{"duplicate above", head + "        tiers:\n          - above: 10\n          - above: 10\n", `duplicate tier above 10`},
		{"tier unknown field", head + "        tiers:\n          - above: 10\n            from: 2025-01-01\n", `unknown field "from" in a tier`},
		{"service tier refines no tier", head + "        service_tiers:\n          priority:\n            tiers:\n              - above: 10\n                input: \"3\"\n",
			`service tier's tier above 10 refines no tier of the price (its tiers are above none)`},
		{"multiplier and prices", head + "        service_tiers:\n          batch: { multiplier: \"0.5\", input: \"1\" }\n",
			`has a multiplier and its own prices`},
		{"standard name", head + "        service_tiers:\n          default: { multiplier: \"0.5\" }\n", `is the standard tier`},
		{"upper-case name", head + "        service_tiers:\n          Batch: { multiplier: \"0.5\" }\n", `want lower-case letters`},
		{"empty service tier", head + "        service_tiers:\n          flex: {}\n", `has neither a multiplier nor prices`},
		{"multiplier too large", head + "        service_tiers:\n          flex: { multiplier: \"101\" }\n", `exceeds 100`},
		{"negative multiplier", head + "        service_tiers:\n          flex: { multiplier: \"-1\" }\n", `must not be negative`},
		{"provider prices", "providers:\n  p:\n    service_tiers:\n      batch: { input: \"1\" }\n" + head, `unknown field "input" in service tier "batch" (want one of multiplier)`},
		{"provider without tiers", "providers:\n  p: {}\n" + head, `missing field "service_tiers"`},
		{"bad updated", "updated: yesterday\n" + head, `cannot parse date "yesterday" for field "updated"`},
		{"multiplied rate too large", "models:\n  - provider: p\n    model: m\n    prices:\n      - from: 2025-01-01\n        input: \"900000\"\n        output: \"2\"\n        service_tiers:\n          x: { multiplier: \"2\" }\n",
			`a rate times the multiplier exceeds the maximum`},
	} {
		_, err := Parse("test.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

func TestTiersTotalAllocs(t *testing.T) {
	c := mustParse(t, tierCatalog)
	for _, e := range []schemas.Event{
		{Provider: "openai", Model: "gpt-5", Timestamp: t0, InputTokens: 300_000, ServiceTier: "priority"},
		{Provider: "openai", Model: "gpt-5", Timestamp: t0, InputTokens: 300_000, ServiceTier: "flex"},
		{Provider: "anthropic", Model: "sonnet", Timestamp: t0, InputTokens: 1000, ServiceTier: "batch"},
		{Provider: "anthropic", Model: "sonnet", Timestamp: t0, InputTokens: 1000, ServiceTier: "standard"},
	} {
		if n := testing.AllocsPerRun(200, func() { c.Total(&e) }); n != 0 {
			t.Errorf("Total(%s %s) allocates %v times", e.Model, e.ServiceTier, n)
		}
	}
}

func TestContextBand(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want uint32
	}{{0, 0}, {32_001, 0}, {128_000, 0}, {128_001, 128_000}, {200_000, 128_000}, {200_001, 200_000}, {999_999_999, 1_000_000}} {
		if got := ContextBand(tc.in); got != tc.want {
			t.Errorf("ContextBand(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
	for i := 1; i < len(ContextThresholds); i++ {
		if ContextThresholds[i] <= ContextThresholds[i-1] {
			t.Fatalf("ContextThresholds not ascending at %d", i)
		}
	}
}

func TestNormalizeServiceTier(t *testing.T) {
	for in, want := range map[string]string{"": "", "standard": "", "Default": "", "AUTO": "", "on_demand": "",
		"batch": "batch", "Flex": "flex", "priority": "priority", "scale": "scale"} {
		if got := NormalizeServiceTier(in); got != want {
			t.Errorf("NormalizeServiceTier(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { NormalizeServiceTier("priority") }); n != 0 {
		t.Errorf("NormalizeServiceTier allocates %v times", n)
	}
}

// TestCostOfSumsMatchesPerEvent groups random events the way the rollups
// do and prices the sums: equal to the sum of the per-event costs (exactly
// without a discount, within half a pico-dollar per call with one).
func TestCostOfSumsMatchesPerEvent(t *testing.T) {
	c := mustParse(t, tierCatalog+`
  - provider: self-hosted
    model: llama
    prices:
      - from: 2025-01-01
        input: "0.1"
        output: "0.2"
        gpu_hour: "2.5"
        request: "0.001"
tenants:
  acme: { discount: "0.15" }
`)
	rng := rand.New(rand.NewPCG(3, 4))
	type acc struct {
		s     Sums
		total Pico
		n     int64
	}
	groups := map[SumsKey]*acc{}
	tiers := []string{"", "batch", "flex", "priority", "Scale"}
	models := [][2]string{{"openai", "gpt-5"}, {"anthropic", "sonnet"}, {"self-hosted", "llama"}}
	for i := 0; i < 5000; i++ {
		m := models[rng.IntN(len(models))]
		e := schemas.Event{Timestamp: t0, Provider: m[0], Model: m[1], ServiceTier: tiers[rng.IntN(len(tiers))]}
		if rng.IntN(2) == 0 {
			e.Tenant = "acme"
		}
		e.InputTokens = rng.Int64N(400_000)
		e.CachedInputTokens = rng.Int64N(e.InputTokens/2 + 1)
		e.CacheWriteTokens = rng.Int64N(e.InputTokens - e.CachedInputTokens + 1)
		e.CacheWrite1hTokens = rng.Int64N(e.CacheWriteTokens + 1)
		e.OutputTokens = rng.Int64N(50_000)
		e.ReasoningTokens = rng.Int64N(e.OutputTokens + 1)
		if m[0] == "self-hosted" {
			e.GPUMs = float64(rng.IntN(100_000)) / 1000
		}
		cost, ok := c.Total(&e)
		if !ok {
			t.Fatal("unpriced")
		}
		k := SumsKey{Tenant: e.Tenant, Provider: e.Provider, Model: e.Model, ServiceTier: NormalizeServiceTier(e.ServiceTier),
			ContextBand: ContextBand(e.InputTokens), At: t0}
		a := groups[k]
		if a == nil {
			a = &acc{}
			groups[k] = a
		}
		a.n++
		a.total = a.total.Add(cost)
		a.s.Requests++
		a.s.InputTokens += uint64(e.InputTokens)
		a.s.CachedInputTokens += uint64(e.CachedInputTokens)
		a.s.CacheWriteTokens += uint64(e.CacheWriteTokens)
		a.s.CacheWrite1hTokens += uint64(e.CacheWrite1hTokens)
		a.s.OutputTokens += uint64(e.OutputTokens)
		a.s.ReasoningTokens += uint64(e.ReasoningTokens)
		a.s.GPUMicros += GPUMicros(e.GPUMs)
	}
	for k, a := range groups {
		got, ok, err := c.CostOfSums(k, a.s)
		if err != nil || !ok {
			t.Fatalf("%+v: %v %v", k, ok, err)
		}
		diff := got.Sub(a.total)
		if diff.Sign() < 0 {
			diff = diff.Neg()
		}
		exact := k.Tenant == "" && k.Provider != "self-hosted"
		if exact && !diff.IsZero() || diff.Cmp(FromPicos((a.n+1)/2)) > 0 {
			t.Errorf("%+v: CostOfSums = %s, per-event sum %s (%d calls)", k, got, a.total, a.n)
		}
	}
	// Unpriced and inexact cases.
	if _, ok, err := c.CostOfSums(SumsKey{Provider: "nope", Model: "x", At: t0}, Sums{Requests: 1}); ok || err != nil {
		t.Errorf("unknown model: ok %v err %v", ok, err)
	}
	odd := mustParse(t, "models:\n  - provider: p\n    model: m\n    prices:\n      - from: 2025-01-01\n        input: \"1\"\n        output: \"1\"\n        tiers:\n          - above: 150000\n            input: \"2\"\n")
	if _, _, err := odd.CostOfSums(SumsKey{Provider: "p", Model: "m", At: t0}, Sums{Requests: 1}); err == nil || !strings.Contains(err.Error(), "above 150000") {
		t.Errorf("tier above 150000: err %v", err)
	}
	if _, _, err := c.CostOfSums(SumsKey{Provider: "openai", Model: "gpt-5", At: t0}, Sums{InputTokens: 1, CachedInputTokens: 2}); err == nil {
		t.Error("inconsistent sums accepted")
	}
}
