// Package pricing prices inference calls: it loads the price catalog (the YAML
// contract of docs/contracts.md §2), finds the price that applies to an event,
// and computes the event's cost exactly as a Pico, a fixed-point amount of
// 10^-12 USD that fits ClickHouse Decimal(38,12).
//
// # Cost of one event
//
// With prices in USD per 1M tokens (gpu_hour per GPU-hour, request per call):
//
//	list  = (input − cached_input − cache_write)·input_price
//	      + cached_input·cached_input_price
//	      + (cache_write − cache_write_1h)·cache_write_price
//	      + cache_write_1h·cache_write_1h_price
//	      + (output − reasoning)·output_price + reasoning·reasoning_price   (÷ 10^6)
//	      + gpu_µs / 3 600 000 000 · gpu_hour + request
//	total = list · (1 − tenant discount)
//
// Arithmetic is exact integer arithmetic, never floating point: prices have at
// most 12 fraction digits, so every product above is an exact integer in units
// of 10^-18 USD / 3600, and the tenant discount (12 fraction digits) is an
// exact integer factor. The exact total is then rounded **once**, half to
// even, to 10^-12 USD. That is the only rounding: per-event costs summed by
// the aggregator are exact sums of these rounded totals.
//
// The event's gpu_ms is a float64. It is converted to whole microseconds by
// rounding its shortest decimal representation (the text strconv.FormatFloat
// prints with precision −1, which is the JSON number the producer sent when
// it has at most 15 significant digits) half to even. So gpu_ms 0.0025 is 2 µs
// and 0.0035 is 4 µs, on every platform.
//
// Prices are bounded (each at most MaxPriceUSD) and events are bounded by the
// event contract (token counts ≤ 10^9, gpu_ms ≤ 24 h), so the arithmetic
// cannot overflow. An event outside those bounds is not priced (see
// Catalog.Cost); decoded events are validated and never are.
//
// # Matching
//
// An entry applies to an event when the provider is equal (case-sensitive,
// byte for byte) and the model is either equal to the entry's `model` or
// matched by its `match` RE2 regular expression (unanchored unless the
// expression says ^…$; write (?i) for case-insensitive). An exact model wins
// over every regex; among regexes the first in file order wins. The price
// that applies is the entry's newest price whose `from` ≤ the event
// timestamp. No entry, or an event before the entry's first `from`, means the
// event is unpriced: cost 0, reported separately, never silently free.
//
// The rates are those of the call's long-context tier (the price's `tiers`
// item with the largest `above` below input_tokens) and service tier (the
// entry's `service_tiers` item named by the event's service_tier, else the
// provider's, else the standard rates); see tiers.go and docs/contracts.md §2
// for how the levels combine.
//
// The status of the call does not matter: a failed call is billed for the
// tokens, GPU time and request it reports.
//
// # Concurrency
//
// A Catalog is immutable after Parse and safe for concurrent use. The only
// internal state is a bounded cache of regex match results (MatchCacheSize
// entries per catalog), safe for concurrent readers.
package pricing

import (
	"fmt"
	"math"
	"math/bits"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/costpipe/costpipe/schemas"
)

// MaxPriceUSD bounds every price of a catalog: USD 1 000 000 per 1M tokens,
// per GPU-hour or per request. The bound keeps cost arithmetic within 192
// bits and every per-event cost far inside Pico's range.
const MaxPriceUSD = 1_000_000

// maxPrice is MaxPriceUSD as a Pico.
var maxPrice = Pico{lo: MaxPriceUSD * picoScale}

// MatchCacheSize bounds the cache of regex match results (one entry per
// distinct provider and model matched against regexes). Beyond it, further
// models are matched by evaluating the regexes on every event.
const MatchCacheSize = 10_000

// Catalog is a parsed price catalog. Build one with Parse, Load or Default;
// the zero Catalog prices nothing. It is immutable and safe for concurrent
// use.
type Catalog struct {
	name    string
	entries []*Entry // file order

	exact   map[modelKey]*Entry
	regexes map[string][]*Entry // provider → regex entries in file order
	cache   matchCache

	tenants    map[string]uint64 // tenant → 10^12·(1 − discount)
	tenantList []Tenant

	source, updated string
	providers       map[string][]ServiceTier // provider → default service tiers
	providerLines   map[string]int           // provider → its line in providers
}

type modelKey struct{ provider, model string }

