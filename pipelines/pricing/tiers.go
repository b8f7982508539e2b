package pricing

import (
	"strings"
)

// Long-context tiers and service tiers.
//
// A price has standard rates, optional long-context tiers (by the call's
// input_tokens) and optional service tiers (by the event's service_tier),
// each of which may refine the long-context tiers. Parse resolves every
// combination once into bands: a service tier's list of (above, rates), so
// that pricing an event is a map lookup (only for a non-standard tier) and a
// scan of at most a few bands.

// field indexes the rate fields of a price level.
type field uint8

const (
	fInput field = iota
	fCachedInput
	fCacheWrite
	fCacheWrite1h
	fOutput
	fReasoning
	fGPUHour
	fRequest
	numFields
)

// rateFields are the YAML names of the rate fields, indexed by field.
var rateFields = [numFields]string{
	fInput: "input", fCachedInput: "cached_input", fCacheWrite: "cache_write",
	fCacheWrite1h: "cache_write_1h", fOutput: "output", fReasoning: "reasoning",
	fGPUHour: "gpu_hour", fRequest: "request",
}

// level is one level of a price as written in the catalog: the rate fields
// it gives (set) and their values.
type level struct {
	v   [numFields]Pico
	set uint16
}

func (l *level) has(f field) bool { return l.set&(1<<f) != 0 }

func (l *level) put(f field, v Pico) {
	l.v[f] = v
	l.set |= 1 << f
}

// resolve merges levels (later ones win field by field) and applies the
// contract's defaults: cached_input and cache_write from input,
// cache_write_1h from cache_write, reasoning from output, the others zero.
func resolve(levels ...*level) Rates {
	var m level
	for _, l := range levels {
		if l == nil {
			continue
		}
		for f := field(0); f < numFields; f++ {
			if l.has(f) {
				m.put(f, l.v[f])
			}
		}
	}
	def := func(f, from field) {
		if !m.has(f) {
			m.put(f, m.v[from])
		}
	}
	def(fCachedInput, fInput)
	def(fCacheWrite, fInput)
	def(fCacheWrite1h, fCacheWrite)
	def(fReasoning, fOutput)
	return Rates{
		Input: m.v[fInput], CachedInput: m.v[fCachedInput], CacheWrite: m.v[fCacheWrite],
		CacheWrite1h: m.v[fCacheWrite1h], Output: m.v[fOutput], Reasoning: m.v[fReasoning],
		GPUHour: m.v[fGPUHour], Request: m.v[fRequest],
	}
}

// Rates are the effective amounts that price one call: USD per 1M tokens,
// except GPUHour (USD per GPU-hour) and Request (USD per call).
type Rates struct {
	Input        Pico // uncached prompt tokens
	CachedInput  Pico // prompt tokens read from cache
	CacheWrite   Pico // prompt tokens written to cache (5-minute lifetime)
	CacheWrite1h Pico // prompt tokens written to cache with a 1-hour lifetime
	Output       Pico // non-reasoning completion tokens
	Reasoning    Pico // reasoning tokens
	GPUHour      Pico // one GPU-hour
	Request      Pico // one call
}

// RateFields are the catalog's names of the rate fields, in catalog order:
// input, cached_input, cache_write, cache_write_1h, output, reasoning,
// gpu_hour, request.
func RateFields() []string { return append([]string(nil), rateFields[:]...) }

// Values returns the rates in RateFields order.
func (r Rates) Values() []Pico {
	return []Pico{r.Input, r.CachedInput, r.CacheWrite, r.CacheWrite1h, r.Output, r.Reasoning, r.GPUHour, r.Request}
}

func (r *Rates) word() rates {
	return rates{
		input: r.Input.lo, cachedInput: r.CachedInput.lo, cacheWrite: r.CacheWrite.lo,
		cacheWrite1h: r.CacheWrite1h.lo, output: r.Output.lo, reasoning: r.Reasoning.lo,
		gpuHour: r.GPUHour.lo, request: r.Request.lo,
	}
}

