package pricing

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/costpipe/costpipe/schemas"
)

// unsafeString aliases b, as the JSON decoder does.
func unsafeString(b []byte) string { return unsafe.String(&b[0], len(b)) }

// testCatalog exercises every field. Expected costs below are computed by
// hand from these prices.
const testCatalog = `
models:
  # A regex listed before the exact entry: the exact entry must still win.
  - provider: acme-ai
    match: '^m'
    prices:
      - from: 2020-01-01
        input: "100"
        output: "100"
  - provider: acme-ai
    model: m1
    prices:
      - from: 2025-06-01T12:00:00Z   # listed first on purpose: order in the file does not matter
        input: "2.00"
        output: "8.00"
      - from: 2025-01-01
        input: "2.50"
        cached_input: "1.25"
        cache_write: "3.125"
        output: "10.00"
        reasoning: "12.00"
  - provider: acme-ai
    model: gpu-mix
    prices:
      - from: 2025-01-01
        input: "2.50"
        cached_input: "1.25"
        cache_write: "3.125"
        output: "10.00"
        reasoning: "12.00"
        gpu_hour: "2.50"
        request: "0.001"
  - provider: acme-ai
    model: tiny
    prices:
      - from: 2025-01-01
        input: "0.000001"     # 10^-12 USD per token
        output: "0.0000015"   # 1.5·10^-12 USD per token
  - provider: acme-ai
    model: huge
    prices:
      - from: 2025-01-01
        input: "1000000"
        output: "1000000"
        gpu_hour: "1000000"
        request: "1000000"
  - provider: first
    match: '^x-'
    prices:
      - from: 2025-01-01
        input: "1"
        output: "1"
  - provider: first
    match: '^x-large$'
    prices:
      - from: 2025-01-01
        input: "2"
        output: "2"
  - provider: self-hosted
    match: '.*'
    prices:
      - from: 2025-01-01
        input: "0"
        output: "0"
        gpu_hour: "2.50"
tenants:
  acme: { discount: "0.10" }
  quarter: { discount: "0.25" }
  half: { discount: "0.5" }
  big: { discount: "0.123456789012" }
  free: { discount: "1" }
`

