package pricing

import (
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
)

// What-if pricing: the cost of stored sums (the rollups' token, GPU and
// request sums) under a catalog, as if every call had been priced by it.
//
// Rollups keep calls apart by tenant, provider, model, service tier and
// context band (ContextBand of the input tokens), so the calls of one group
// were all priced at the same rates by any catalog whose long-context
// thresholds are among ContextThresholds: the cost of the group is the
// sums times those rates, exactly. It is rounded once per group (half to
// even to 10^-12 USD), where live pricing rounds once per call; the two
// differ by less than 10^-12 USD per call, and not at all when every
// per-call cost is a whole number of 10^-12 USD (prices with at most six
// fraction digits per 1M tokens, no discount, no GPU time).

// Sums are the usage of a group of calls that share a SumsKey.
type Sums struct {
	Requests           uint64
	InputTokens        uint64 // cached and cache-write ones included
	CachedInputTokens  uint64
	CacheWriteTokens   uint64 // 1-hour ones included
	CacheWrite1hTokens uint64
	OutputTokens       uint64 // reasoning included
	ReasoningTokens    uint64
	GPUMicros          uint64 // as priced: see GPUMicros
}

// SumsKey says which rates price a group of calls.
type SumsKey struct {
	Tenant, Provider, Model string
	// ServiceTier is the calls' service tier (any spelling).
	ServiceTier string
	// ContextBand is ContextBand of the calls' input tokens.
	ContextBand uint32
	// At is a time at which the calls' price was in effect (every call of
	// the group must fall under the same price of its entry).
	At time.Time
}

// CostOfSums returns the cost of s under c: ok is false when no price
// applies (no entry, or At before its first price). It fails when the
// applicable price has a long-context tier whose threshold is not one of
// ContextThresholds (the group may mix calls on both sides of it), or when
// the sums are inconsistent (parts exceeding their whole).
func (c *Catalog) CostOfSums(k SumsKey, s Sums) (cost Pico, ok bool, err error) {
	if s.CachedInputTokens+s.CacheWriteTokens > s.InputTokens || s.CacheWrite1hTokens > s.CacheWriteTokens ||
		s.ReasoningTokens > s.OutputTokens {
		return Pico{}, false, fmt.Errorf("inconsistent sums for %s %s: %+v", k.Provider, k.Model, s)
	}
	ent := c.lookup(k.Provider, k.Model)
	if ent == nil {
		return Pico{}, false, nil
	}
	p := ent.priceAt(k.At)
	if p == nil {
		return Pico{}, false, nil
	}
	for _, t := range p.Tiers {
		if !IsContextThreshold(t.Above) {
			return Pico{}, false, fmt.Errorf("%s: its cost cannot be computed from them exactly", c.tierProblem(ent, p, t))
		}
	}
	b, _ := p.bands(NormalizeServiceTier(k.ServiceTier))
	r := pick(b, int64(k.ContextBand)+1).r
	f := uint64(picoScale)
	if v, has := c.tenants[k.Tenant]; has {
		f = v
	}
	// n in 10^-18 USD (token count × 10^-12 USD per 10^6 tokens), scaled by
	// 3600 so that gpu_µs × 10^-12 USD per 3.6·10^9 µs is exact too.
	n := new(big.Int)
	add := func(count, rate uint64) {
		n.Add(n, new(big.Int).Mul(new(big.Int).SetUint64(count), new(big.Int).SetUint64(rate)))
	}
	add(s.InputTokens-s.CachedInputTokens-s.CacheWriteTokens, r.input)
	add(s.CachedInputTokens, r.cachedInput)
	add(s.CacheWriteTokens-s.CacheWrite1hTokens, r.cacheWrite)
	add(s.CacheWrite1hTokens, r.cacheWrite1h)
	add(s.OutputTokens-s.ReasoningTokens, r.output)
	add(s.ReasoningTokens, r.reasoning)
	add(s.Requests, r.request)
	n.Add(n, new(big.Int).Mul(new(big.Int).Mul(new(big.Int).SetUint64(s.Requests), new(big.Int).SetUint64(r.request)), big.NewInt(1e6-1)))
	n.Mul(n, big.NewInt(3600))
	add(s.GPUMicros, r.gpuHour)
	// cost = n·f / (10^18·3600), in 10^-12 USD, rounded half to even.
	n.Mul(n, new(big.Int).SetUint64(f))
	d := new(big.Int).Mul(big.NewInt(1e18), big.NewInt(3600))
	q, rem := new(big.Int).QuoRem(n, d, new(big.Int))
	rem.Lsh(rem, 1)
	if c := rem.Cmp(d); c > 0 || (c == 0 && q.Bit(0) == 1) {
		q.Add(q, big.NewInt(1))
	}
	hi := new(big.Int).Rsh(q, 64)
	if !hi.IsInt64() {
		return Pico{}, false, fmt.Errorf("cost of %s %s overflows", k.Provider, k.Model)
	}
	lo := new(big.Int).And(q, new(big.Int).SetUint64(^uint64(0)))
	cost, err = FromInt128(hi.Int64(), lo.Uint64())
	if err != nil {
		return Pico{}, false, err
	}
	return cost, true, nil
}