// scaled returns r with every rate multiplied by m (a Pico fraction),
// rounded half to even to 12 fraction digits; ok is false when a rate
// would exceed MaxPriceUSD.
func (r Rates) scaled(m Pico) (Rates, bool) {
	ok := true
	mul1 := func(x Pico) Pico {
		q := picoOf(roundDiv(mul(x.lo, m.lo), picoScale))
		if q.Cmp(maxPrice) > 0 {
			ok = false
		}
		return q
	}
	return Rates{
		Input: mul1(r.Input), CachedInput: mul1(r.CachedInput), CacheWrite: mul1(r.CacheWrite),
		CacheWrite1h: mul1(r.CacheWrite1h), Output: mul1(r.Output), Reasoning: mul1(r.Reasoning),
		GPUHour: mul1(r.GPUHour), Request: mul1(r.Request),
	}, ok
}

// Tier is a long-context tier of a price: from Above input tokens (a call
// with input_tokens > Above), every token of the call is priced at the
// tier's rates; the fields it does not give keep the price's own.
type Tier struct {
	// Above is the threshold: the tier applies when input_tokens > Above.
	Above int64
	// Line is the line of the tier in the file.
	Line int

	given level
}

// Given reports the rates the tier writes itself, by YAML field name.
func (t *Tier) Given() map[string]Pico { return t.given.named() }

func (l *level) named() map[string]Pico {
	m := make(map[string]Pico)
	for f := field(0); f < numFields; f++ {
		if l.has(f) {
			m[rateFields[f]] = l.v[f]
		}
	}
	return m
}

// ServiceTier is a `service_tiers` item of a price, or of a provider's
// defaults: either a Multiplier of the standard rates or its own rates and
// long-context tiers.
type ServiceTier struct {
	// Name is the tier's name, lower case (batch, flex, priority, …).
	Name string
	// Multiplier multiplies every standard rate when HasMultiplier.
	Multiplier    Pico
	HasMultiplier bool
	// Tiers refine the price's long-context tiers of the same Above.
	Tiers []Tier
	// Line is the line of the service tier in the file.
	Line int

	given level
}

// Given reports the rates the service tier writes itself, by YAML field name.
func (s *ServiceTier) Given() map[string]Pico { return s.given.named() }

// band is a resolved long-context band: the rates of calls with
// input_tokens > above (the first band of a list has above 0 and applies
// to every call below the next).
type band struct {
	above int64
	r     rates
	rates Rates
}

// pick returns the band of a call with n input tokens.
func pick(bands []band, n int64) *band {
	for i := len(bands) - 1; i > 0; i-- {
		if n > bands[i].above {
			return &bands[i]
		}
	}
	return &bands[0]
}

// NormalizeServiceTier returns the canonical name of an event's service
// tier: lower case, and "" for the standard tier (empty, "standard",
// "default", "auto" or "on_demand"). It does not allocate for names that
// are already lower case.
func NormalizeServiceTier(s string) string {
	if s == "" {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			s = strings.ToLower(s)
			break
		}
	}
	if isStandardTier(s) {
		return ""
	}
	return s
}

func isStandardTier(s string) bool {
	switch s {
	case "", "standard", "default", "auto", "on_demand":
		return true
	}
	return false
}

// ContextThresholds are the long-context thresholds (input tokens) the
// rollups keep calls apart by, ascending, so what-if pricing from the
// rollups is exact for any catalog whose tiers use only these. They are the
// thresholds of the providers' long-context prices (Anthropic and Google
// 200k, OpenAI 272k, xAI 128k, …) except the 32k tier of Alibaba's qwen
// and ByteDance's doubao models (16 entries): splitting every series at 32k input tokens, a common size for
// retrieval-augmented calls, would multiply rollup rows for all models to
// serve those few (TestDefaultCatalogThresholds lists the exceptions).
var ContextThresholds = []int64{128_000, 200_000, 256_000, 272_000, 512_000, 1_000_000}

// ContextBand returns the largest of ContextThresholds below inputTokens
// (0 when none is): the rollup dimension `context_band` of a call.
func ContextBand(inputTokens int64) uint32 {
	for i := len(ContextThresholds) - 1; i >= 0; i-- {
		if inputTokens > ContextThresholds[i] {
			return uint32(ContextThresholds[i])
		}
	}
	return 0
}

// IsContextThreshold reports whether n is one of ContextThresholds.
func IsContextThreshold(n int64) bool {
	for _, t := range ContextThresholds {
		if t == n {
			return true
		}
	}
	return false
}