func mustParse(t testing.TB, yaml string) *Catalog {
	t.Helper()
	c, err := Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

var (
	t0       = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	changeAt = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
)

func TestCost(t *testing.T) {
	c := mustParse(t, testCatalog)
	type ev = schemas.Event
	for _, tc := range []struct {
		name  string
		e     ev
		want  string // total, "" = unpriced
		entry string // matched entry name
	}{
		// 1234 × 2.50 / 10^6 = 0.003085
		{"uncached input only", ev{Provider: "acme-ai", Model: "m1", Timestamp: t0, InputTokens: 1234}, "0.003085000000", "m1"},
		// 600 × 2.50 + 400 × 1.25 = 2000 µUSD
		{"cached input", ev{Provider: "acme-ai", Model: "m1", Timestamp: t0, InputTokens: 1000, CachedInputTokens: 400}, "0.002000000000", "m1"},
		// 500 × 2.50 + 300 × 1.25 + 200 × 3.125 = 1250 + 375 + 625 = 2250 µUSD
		{"cache writes", ev{Provider: "acme-ai", Model: "m1", Timestamp: t0, InputTokens: 1000, CachedInputTokens: 300, CacheWriteTokens: 200}, "0.002250000000", "m1"},
		// 300 × 10 + 200 × 12 = 5400 µUSD
		{"reasoning", ev{Provider: "acme-ai", Model: "m1", Timestamp: t0, OutputTokens: 500, ReasoningTokens: 200}, "0.005400000000", "m1"},
		// new price: cached and reasoning default to input and output: 1000 × 2 + 100 × 8 = 2800 µUSD
		{"defaults", ev{Provider: "acme-ai", Model: "m1", Timestamp: changeAt, InputTokens: 1000, CachedInputTokens: 400, CacheWriteTokens: 100, OutputTokens: 100, ReasoningTokens: 50}, "0.002800000000", "m1"},
		// 1500 ms = 1 500 000 µs: 1.5e6 / 3.6e9 × 2.50 = 0.00104166…6|67
		{"gpu_ms", ev{Provider: "self-hosted", Model: "llama", Timestamp: t0, GPUMs: 1500}, "0.001041666667", ".*"},
		// 0.0025 ms is 2.5 µs, a tie, to even: 2 µs → 2 / 3.6e9 × 2.5 = 1.3888…e-9
		{"gpu_ms tie to even", ev{Provider: "self-hosted", Model: "llama", Timestamp: t0, GPUMs: 0.0025}, "0.000000001389", ".*"},
		// 0.0035 ms is 3.5 µs, to even: 4 µs → 2.7777…e-9
		{"gpu_ms tie up", ev{Provider: "self-hosted", Model: "llama", Timestamp: t0, GPUMs: 0.0035}, "0.000000002778", ".*"},
		{"per-request", ev{Provider: "acme-ai", Model: "gpu-mix", Timestamp: t0}, "0.001000000000", "gpu-mix"},
		// 0.003085 × 0.9 = 0.0027765
		{"tenant discount", ev{Provider: "acme-ai", Model: "m1", Timestamp: t0, Tenant: "acme", InputTokens: 1234}, "0.002776500000", "m1"},
		// 1 token = 1 pico; × 0.5 = 0.5 pico: half to even → 0
		{"discount rounds half to even (down)", ev{Provider: "acme-ai", Model: "tiny", Timestamp: t0, Tenant: "half", InputTokens: 1}, "0.000000000000", "tiny"},
		// 3 picos × 0.5 = 1.5 → 2
		{"discount rounds half to even (up)", ev{Provider: "acme-ai", Model: "tiny", Timestamp: t0, Tenant: "half", InputTokens: 3}, "0.000000000002", "tiny"},
		// 5 picos × 0.5 = 2.5 → 2 (half-up would give 3)
		{"discount rounds half to even (down again)", ev{Provider: "acme-ai", Model: "tiny", Timestamp: t0, Tenant: "half", InputTokens: 5}, "0.000000000002", "tiny"},
		// no discount: 1 output token = 1.5 picos → 2; 3 tokens = 4.5 → 4
		{"list rounds half to even (up)", ev{Provider: "acme-ai", Model: "tiny", Timestamp: t0, OutputTokens: 1}, "0.000000000002", "tiny"},
		{"list rounds half to even (down)", ev{Provider: "acme-ai", Model: "tiny", Timestamp: t0, OutputTokens: 3}, "0.000000000004", "tiny"},
		{"full discount", ev{Provider: "acme-ai", Model: "m1", Timestamp: t0, Tenant: "free", InputTokens: 1234}, "0.000000000000", "m1"},
		{"unknown tenant pays list", ev{Provider: "acme-ai", Model: "m1", Timestamp: t0, Tenant: "nobody", InputTokens: 1234}, "0.003085000000", "m1"},
		// Largest event: 10^9 × 10^6 USD/1M twice = 2·10^9, 24 h × 10^6 USD = 2.4·10^7, request 10^6:
		// 2 025 000 000 × (1 − 0.123456789012) = 1 775 000 002.2507
		{"largest event with discount", ev{Provider: "acme-ai", Model: "huge", Timestamp: t0, Tenant: "big", InputTokens: 1e9, OutputTokens: 1e9, ReasoningTokens: 1e9, CachedInputTokens: 5e8, CacheWriteTokens: 5e8, GPUMs: schemas.MaxDurationMs}, "1775000002.250700000000", "huge"},
		{"largest event without discount", ev{Provider: "acme-ai", Model: "huge", Timestamp: t0, InputTokens: 1e9, OutputTokens: 1e9, GPUMs: schemas.MaxDurationMs}, "2025000000.000000000000", "huge"},

		// price change at 2025-06-01T12:00:00Z: 1000 input tokens at 2.50, then 2.00
		{"just before a price change", ev{Provider: "acme-ai", Model: "m1", Timestamp: changeAt.Add(-time.Nanosecond), InputTokens: 1000}, "0.002500000000", "m1"},
		{"exactly at a price change", ev{Provider: "acme-ai", Model: "m1", Timestamp: changeAt, InputTokens: 1000}, "0.002000000000", "m1"},
		{"after a price change", ev{Provider: "acme-ai", Model: "m1", Timestamp: changeAt.Add(time.Hour), InputTokens: 1000}, "0.002000000000", "m1"},
		{"time zone does not matter", ev{Provider: "acme-ai", Model: "m1", Timestamp: changeAt.In(time.FixedZone("X", 5*3600)), InputTokens: 1000}, "0.002000000000", "m1"},

		// matching
		{"exact beats an earlier regex", ev{Provider: "acme-ai", Model: "m1", Timestamp: t0, InputTokens: 1000}, "0.002500000000", "m1"},
		{"regex when no exact", ev{Provider: "acme-ai", Model: "m2", Timestamp: t0, InputTokens: 1000}, "0.100000000000", "^m"},
		{"first regex wins", ev{Provider: "first", Model: "x-large", Timestamp: t0, InputTokens: 1000}, "0.001000000000", "^x-"},
		{"unpriced model", ev{Provider: "acme-ai", Model: "zzz", Timestamp: t0, InputTokens: 1000}, "", ""},
		{"unknown provider", ev{Provider: "nope", Model: "m1", Timestamp: t0, InputTokens: 1000}, "", ""},
		{"provider is case-sensitive", ev{Provider: "Acme-AI", Model: "m1", Timestamp: t0, InputTokens: 1000}, "", ""},
		{"model is case-sensitive", ev{Provider: "first", Model: "X-large", Timestamp: t0, InputTokens: 1000}, "", ""},
		{"before the first from", ev{Provider: "acme-ai", Model: "m1", Timestamp: time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC), InputTokens: 1000}, "", "m1"},
		{"zero timestamp", ev{Provider: "acme-ai", Model: "m1", InputTokens: 1000}, "", "m1"},
		{"status does not matter", ev{Provider: "acme-ai", Model: "m1", Timestamp: t0, Status: schemas.StatusError, InputTokens: 1234}, "0.003085000000", "m1"},

		// outside the contract: not priced rather than priced wrong
		{"negative tokens", ev{Provider: "acme-ai", Model: "m1", Timestamp: t0, InputTokens: -1}, "", ""},
		{"too many tokens", ev{Provider: "acme-ai", Model: "m1", Timestamp: t0, OutputTokens: 1e9 + 1}, "", ""},
		{"cached exceeds input", ev{Provider: "acme-ai", Model: "m1", Timestamp: t0, InputTokens: 10, CachedInputTokens: 6, CacheWriteTokens: 5}, "", ""},
		{"reasoning exceeds output", ev{Provider: "acme-ai", Model: "m1", Timestamp: t0, OutputTokens: 10, ReasoningTokens: 11}, "", ""},
		{"gpu_ms beyond 24 h", ev{Provider: "self-hosted", Model: "x", Timestamp: t0, GPUMs: schemas.MaxDurationMs + 1}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			total, ok := c.Total(&tc.e)
			q := c.Cost(&tc.e)
			if tc.want == "" {
				if ok || q.Priced || !total.IsZero() || !q.Total.IsZero() {
					t.Fatalf("priced at %s / %s, want unpriced", total, q.Total)
				}
				if q.Reason == "" {
					t.Error("unpriced quote without a reason")
				}
			} else {
				if !ok || !q.Priced {
					t.Fatalf("unpriced (%s), want %s", q.Reason, tc.want)
				}
				if got := total.String(); got != tc.want {
					t.Errorf("Total = %s, want %s", got, tc.want)
				}
				if q.Total != total {
					t.Errorf("Cost().Total = %s, Total() = %s", q.Total, total)
				}
				if q.List.Sub(q.Discount) != q.Total {
					t.Errorf("List %s − Discount %s != Total %s", q.List, q.Discount, q.Total)
				}
			}
			got := ""
			if q.Entry != nil {
				got = q.Entry.Name()
			}
			if got != tc.entry {
				t.Errorf("matched entry %q, want %q", got, tc.entry)
			}
		})
	}
}

