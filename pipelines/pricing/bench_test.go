package pricing

import (
	"testing"
	"time"

	"github.com/costpipe/costpipe/schemas"
)

var (
	sinkPico Pico
	sinkOK   bool
)

func benchTotal(b *testing.B, c *Catalog, e schemas.Event) {
	b.Helper()
	if _, ok := c.Total(&e); !ok { // also warms the regex cache
		b.Fatalf("%s/%s is unpriced", e.Provider, e.Model)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var sum Pico
	for b.Loop() {
		p, ok := c.Total(&e)
		sum = sum.Add(p)
		sinkOK = ok
	}
	sinkPico = sum
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

var benchTime = time.Date(2025, 10, 1, 12, 0, 0, 0, time.UTC)

// BenchmarkTotal prices a typical chat call on the default catalog (64
// entries) through an exact model match.
func BenchmarkTotal(b *testing.B) {
	benchTotal(b, Default(), schemas.Event{
		Tenant: "tenant-0042", Provider: "openai", Model: "gpt-4o", Timestamp: benchTime,
		InputTokens: 1830, CachedInputTokens: 1024, OutputTokens: 412,
	})
}

// BenchmarkTotalRegex prices a dated snapshot matched by a regex (cached).
func BenchmarkTotalRegex(b *testing.B) {
	benchTotal(b, Default(), schemas.Event{
		Tenant: "tenant-0042", Provider: "anthropic", Model: "claude-sonnet-4-5-20250929", Timestamp: benchTime,
		InputTokens: 5230, CachedInputTokens: 4096, CacheWriteTokens: 512, OutputTokens: 733, ReasoningTokens: 200,
	})
}

// BenchmarkTotalDiscountGPU takes the general path: a tenant discount and
// GPU time (192-bit product, two divisions).
func BenchmarkTotalDiscountGPU(b *testing.B) {
	c := mustParse(b, testCatalog)
	benchTotal(b, c, schemas.Event{
		Tenant: "acme", Provider: "acme-ai", Model: "gpu-mix", Timestamp: benchTime,
		InputTokens: 1830, CachedInputTokens: 1024, OutputTokens: 412, GPUMs: 734.125,
	})
}

// BenchmarkTotalUnpriced is the cost of an event whose provider has no entry.
func BenchmarkTotalUnpriced(b *testing.B) {
	c := Default()
	e := schemas.Event{Provider: "unknown", Model: "x", Timestamp: benchTime}
	b.ReportAllocs()
	for b.Loop() {
		_, sinkOK = c.Total(&e)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkPicoAdd(b *testing.B) {
	x := MustParsePico("0.003085000000")
	var sum Pico
	b.ReportAllocs()
	for b.Loop() {
		sum = sum.Add(x)
	}
	sinkPico = sum
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkPicoString(b *testing.B) {
	x := MustParsePico("123456789.003085000001")
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf, _ = x.AppendText(buf[:0])
	}
}