// Entry is one `models` item of a catalog: a provider, either an exact model
// name or a regex, and the entry's price history.
type Entry struct {
	// Provider is compared byte for byte with the event's provider.
	Provider string
	// Model is the exact model name; empty when Match is set.
	Model string
	// Match is the RE2 regex source; empty when Model is set.
	Match string
	// Index is the 1-based position of the entry in the file.
	Index int
	// Line is the line of the entry in the file.
	Line int
	// Source is the entry's provenance as the catalog states it (optional).
	Source string
	// Prices is the price history, oldest first; each applies from its From
	// until the next one's.
	Prices []Price

	re *regexp.Regexp
}

// Name returns the model name, or the regex source for a regex entry.
func (e *Entry) Name() string {
	if e.Match != "" {
		return e.Match
	}
	return e.Model
}

// PriceAt returns the price in effect at t: the newest whose From ≤ t. It
// returns false when t is before the first From.
func (e *Entry) PriceAt(t time.Time) (Price, bool) {
	p := e.priceAt(t)
	if p == nil {
		return Price{}, false
	}
	return *p, true
}

func (e *Entry) priceAt(t time.Time) *Price {
	ps := e.Prices
	lo, hi := 0, len(ps)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.Before(ps[m].From) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo == 0 {
		return nil
	}
	return &ps[lo-1]
}

// Price is one item of an entry's `prices` list. Amounts are USD per 1M
// tokens except GPUHour (USD per GPU-hour) and Request (USD per call); they
// are the standard rates below every long-context tier, defaults applied.
type Price struct {
	// From is when the price takes effect (UTC).
	From time.Time
	// Input is the price of uncached prompt tokens.
	Input Pico
	// CachedInput is the price of prompt tokens read from cache; defaults to Input.
	CachedInput Pico
	// CacheWrite is the price of prompt tokens written to cache; defaults to Input.
	CacheWrite Pico
	// CacheWrite1h is the price of prompt tokens written to cache with a
	// 1-hour lifetime; defaults to CacheWrite.
	CacheWrite1h Pico
	// Output is the price of non-reasoning completion tokens.
	Output Pico
	// Reasoning is the price of reasoning tokens; defaults to Output.
	Reasoning Pico
	// GPUHour is the price of one GPU-hour, applied to gpu_ms; defaults to 0.
	GPUHour Pico
	// Request is the price of one call; defaults to 0.
	Request Pico
	// Tiers are the long-context tiers, by Above ascending.
	Tiers []Tier
	// ServiceTiers are the price's own service tiers, by name.
	ServiceTiers []ServiceTier
	// Line is the line of the price in the file.
	Line int

	given level
	std   []band            // standard service tier: base, then one band per tier
	svc   map[string][]band // other service tiers (the price's and the provider's)
}

// RatesFor returns the rates that price a call with inputTokens input tokens
// on serviceTier (any spelling; see NormalizeServiceTier), the service tier
// they are from ("" for standard, also when the price has none for
// serviceTier) and the long-context tier's Above (0: below every tier).
func (p *Price) RatesFor(serviceTier string, inputTokens int64) (r Rates, tier string, above int64) {
	b, st := p.bands(NormalizeServiceTier(serviceTier))
	x := pick(b, inputTokens)
	return x.rates, st, x.above
}