func TestCostBreakdown(t *testing.T) {
	c := mustParse(t, testCatalog)
	e := schemas.Event{
		Provider: "acme-ai", Model: "gpu-mix", Tenant: "quarter", Timestamp: t0,
		InputTokens: 1000, CachedInputTokens: 300, CacheWriteTokens: 200,
		OutputTokens: 500, ReasoningTokens: 200, GPUMs: 1,
	}
	q := c.Cost(&e)
	// By hand: 500×2.50 = 1250, 300×1.25 = 375, 200×3.125 = 625, 300×10 = 3000,
	// 200×12 = 2400 (µUSD); GPU 1000 µs / 3.6e9 × 2.50 = 6.9444…e-7; request 0.001.
	// List = 0.00865069444…, × 0.75 = 0.00648802083…
	for name, tc := range map[string]struct {
		got  Pico
		want string
	}{
		"input":         {q.Input, "0.001250000000"},
		"cached_input":  {q.CachedInput, "0.000375000000"},
		"cache_write":   {q.CacheWrite, "0.000625000000"},
		"output":        {q.Output, "0.003000000000"},
		"reasoning":     {q.Reasoning, "0.002400000000"},
		"gpu":           {q.GPU, "0.000000694444"},
		"request":       {q.Request, "0.001000000000"},
		"list":          {q.List, "0.008650694444"},
		"discount_rate": {q.DiscountRate, "0.250000000000"},
		"discount":      {q.Discount, "0.002162673611"},
		"total":         {q.Total, "0.006488020833"},
	} {
		if got := tc.got.String(); got != tc.want {
			t.Errorf("%s = %s, want %s", name, got, tc.want)
		}
	}
	if q.GPUMicros != 1000 || !q.From.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) || q.Entry.Model != "gpu-mix" {
		t.Errorf("quote metadata = %d µs, from %s, entry %q", q.GPUMicros, q.From, q.Entry.Model)
	}
}

