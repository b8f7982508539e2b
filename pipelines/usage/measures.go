// Package usage is the usage pipeline: it prices every valid event, keeps
// per-minute tumbling windows keyed by (tenant, application, provider, model,
// error_type) for each Kafka partition it owns, and lands them as rollups at
// minute, hour and day granularity in ClickHouse with an exactly-once effect.
//
// Exactly-once: every landed row carries its Kafka partition and the end offset
// of the flush that wrote it; Pipeline keeps HWM(table, month, partition) and
// adds a record to a table only when its offset is above that mark (see
// docs/design.md). A flush is retried until every one of its inserts has
// landed, and an insert that may have landed is checked against ClickHouse
// before it is retried.
//
// A Pipeline is driven by one goroutine (the consumer's poll loop); it is not
// safe for concurrent use.
package usage

import (
	"math"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/pipelines/sketch"
	"github.com/costpipe/costpipe/schemas"
)

// Dims are the rollup dimensions of one window. ErrorType is "" for
// successful calls.
type Dims struct {
	Tenant      string
	Application string
	Provider    string
	Model       string
	ErrorType   string
	// ServiceTier is the call's service tier, normalized ("" standard).
	ServiceTier string
	// ContextBand is pricing.ContextBand of the call's input tokens.
	ContextBand uint32
}

// Dist accumulates one duration (latency or TTFT) of a window: the count
// and the sum for the mean, the histogram for everything else (its lowest
// and highest buckets are the minimum and maximum, within sketch.Alpha).
type Dist struct {
	Count     uint64
	SumMicros uint64
	Hist      sketch.Histogram
}

func (d *Dist) add(ms float64) {
	d.Count++
	d.SumMicros += uint64(math.Round(ms * 1000))
	d.Hist.Add(ms)
}

func (d *Dist) merge(o *Dist) {
	if o.Count == 0 {
		return
	}
	d.Count += o.Count
	d.SumMicros += o.SumMicros
	d.Hist.Merge(&o.Hist)
}

func (d *Dist) reset() {
	h := d.Hist
	h.Reset()
	*d = Dist{Hist: h}
}

// Measures are the partial sums of one window.
type Measures struct {
	Requests           uint64
	Errors             uint64
	InputTokens        uint64
	CachedInputTokens  uint64
	CacheWriteTokens   uint64
	CacheWrite1hTokens uint64
	OutputTokens       uint64
	ReasoningTokens    uint64
	GPUMicros          uint64
	Unpriced           uint64
	Cost               pricing.Pico
	Latency            Dist
	TTFT               Dist
}

// Add accounts one event with its cost (priced false: unpriced, cost 0).
func (m *Measures) Add(e *schemas.Event, cost pricing.Pico, priced bool) {
	m.Requests++
	if e.Status == schemas.StatusError {
		m.Errors++
	}
	m.InputTokens += uint64(e.InputTokens)
	m.CachedInputTokens += uint64(e.CachedInputTokens)
	m.CacheWriteTokens += uint64(e.CacheWriteTokens)
	m.CacheWrite1hTokens += uint64(e.CacheWrite1hTokens)
	m.OutputTokens += uint64(e.OutputTokens)
	m.ReasoningTokens += uint64(e.ReasoningTokens)
	if e.GPUMs != 0 {
		// The microseconds pricing charged for, so that re-pricing the
		// sums (what-if pricing) is exact.
		m.GPUMicros += pricing.GPUMicros(e.GPUMs)
	}
	if priced {
		m.Cost = m.Cost.Add(cost)
	} else {
		m.Unpriced++
	}
	if e.HasLatency {
		m.Latency.add(e.LatencyMs)
	}
	if e.HasTTFT {
		m.TTFT.add(e.TTFTMs)
	}
}

// Merge adds o's sums into m.
func (m *Measures) Merge(o *Measures) {
	m.Requests += o.Requests
	m.Errors += o.Errors
	m.InputTokens += o.InputTokens
	m.CachedInputTokens += o.CachedInputTokens
	m.CacheWriteTokens += o.CacheWriteTokens
	m.CacheWrite1hTokens += o.CacheWrite1hTokens
	m.OutputTokens += o.OutputTokens
	m.ReasoningTokens += o.ReasoningTokens
	m.GPUMicros += o.GPUMicros
	m.Unpriced += o.Unpriced
	m.Cost = m.Cost.Add(o.Cost)
	m.Latency.merge(&o.Latency)
	m.TTFT.merge(&o.TTFT)
}

// Reset clears m, keeping the histograms' memory for reuse.
func (m *Measures) Reset() {
	lat, ttft := m.Latency, m.TTFT
	lat.reset()
	ttft.reset()
	*m = Measures{Latency: lat, TTFT: ttft}
}