// ServiceTierNames returns the names of every service tier the price has
// rates for (its own and its provider's defaults), sorted.
func (p *Price) ServiceTierNames() []string {
	names := make([]string, 0, len(p.svc))
	for n := range p.svc {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// bands returns the bands of the normalized service tier st and the tier
// they are from ("" when st has none and the standard bands apply).
func (p *Price) bands(st string) ([]band, string) {
	if st != "" && p.svc != nil {
		if b, ok := p.svc[st]; ok {
			return b, st
		}
	}
	return p.std, ""
}

// rates are resolved amounts as counts of 10^-12 USD; each is ≤ maxPrice
// (10^18), so it fits a word.
type rates struct {
	input, cachedInput, cacheWrite, cacheWrite1h, output, reasoning, gpuHour, request uint64
}

// Tenant is a `tenants` item: a discount on every list price for one tenant.
type Tenant struct {
	// Name is compared byte for byte with the event's tenant.
	Name string
	// Discount is the fraction taken off, between 0 and 1 (12 fraction digits).
	Discount Pico
}

// Name returns the name the catalog was parsed under (usually its file name).
func (c *Catalog) Name() string { return c.name }

// Source returns the catalog's `source` (its provenance), or "".
func (c *Catalog) Source() string { return c.source }

// Updated returns the catalog's `updated` date as written, or "".
func (c *Catalog) Updated() string { return c.updated }

// ProviderServiceTiers returns the default service tiers of a provider
// (the catalog's `providers` section), by name.
func (c *Catalog) ProviderServiceTiers(provider string) []ServiceTier {
	return append([]ServiceTier(nil), c.providers[provider]...)
}

// Providers returns the providers that have defaults, sorted.
func (c *Catalog) Providers() []string {
	names := make([]string, 0, len(c.providers))
	for n := range c.providers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Entries returns the catalog's entries in file order. The entries are shared
// with the catalog: read them, do not modify them.
func (c *Catalog) Entries() []*Entry {
	return append([]*Entry(nil), c.entries...)
}

// Tenants returns the tenant discounts in file order.
func (c *Catalog) Tenants() []Tenant {
	return append([]Tenant(nil), c.tenantList...)
}

// Lookup returns the entry that prices provider and model (exact match first,
// then the first matching regex), or nil.
func (c *Catalog) Lookup(provider, model string) *Entry {
	return c.lookup(provider, model)
}

func (c *Catalog) lookup(provider, model string) *Entry {
	k := modelKey{provider, model}
	// One map lookup serves exact entries and cached regex results alike.
	if rp := c.cache.read.Load(); rp != nil { // nil only in a zero Catalog
		if e, ok := (*rp)[k]; ok {
			return e
		}
	}
	res := c.regexes[provider]
	if len(res) == 0 {
		return nil
	}
	return c.cache.get(k, res)
}

func firstMatch(res []*Entry, model string) *Entry {
	for _, e := range res {
		if e.re.MatchString(model) {
			return e
		}
	}
	return nil
}

// Total returns the cost of e, the same Total as Cost, on the hot path: it
// never allocates (once the regex match of e's model is cached). It returns
// false, with a zero cost, when e is unpriced or outside the event
// contract's bounds (see Cost).
func (c *Catalog) Total(e *schemas.Event) (Pico, bool) {
	return c.TotalEntry(c.lookup(e.Provider, e.Model), e)
}

// TotalEntry is Total for an event whose entry the caller already looked up
// with Lookup(e.Provider, e.Model) and cached (nil: no entry, unpriced). The
// result is identical to Total's; it saves the lookup on a hot path.
func (c *Catalog) TotalEntry(ent *Entry, e *schemas.Event) (Pico, bool) {
	if !usageInBounds(e) {
		return Pico{}, false
	}
	if ent == nil {
		return Pico{}, false
	}
	p := ent.priceAt(e.Timestamp)
	if p == nil {
		return Pico{}, false
	}
	f := uint64(picoScale)
	if len(c.tenants) != 0 {
		if v, ok := c.tenants[e.Tenant]; ok {
			f = v
		}
	}
	b := p.std
	if e.ServiceTier != "" {
		b, _ = p.bands(NormalizeServiceTier(e.ServiceTier))
	}
	if len(b) > 1 {
		return pick(b, e.InputTokens).r.total(e, f), true
	}
	return b[0].r.total(e, f), true
}

// Quote is the priced breakdown of one event, for people (`costpipe prices
// cost`). Parts are list prices (before the tenant discount), each rounded
// half to even to 10^-12 USD for display; List and Total are rounded once
// from the exact sums, and Discount = List − Total, so List − Discount =
// Total exactly while the parts may differ from List by a few 10^-12 USD.
type Quote struct {
	// Priced is false when no price applies; then every amount is zero and
	// Reason says why.
	Priced bool
	// Reason explains an unpriced event; empty when Priced.
	Reason string
	// Entry is the matched catalog entry (nil when none matched).
	Entry *Entry
	// From is when the applied price took effect.
	From time.Time
	// ServiceTier is the event's service tier, normalized ("" standard).
	ServiceTier string
	// PricedServiceTier is the service tier whose rates priced the event:
	// ServiceTier, or "" when the price has none for it (standard rates).
	PricedServiceTier string
	// Tier is the Above of the long-context tier applied (0: none).
	Tier int64
	// Rates are the rates applied.
	Rates Rates
	// GPUMicros is gpu_ms as the whole microseconds that were priced.
	GPUMicros uint64

	Input        Pico // uncached prompt tokens
	CachedInput  Pico // prompt tokens read from cache
	CacheWrite   Pico // prompt tokens written to cache (5-minute lifetime)
	CacheWrite1h Pico // prompt tokens written to cache with a 1-hour lifetime
	Output       Pico // non-reasoning completion tokens
	Reasoning    Pico // reasoning tokens
	GPU          Pico // GPU time
	Request      Pico // per-call price

	// List is the cost before the tenant discount.
	List Pico
	// DiscountRate is the tenant's discount fraction (zero without one).
	DiscountRate Pico
	// Discount is the amount taken off: List − Total.
	Discount Pico
	// Total is the cost of the event, equal to what Total returns.
	Total Pico
}

// Cost prices e with a full breakdown. An event is unpriced (Priced false,
// Reason set) when no entry matches its provider and model, when its
// timestamp is before the matched entry's first price, or when its usage is
// outside the event contract (negative or > 10^9 tokens, cached_input +
// cache_write > input, reasoning > output, gpu_ms not in [0, 24 h]).
func (c *Catalog) Cost(e *schemas.Event) Quote {
	if reason := usageProblem(e); reason != "" {
		return Quote{Reason: "usage outside the event contract: " + reason}
	}
	ent := c.lookup(e.Provider, e.Model)
	if ent == nil {
		return Quote{Reason: fmt.Sprintf("no price for provider %q model %q", e.Provider, e.Model)}
	}
	p := ent.priceAt(e.Timestamp)
	if p == nil {
		return Quote{Entry: ent, Reason: fmt.Sprintf("event time %s is before the first price of %s %q (from %s)",
			e.Timestamp.UTC().Format(time.RFC3339Nano), ent.kind(), ent.Name(), ent.Prices[0].From.Format(time.RFC3339))}
	}
	q := Quote{Priced: true, Entry: ent, From: p.From, ServiceTier: NormalizeServiceTier(e.ServiceTier)}
	b, st := p.bands(q.ServiceTier)
	x := pick(b, e.InputTokens)
	q.PricedServiceTier, q.Tier, q.Rates = st, x.above, x.rates
	r := &x.r
	us := uint64(0)
	if e.GPUMs != 0 {
		us = gpuMicros(e.GPUMs)
	}
	q.GPUMicros = us
	uncached := uint64(e.InputTokens - e.CachedInputTokens - e.CacheWriteTokens)
	plain := uint64(e.OutputTokens - e.ReasoningTokens)
	part := func(tokens, price uint64) Pico {
		return picoOf(roundDiv(mul(tokens, price), 1e6))
	}
	q.Input = part(uncached, r.input)
	q.CachedInput = part(uint64(e.CachedInputTokens), r.cachedInput)
	q.CacheWrite = part(uint64(e.CacheWriteTokens-e.CacheWrite1hTokens), r.cacheWrite)
	q.CacheWrite1h = part(uint64(e.CacheWrite1hTokens), r.cacheWrite1h)
	q.Output = part(plain, r.output)
	q.Reasoning = part(uint64(e.ReasoningTokens), r.reasoning)
	q.GPU = picoOf(roundDiv(mul(us, r.gpuHour), 3_600_000_000))
	q.Request = picoOf(u128{lo: r.request})
	q.List = r.total(e, picoScale)
	f := uint64(picoScale)
	if v, ok := c.tenants[e.Tenant]; ok {
		f = v
	}
	q.DiscountRate = FromPicos(int64(picoScale - f))
	q.Total = r.total(e, f)
	q.Discount = q.List.Sub(q.Total)
	return q
}

func (e *Entry) kind() string {
	if e.Match != "" {
		return "match"
	}
	return "model"
}

// picoScale is 10^12, the number of Pico units in one (of USD, or of a rate).
const picoScale = 1_000_000_000_000

// usageInBounds reports whether e's usage is within the event contract, which
// bounds the cost arithmetic.
func usageInBounds(e *schemas.Event) bool {
	const max = schemas.MaxTokens
	return uint64(e.InputTokens) <= max && uint64(e.CachedInputTokens) <= max &&
		uint64(e.CacheWriteTokens) <= max && uint64(e.OutputTokens) <= max &&
		uint64(e.ReasoningTokens) <= max && uint64(e.CacheWrite1hTokens) <= uint64(e.CacheWriteTokens) &&
		e.CachedInputTokens+e.CacheWriteTokens <= e.InputTokens &&
		e.ReasoningTokens <= e.OutputTokens &&
		e.GPUMs >= 0 && e.GPUMs <= schemas.MaxDurationMs // false for NaN
}

// usageProblem says what is out of bounds, or "" when usageInBounds.
func usageProblem(e *schemas.Event) string {
	if usageInBounds(e) {
		return ""
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"input_tokens", e.InputTokens}, {"cached_input_tokens", e.CachedInputTokens},
		{"cache_write_tokens", e.CacheWriteTokens}, {"output_tokens", e.OutputTokens},
		{"reasoning_tokens", e.ReasoningTokens}, {"cache_write_1h_tokens", e.CacheWrite1hTokens},
	} {
		if f.v < 0 || f.v > schemas.MaxTokens {
			return fmt.Sprintf("%s = %d not in [0, %d]", f.name, f.v, schemas.MaxTokens)
		}
	}
	if e.CachedInputTokens+e.CacheWriteTokens > e.InputTokens {
		return fmt.Sprintf("cached_input_tokens + cache_write_tokens = %d exceeds input_tokens = %d",
			e.CachedInputTokens+e.CacheWriteTokens, e.InputTokens)
	}
	if e.CacheWrite1hTokens > e.CacheWriteTokens {
		return fmt.Sprintf("cache_write_1h_tokens = %d exceeds cache_write_tokens = %d", e.CacheWrite1hTokens, e.CacheWriteTokens)
	}
	if e.ReasoningTokens > e.OutputTokens {
		return fmt.Sprintf("reasoning_tokens = %d exceeds output_tokens = %d", e.ReasoningTokens, e.OutputTokens)
	}
	return fmt.Sprintf("gpu_ms = %s not in [0, %d]", strconv.FormatFloat(e.GPUMs, 'g', -1, 64), schemas.MaxDurationMs)
}

// total is the cost of e at these rates, with f = 10^12·(1 − discount),
// rounded once half to even to 10^-12 USD. e must be usageInBounds.
//
// Units: a token count times a rate (10^-12 USD per 10^6 tokens) is in
// 10^-18 USD ("atto"); with GPU time the sum is scaled by 3600 so that
// gpu_µs·gpu_hour (10^-12 USD per 3.6·10^9 µs) is exact too. Bounds: each
// product ≤ 10^9·10^18, the token sum (at most 2·10^9 tokens are priced:
// the input classes add up to input_tokens, the output ones to
// output_tokens) ≤ 2·10^27, scaled ≤ 7.3·10^30 < 2^103,
// times f ≤ 10^12 < 2^143: the product fits 192 bits, the quotient 128.
func (r *rates) total(e *schemas.Event, f uint64) Pico {
	uncached := uint64(e.InputTokens - e.CachedInputTokens - e.CacheWriteTokens)
	plain := uint64(e.OutputTokens - e.ReasoningTokens)
	n := mul(uncached, r.input).
		add(mul(uint64(e.CachedInputTokens), r.cachedInput)).
		add(mul(uint64(e.CacheWriteTokens-e.CacheWrite1hTokens), r.cacheWrite)).
		add(mul(uint64(e.CacheWrite1hTokens), r.cacheWrite1h)).
		add(mul(plain, r.output)).
		add(mul(uint64(e.ReasoningTokens), r.reasoning)).
		add(mul(r.request, 1e6))
	var d2 uint64 = 1
	if e.GPUMs != 0 && r.gpuHour != 0 {
		n = n.mul64(3600).add(mul(gpuMicros(e.GPUMs), r.gpuHour))
		d2 = 3600
	}
	if f == picoScale && d2 == 1 {
		// Common case, no discount and no GPU: n·10^12/10^18 = n/10^6.
		if n.hi == 0 {
			q, rem := n.lo/1e6, n.lo%1e6
			if rem > 500_000 || (rem == 500_000 && q&1 == 1) {
				q++
			}
			return Pico{lo: q}
		}
		return picoOf(roundDiv(n, 1e6))
	}
	// n·f / (10^18·d2), as two exact divisions; the remainder of the whole
	// is r2·10^18 + r1 < 10^18·d2.
	w2, w1, w0 := mul64to192(n, f)
	const d1 = 1e18
	// The product is < 2^143, so w2 < 2^15 < d1: the quotient's top word is 0
	// and w2 is the first partial remainder.
	q1hi, rm := bits.Div64(w2, w1, d1)
	q1lo, r1 := bits.Div64(rm, w0, d1)
	q, r2 := u128{hi: q1hi, lo: q1lo}.div64(d2)
	rem := mul(r2, d1).add64(r1)
	half := mul(d2, d1/2) // exact: d1 is even
	if half.less(rem) || (rem == half && q.lo&1 == 1) {
		q = q.add64(1)
	}
	return picoOf(q)
}

// mul returns x·y as a u128.
func mul(x, y uint64) u128 {
	hi, lo := bits.Mul64(x, y)
	return u128{hi: hi, lo: lo}
}

// roundDiv returns x/d rounded half to even; d must be ≥ 1 and < 2^63.
func roundDiv(x u128, d uint64) u128 {
	q, r := x.div64(d)
	if 2*r > d || (2*r == d && q.lo&1 == 1) {
		q = q.add64(1)
	}
	return q
}

// picoOf converts a non-negative cost below 2^127 (costs are below 2^72).
func picoOf(x u128) Pico { return Pico{hi: int64(x.hi), lo: x.lo} }

// GPUMicros converts an event's gpu_ms (in [0, 24 h]) to the whole
// microseconds its cost is computed from: its shortest decimal
// representation rounded half to even.
func GPUMicros(ms float64) uint64 { return gpuMicros(ms) }

// gpuMicros converts gpu_ms (in [0, 24 h]) to whole microseconds by rounding
// its shortest decimal representation half to even.
func gpuMicros(ms float64) uint64 {
	p := ms * 1000
	r := math.RoundToEven(p)
	// |p − 1000·decimal(ms)| < 10^-4 for ms ≤ 8.64·10^7, so unless p is
	// near a tie, the decimal rounds to r as well.
	if math.Abs(p-r) < 0.499 {
		return uint64(r)
	}
	return gpuMicrosDecimal(ms)
}

func gpuMicrosDecimal(ms float64) uint64 {
	var buf [64]byte
	s := strconv.AppendFloat(buf[:0], ms, 'f', -1, 64)
	var us uint64
	i := 0
	for ; i < len(s) && s[i] != '.'; i++ {
		us = us*10 + uint64(s[i]-'0')
	}
	if i < len(s) {
		i++ // '.'
	}
	for k := 0; k < 3; k++ {
		us *= 10
		if i < len(s) {
			us += uint64(s[i] - '0')
			i++
		}
	}
	if i >= len(s) || s[i] < '5' {
		return us
	}
	if s[i] > '5' {
		return us + 1
	}
	for _, c := range s[i+1:] {
		if c != '0' {
			return us + 1
		}
	}
	return us + us&1 // exact tie: to even
}

// matchCache remembers which regex entry (or none) prices a provider and
// model, so regexes are not evaluated on the hot path. Its read map also
// holds every exact entry, so a lookup is one map access either way; reads of
// read take no lock. Regex results first go to dirty (under mu) and are
// published to read after enough locked lookups. It holds at most
// MatchCacheSize regex results; once full, other models are matched directly.
type matchCache struct {
	read  atomic.Pointer[map[modelKey]*Entry] // exact entries + promoted results; immutable
	exact map[modelKey]*Entry                 // the catalog's exact entries

	mu     sync.Mutex
	dirty  map[modelKey]*Entry // every cached regex result; a superset of those in read
	misses int                 // lookups served by dirty since the last promotion
}

func (m *matchCache) init(exact map[modelKey]*Entry) {
	m.exact = exact
	m.promote()
}

// get returns the regex entry for k, a key not in read.
func (m *matchCache) get(k modelKey, res []*Entry) *Entry {
	m.mu.Lock()
	if e, ok := m.dirty[k]; ok {
		m.misses++
		if m.misses >= len(m.dirty) {
			m.promote()
		}
		m.mu.Unlock()
		return e
	}
	full := len(m.dirty) >= MatchCacheSize
	m.mu.Unlock()

	e := firstMatch(res, k.model)
	if full {
		return e
	}
	m.mu.Lock()
	if len(m.dirty) < MatchCacheSize {
		if m.dirty == nil {
			m.dirty = make(map[modelKey]*Entry)
		}
		// Event strings may alias a decoder's buffer: keep copies.
		m.dirty[modelKey{strings.Clone(k.provider), strings.Clone(k.model)}] = e
	}
	m.mu.Unlock()
	return e
}

// promote publishes exact ∪ dirty as the lock-free read map. Each promotion
// copies len(exact) + len(dirty) keys after len(dirty) locked lookups:
// amortized O(1) per lookup.
func (m *matchCache) promote() {
	r := make(map[modelKey]*Entry, len(m.exact)+len(m.dirty))
	for k, v := range m.exact {
		r[k] = v
	}
	for k, v := range m.dirty {
		r[k] = v
	}
	m.read.Store(&r)
	m.misses = 0
}