func TestGPUMicros(t *testing.T) {
	for _, tc := range []struct {
		ms   float64
		want uint64
	}{
		{0, 0},
		{1, 1000},
		{0.0004, 0},
		{0.0005, 0}, // 0.5 µs: tie, to even
		{0.0015, 2}, // 1.5 µs: tie, to even
		{0.0025, 2}, // 2.5 µs: tie, to even, though the float64 is slightly above 0.0025
		{0.0035, 4}, // 3.5 µs
		{1.0005, 1000},
		{1.0015, 1002},
		{0.00050001, 1},
		{123.4564, 123456},
		{123.4566, 123457},
		{123.4565, 123456},
		{123.4575, 123458},
		{1e-300, 0},
		{schemas.MaxDurationMs, 86_400_000_000},
		{86_399_999.9995, 86_400_000_000},
		{86_399_999.9985, 86_399_999_998},
	} {
		if got := gpuMicros(tc.ms); got != tc.want {
			t.Errorf("gpuMicros(%v) = %d, want %d", tc.ms, got, tc.want)
		}
	}
}

func TestTotalAllocs(t *testing.T) {
	c := mustParse(t, testCatalog)
	for _, e := range []schemas.Event{
		{Provider: "acme-ai", Model: "m1", Timestamp: t0, InputTokens: 1234, OutputTokens: 50},
		{Provider: "acme-ai", Model: "m2", Timestamp: t0, InputTokens: 1234},                 // regex, cached after the first call
		{Provider: "acme-ai", Model: "m1", Timestamp: t0, Tenant: "acme", InputTokens: 1234}, // discount path
		{Provider: "self-hosted", Model: "llama", Timestamp: t0, GPUMs: 0.0025},              // decimal tie path
		{Provider: "nope", Model: "m1", Timestamp: t0},                                       // unpriced
	} {
		c.Total(&e)
		if n := testing.AllocsPerRun(200, func() { c.Total(&e) }); n != 0 {
			t.Errorf("Total(%s/%s) allocates %v times", e.Provider, e.Model, n)
		}
	}
}

func TestMatchCacheBounded(t *testing.T) {
	c := mustParse(t, testCatalog)
	n := MatchCacheSize + 500
	for i := range n {
		e := schemas.Event{Provider: "first", Model: fmt.Sprintf("x-%d", i), Timestamp: t0, InputTokens: 1000}
		if got, ok := c.Total(&e); !ok || got.String() != "0.001000000000" {
			t.Fatalf("model %s = %s, %v", e.Model, got, ok)
		}
		e.Model = fmt.Sprintf("y-%d", i) // no match: cached as such until full
		if _, ok := c.Total(&e); ok {
			t.Fatalf("model %s priced", e.Model)
		}
	}
	c.cache.mu.Lock()
	size := len(c.cache.dirty)
	c.cache.mu.Unlock()
	if size != MatchCacheSize {
		t.Errorf("cache holds %d keys, want the bound %d", size, MatchCacheSize)
	}
	// Cached keys are served from the lock-free map once promoted.
	e := schemas.Event{Provider: "first", Model: "x-1", Timestamp: t0, InputTokens: 1000}
	for range 2 * MatchCacheSize {
		c.Total(&e)
	}
	if rp := c.cache.read.Load(); rp == nil || (*rp)[modelKey{"first", "x-1"}] == nil {
		t.Error("x-1 was not promoted to the read map")
	}
}