// PriceChanges returns the distinct `from` times of every price in the
// catalog within (from, to), ascending: where what-if pricing must split a
// range so that each part is under one price of every entry.
func (c *Catalog) PriceChanges(from, to time.Time) []time.Time {
	seen := map[int64]bool{}
	var out []time.Time
	for _, e := range c.entries {
		for i := range e.Prices {
			t := e.Prices[i].From
			if t.After(from) && t.Before(to) && !seen[t.UnixNano()] {
				seen[t.UnixNano()] = true
				out = append(out, t)
			}
		}
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// tierProblem says, at the entry's FILE:LINE, that tier t of price p is not
// one the rollups keep apart.
func (c *Catalog) tierProblem(ent *Entry, p *Price, t Tier) string {
	return fmt.Sprintf("%s:%d: %s %q of provider %q has, from %s, a long-context tier above %d input tokens, which the rollups do not keep apart (they split calls at %v)",
		c.name, ent.Line, ent.kind(), ent.Name(), ent.Provider, p.From.Format(time.RFC3339), t.Above, ContextThresholds)
}

// SumsProblems lists the prices whose cost cannot be computed from the
// rollups' sums (CostOfSums refuses them: what-if pricing and costpipe
// reprice), though every call is priced right when it is aggregated: a
// long-context tier at a threshold the rollups do not split calls at.
func (c *Catalog) SumsProblems() []string {
	var out []string
	for _, ent := range c.entries {
		for i := range ent.Prices {
			for _, t := range ent.Prices[i].Tiers {
				if !IsContextThreshold(t.Above) {
					out = append(out, c.tierProblem(ent, &ent.Prices[i], t))
				}
			}
		}
	}
	return out
}

// ProviderProblems lists the providers of the catalog's providers section
// that none of its models has: their default service tiers apply to
// nothing, most often because the name is misspelt or differently cased
// (provider names match exactly: "OpenAI" is not "openai"). A catalog may
// still hold them, so they are warnings, not errors.
func (c *Catalog) ProviderProblems() []string {
	has := map[string]bool{}
	for _, e := range c.entries {
		has[e.Provider] = true
	}
	var out []string
	names := slices.Collect(maps.Keys(c.providerLines))
	slices.SortFunc(names, func(a, b string) int { return c.providerLines[a] - c.providerLines[b] }) // file order
	for _, name := range names {
		if has[name] {
			continue
		}
		msg := fmt.Sprintf("%s:%d: provider %q in providers has no models: its service tiers apply to nothing (provider names match exactly", c.name, c.providerLines[name], name)
		var alike []string
		for other := range has {
			if strings.EqualFold(other, name) {
				alike = append(alike, strconv.Quote(other))
			}
		}
		if len(alike) > 0 {
			slices.Sort(alike)
			msg += "; the models' provider is " + strings.Join(alike, " or ")
		}
		out = append(out, msg+")")
	}
	return out
}