// TestMatchCacheKeysDoNotAlias checks that the cache copies the key strings:
// decoders hand out strings that alias reused buffers.
func TestMatchCacheKeysDoNotAlias(t *testing.T) {
	c := mustParse(t, testCatalog)
	buf := []byte("m2")
	e := schemas.Event{Provider: "acme-ai", Model: unsafeString(buf), Timestamp: t0, InputTokens: 1000}
	if _, ok := c.Total(&e); !ok {
		t.Fatal("m2 not priced")
	}
	copy(buf, "zz") // the "decoder" reuses its buffer
	e2 := schemas.Event{Provider: "acme-ai", Model: "zz", Timestamp: t0, InputTokens: 1000}
	if got, ok := c.Total(&e2); ok {
		t.Errorf("zz priced at %s: the cache kept an aliased key", got)
	}
}

func TestConcurrentTotal(t *testing.T) {
	c := mustParse(t, testCatalog)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				e := schemas.Event{Provider: "first", Model: fmt.Sprintf("x-%d", (i*7+g)%300), Timestamp: t0, InputTokens: 1000}
				if got, ok := c.Total(&e); !ok || got.String() != "0.001000000000" {
					t.Errorf("model %s = %s, %v", e.Model, got, ok)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestUnpricedReasons(t *testing.T) {
	c := mustParse(t, testCatalog)
	for _, tc := range []struct {
		e    schemas.Event
		want string
	}{
		{schemas.Event{Provider: "acme-ai", Model: "zzz", Timestamp: t0}, `no price for provider "acme-ai" model "zzz"`},
		{schemas.Event{Provider: "acme-ai", Model: "m1", Timestamp: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}, `before the first price of model "m1" (from 2025-01-01T00:00:00Z)`},
		{schemas.Event{Provider: "acme-ai", Model: "m1", Timestamp: t0, OutputTokens: 1, ReasoningTokens: 2}, "reasoning_tokens = 2 exceeds output_tokens = 1"},
		{schemas.Event{Provider: "acme-ai", Model: "m1", Timestamp: t0, InputTokens: -3}, "input_tokens = -3 not in [0, 1000000000]"},
	} {
		if q := c.Cost(&tc.e); !strings.Contains(q.Reason, tc.want) {
			t.Errorf("reason %q, want it to contain %q", q.Reason, tc.want)
		}
	}
}

func TestEntryAccessors(t *testing.T) {
	c := mustParse(t, testCatalog)
	if c.Name() != "test.yaml" || len(c.Entries()) != 8 {
		t.Fatalf("catalog %q has %d entries", c.Name(), len(c.Entries()))
	}
	e := c.Lookup("acme-ai", "m1")
	if e == nil || e.Index != 2 || e.Line != 10 || len(e.Prices) != 2 {
		t.Fatalf("Lookup(m1) = %+v", e)
	}
	if !e.Prices[0].From.Before(e.Prices[1].From) {
		t.Error("prices are not sorted by from")
	}
	p, ok := e.PriceAt(changeAt)
	if !ok || p.Input.String() != "2.000000000000" || p.CachedInput != p.Input || p.Reasoning != p.Output {
		t.Errorf("PriceAt(change) = %+v, %v", p, ok)
	}
	if _, ok := e.PriceAt(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)); ok {
		t.Error("PriceAt before the first from succeeded")
	}
	if c.Lookup("first", "x-large").Match != "^x-" {
		t.Error("Lookup(x-large) is not the first regex")
	}
	ts := c.Tenants()
	if len(ts) != 5 || ts[0].Name != "acme" || ts[0].Discount.String() != "0.100000000000" {
		t.Errorf("Tenants() = %+v", ts)
	}
}

func TestZeroCatalogPricesNothing(t *testing.T) {
	var c Catalog
	e := schemas.Event{Provider: "openai", Model: "gpt-4o", Timestamp: t0, InputTokens: 1}
	if _, ok := c.Total(&e); ok || c.Cost(&e).Priced {
		t.Error("zero Catalog priced an event")
	}
}
