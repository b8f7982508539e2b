package litellm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/schemas"
)

// The exact-cost test prices events with the imported catalog (pricing.Parse
// of Import's output, no overrides) and compares every cost with one
// computed here independently, from the exact text of the list's JSON
// numbers as big.Rat, with LiteLLM's rules (as the importer documents
// them):
//
//   - threshold: the largest N of an input_cost_per_token_above_<N>_tokens
//     key with input_tokens > N;
//   - a rate <f> on service tier S is the first present of
//     <f>_above_<N>_tokens_<S>, <f>_above_<N>_tokens, <f>_<S>, <f>;
//   - then cached defaults to input_cost_per_token_cache_hit, then to input
//     (the importer's rule for deepseek's and openrouter's cache-hit
//     price), cache write to input, the 1-hour cache write to the cache
//     write, reasoning to output;
//   - a tiered_pricing entry: the tier with range_start < input_tokens ≤
//     range_end (else the last), its rates with LiteLLM's fallbacks.
//
// cost = (input−cached−cache_write)·input + cached·cached_input
//      + (cache_write−cw1h)·cache_write + cw1h·cache_write_1h
//      + (output−reasoning)·output + reasoning·reasoning + request,
// rounded half to even to 10^-12 USD like the engine.
//
// Prices with more than 12 fraction digits per 1M tokens (the snapshot's
// databricks/* float artefacts) are rounded by the importer, half to even,
// so those entries' costs may differ from the exact ones: by at most
// 5·10^-19 USD per token (and 5·10^-13 per call for a request price)
// before the cost is rounded to 10^-12 USD. The test checks them twice:
// exactly against the cost at the rates rounded here independently
// (big.Rat), and within 10^-12 USD of the cost at the exact rates, which
// holds for calls of at most 10^6 tokens (the difference before rounding
// is then at most 5·10^-13, so the rounded costs are at most one 10^-12
// step apart); every entry with a rounded price is priced, with a call of
// 10^6 tokens among its events.

// listObjects decodes the list keeping numbers as text.
func listObjects(t *testing.T, data []byte) map[string]map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]map[string]any)
	for k, v := range raw {
		if m, ok := v.(map[string]any); ok {
			out[k] = m
		}
	}
	return out
}

func ratOf(t *testing.T, v any) *big.Rat {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("not a number: %v", v)
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok {
		t.Fatalf("not a number: %v", v)
	}
	return r
}

var thresholdKey = regexp.MustCompile(`^input_cost_per_token_above_([0-9]+)(k?)_tokens$`)

// thresholds returns an entry's thresholds, ascending, with the text LiteLLM
// writes them in ("200k").
func thresholds(obj map[string]any) (ns []int64, text map[int64]string) {
	text = map[int64]string{}
	for k := range obj {
		m := thresholdKey.FindStringSubmatch(k)
		if m == nil {
			continue
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		if m[2] == "k" {
			n *= 1000
		}
		ns = append(ns, n)
		text[n] = m[1] + m[2]
	}
	slices.Sort(ns)
	return ns, text
}

var suffixOf = map[string]string{"batch": "batches", "flex": "flex", "priority": "priority"}

// litellmRates returns the per-token rates of a call of n input tokens on
// service tier st: input, cached, cache write, 1-hour cache write, output,
// reasoning, and the per-call request price.
func litellmRates(t *testing.T, obj map[string]any, st string, n int64) [7]*big.Rat {
	t.Helper()
	zero := new(big.Rat)
	if tp, ok := obj["tiered_pricing"].([]any); ok {
		return tieredRates(t, obj, tp, n)
	}
	ns, text := thresholds(obj)
	above := ""
	for _, th := range ns {
		if n > th {
			above = text[th]
		}
	}
	s := suffixOf[st]
	lookup := func(f string) *big.Rat {
		var keys []string
		if above != "" {
			if s != "" {
				keys = append(keys, f+"_above_"+above+"_tokens_"+s)
			}
			keys = append(keys, f+"_above_"+above+"_tokens")
		}
		if s != "" {
			keys = append(keys, f+"_"+s)
		}
		keys = append(keys, f)
		for _, k := range keys {
			if v, ok := obj[k]; ok {
				return ratOf(t, v)
			}
		}
		return nil
	}
	or := func(r, def *big.Rat) *big.Rat {
		if r == nil {
			return def
		}
		return r
	}
	// The rates as given (nil: not), then costpipe's one departure from
	// LiteLLM (price.go, scaleServiceTiers): above a threshold, a rate the
	// service tier gives flat, with no _above_<N>_tokens_<S> key, is the
	// standard long-context rate scaled as the tier scales the standard
	// rate (LiteLLM takes the standard long-context rate whole). Then the
	// defaults.
	var g [7]*big.Rat
	for i, f := range rateKeys {
		g[i] = lookup(f)
	}
	if above != "" && s != "" {
		long := litellmRates(t, obj, "", n)
		short := litellmRates(t, obj, "", 0)
		for i, f := range rateKeys {
			sv, own := obj[f+"_"+s]
			_, tiered := obj[f+"_above_"+above+"_tokens_"+s]
			if !own || tiered || short[i].Sign() == 0 || long[i].Cmp(short[i]) == 0 {
				continue
			}
			v := new(big.Rat).Mul(long[i], ratOf(t, sv))
			g[i] = v.Quo(v, short[i])
		}
	}
	in := g[0]
	out := or(g[4], zero)
	cw := or(g[2], in)
	cacheHit := in
	if v, ok := obj["input_cost_per_token_cache_hit"]; ok {
		cacheHit = ratOf(t, v)
	}
	return [7]*big.Rat{in, or(g[1], cacheHit), cw, or(g[3], cw), out, or(g[5], out), or(g[6], zero)}
}

// withAnthropic1h is obj with costpipe's second departure from LiteLLM
// (price.go, anthropicCacheWrite1h) written in as keys: a Claude entry's
// level (the entry's own keys, or its _above_<N>_tokens keys) without a
// 1-hour cache write key but with a cache write of exactly 1.25 × its input
// gets 2 × its input, as Anthropic bills it (LiteLLM takes the 5-minute
// rate, or below a threshold's level the price's own 1-hour rate).
func withAnthropic1h(t *testing.T, key string, obj map[string]any) map[string]any {
	t.Helper()
	if !strings.Contains(strings.ToLower(key), "claude") {
		return obj
	}
	if _, ok := obj["tiered_pricing"]; ok {
		return obj
	}
	out := maps.Clone(obj)
	_, text := thresholds(obj)
	suffixes := []string{""}
	for _, a := range text {
		suffixes = append(suffixes, "_above_"+a+"_tokens")
	}
	for _, sfx := range suffixes {
		in, okIn := obj["input_cost_per_token"+sfx]
		cw, okCW := obj["cache_creation_input_token_cost"+sfx]
		if _, ok := obj["cache_creation_input_token_cost_above_1hr"+sfx]; ok || !okIn || !okCW {
			continue
		}
		r := ratOf(t, in)
		if r.Sign() == 0 || new(big.Rat).Mul(r, big.NewRat(5, 4)).Cmp(ratOf(t, cw)) != 0 {
			continue
		}
		out["cache_creation_input_token_cost_above_1hr"+sfx] = json.Number(new(big.Rat).Mul(r, big.NewRat(2, 1)).FloatString(20))
	}
	return out
}

// withServiceDefaults is obj with costpipe's third departure from LiteLLM
// (price.go, scaleServiceDefaults) written in as keys: a service tier
// that gives a rate's source (input for the cache read and the cache
// write, the cache write for the 1-hour one, output for reasoning) but not
// the rate, which the entry gives for the standard tier, gets the standard
// rate scaled as the tier scales the source (LiteLLM takes the standard
// rate whole). The cache read may be given as the cache-hit price.
func withServiceDefaults(t *testing.T, obj map[string]any) map[string]any {
	t.Helper()
	if _, ok := obj["tiered_pricing"]; ok {
		return obj
	}
	out := maps.Clone(obj)
	if _, ok := out["cache_read_input_token_cost"]; !ok {
		if hit, ok := out["input_cost_per_token_cache_hit"]; ok {
			out["cache_read_input_token_cost"] = hit
		}
	}
	for _, s := range suffixOf {
		for _, d := range []struct{ f, src string }{
			{"cache_read_input_token_cost", "input_cost_per_token"},
			{"cache_creation_input_token_cost", "input_cost_per_token"},
			{"cache_creation_input_token_cost_above_1hr", "cache_creation_input_token_cost"},
			{"output_cost_per_reasoning_token", "output_cost_per_token"},
		} {
			_, own := out[d.f+"_"+s]
			std, hasStd := out[d.f]
			srcS, hasSrcS := out[d.src+"_"+s]
			src, hasSrc := out[d.src]
			if own || !hasStd || !hasSrcS || !hasSrc || ratOf(t, src).Sign() == 0 {
				continue
			}
			v := new(big.Rat).Mul(ratOf(t, std), ratOf(t, srcS))
			out[d.f+"_"+s] = json.Number(v.Quo(v, ratOf(t, src)).FloatString(30))
		}
	}
	return out
}

// rateKeys are the list's keys of the rates litellmRates returns, in order.
var rateKeys = [7]string{"input_cost_per_token", "cache_read_input_token_cost", "cache_creation_input_token_cost",
	"cache_creation_input_token_cost_above_1hr", "output_cost_per_token", "output_cost_per_reasoning_token", "input_cost_per_request"}

// tieredRates are LiteLLM's rates from a tiered_pricing table.
func tieredRates(t *testing.T, obj map[string]any, tp []any, n int64) [7]*big.Rat {
	t.Helper()
	tiers := make([]map[string]any, len(tp))
	for i, x := range tp {
		tiers[i] = x.(map[string]any)
	}
	start := func(m map[string]any) *big.Rat { return ratOf(t, m["range"].([]any)[0]) }
	end := func(m map[string]any) *big.Rat { return ratOf(t, m["range"].([]any)[1]) }
	slices.SortStableFunc(tiers, func(a, b map[string]any) int { return start(a).Cmp(start(b)) })
	nr := new(big.Rat).SetInt64(n)
	tier := tiers[len(tiers)-1]
	for _, m := range tiers {
		if start(m).Cmp(nr) < 0 && nr.Cmp(end(m)) <= 0 {
			tier = m
			break
		}
	}
	zero := new(big.Rat)
	// Python's `tier.get(k) or tier.get(fallback, 0)`: zero counts as absent.
	get := func(keys ...string) *big.Rat {
		for _, k := range keys {
			if v, ok := tier[k]; ok {
				if r := ratOf(t, v); r.Sign() != 0 {
					return r
				}
			}
		}
		return zero
	}
	in := get("input_cost_per_token")
	out := zero
	if v, ok := tier["output_cost_per_token"]; ok {
		out = ratOf(t, v)
	} else if v, ok := obj["output_cost_per_token"]; ok {
		out = ratOf(t, v)
	}
	cw := get("cache_creation_input_token_cost", "input_cost_per_token")
	cw1h := get("cache_creation_input_token_cost_above_1hr", "cache_creation_input_token_cost")
	if cw1h.Sign() == 0 {
		cw1h = cw
	}
	reasoning := get("output_cost_per_reasoning_token", "output_cost_per_token")
	if reasoning.Sign() == 0 {
		reasoning = out
	}
	request := zero
	if v, ok := obj["input_cost_per_request"]; ok {
		request = ratOf(t, v)
	}
	return [7]*big.Rat{in, get("cache_read_input_token_cost", "input_cost_per_token"), cw, cw1h, out, reasoning, request}
}

// expectedCost is the cost of e at rates r (per token), rounded half to
// even to 10^-12 USD.
func expectedCost(e *schemas.Event, r [7]*big.Rat) *big.Rat {
	return roundPico(exactCost(e, r))
}

// exactCost is the cost of e at rates r (per token), not rounded.
func exactCost(e *schemas.Event, r [7]*big.Rat) *big.Rat {
	sum := new(big.Rat)
	addTokens := func(n int64, rate *big.Rat) {
		sum.Add(sum, new(big.Rat).Mul(new(big.Rat).SetInt64(n), rate))
	}
	addTokens(e.InputTokens-e.CachedInputTokens-e.CacheWriteTokens, r[0])
	addTokens(e.CachedInputTokens, r[1])
	addTokens(e.CacheWriteTokens-e.CacheWrite1hTokens, r[2])
	addTokens(e.CacheWrite1hTokens, r[3])
	addTokens(e.OutputTokens-e.ReasoningTokens, r[4])
	addTokens(e.ReasoningTokens, r[5])
	sum.Add(sum, r[6])
	return sum
}

// roundedRates are rates r as a catalog holds them: the per-token rates
// rounded half to even to 10^-12 USD per 1M tokens, the request price to
// 10^-12 USD.
func roundedRates(r [7]*big.Rat) [7]*big.Rat {
	million := big.NewRat(1_000_000, 1)
	var out [7]*big.Rat
	for i, v := range r {
		if i == 6 {
			out[i] = roundPico(v)
			continue
		}
		perMillion := roundPico(new(big.Rat).Mul(v, million))
		out[i] = perMillion.Quo(perMillion, million)
	}
	return out
}

// roundPico rounds x ≥ 0 half to even to a multiple of 10^-12.
func roundPico(x *big.Rat) *big.Rat {
	scaled := new(big.Rat).Mul(x, big.NewRat(1_000_000_000_000, 1))
	q, m := new(big.Int).QuoRem(scaled.Num(), scaled.Denom(), new(big.Int))
	twice := new(big.Int).Mul(m, big.NewInt(2))
	if c := twice.Cmp(scaled.Denom()); c > 0 || c == 0 && q.Bit(0) == 1 {
		q.Add(q, big.NewInt(1))
	}
	return new(big.Rat).SetFrac(q, big.NewInt(1_000_000_000_000))
}

func picoRat(t *testing.T, p pricing.Pico) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(p.String())
	if !ok {
		t.Fatalf("cannot read %s", p)
	}
	return r
}

var costTime = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

// events returns the events priced for one model: input tokens below and
// above each threshold (or each tiered_pricing range start), with and
// without cache reads, cache writes (5-minute and 1-hour) and reasoning.
func events(obj map[string]any, provider, model string) []schemas.Event {
	inputs := []int64{1, 1000}
	ns, _ := thresholds(obj)
	if tp, ok := obj["tiered_pricing"].([]any); ok {
		for _, x := range tp {
			r := x.(map[string]any)["range"].([]any)
			s, _ := strconv.ParseFloat(string(r[0].(json.Number)), 64)
			e, _ := strconv.ParseFloat(string(r[1].(json.Number)), 64)
			ns = append(ns, int64(s), int64(e))
		}
	}
	for _, n := range ns {
		if n > 0 {
			inputs = append(inputs, n, n+1)
		}
	}
	var evs []schemas.Event
	for _, st := range []string{"", "batch", "flex", "priority"} {
		for _, n := range inputs {
			base := schemas.Event{Provider: provider, Model: model, Timestamp: costTime, Status: schemas.StatusOK, ServiceTier: st, InputTokens: n}
			plain := base
			plain.OutputTokens = 777
			full := base
			full.CachedInputTokens = n / 3
			full.CacheWriteTokens = n / 5
			full.CacheWrite1hTokens = n / 11
			full.OutputTokens = 1234
			full.ReasoningTokens = 456
			writes := base
			writes.CacheWriteTokens = n
			writes.CacheWrite1hTokens = n / 2
			evs = append(evs, plain, full, writes)
		}
	}
	return evs
}

// TestExactCost prices events for 30 models of the list chosen at random
// (fixed seed; some with long-context tiers, some with service tiers, some
// tiered_pricing tables), every model with a rounded price and every model
// with an input_cost_per_token_cache_hit, and compares the engine's cost
// with LiteLLM's.
func TestExactCost(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(sharedList)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Import(bytes.NewReader(data), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := pricing.Parse("imported.yaml", res.YAML)
	if err != nil {
		t.Fatal(err)
	}
	objs := listObjects(t, data)
	bySource := map[string]*pricing.Entry{}
	var longCtx, serviced, tiered, all []string
	for _, e := range cat.Entries() {
		key := strings.TrimPrefix(e.Source, "litellm:")
		bySource[key] = e
		obj := objs[key]
		all = append(all, key)
		if _, ok := obj["tiered_pricing"]; ok {
			tiered = append(tiered, key)
			continue
		}
		if ns, _ := thresholds(obj); len(ns) > 0 {
			longCtx = append(longCtx, key)
		}
		for k := range obj {
			if strings.HasSuffix(k, "_flex") || strings.HasSuffix(k, "_priority") || strings.HasSuffix(k, "_batches") {
				serviced = append(serviced, key)
				break
			}
		}
	}
	for _, l := range [][]string{longCtx, serviced, tiered, all} {
		slices.Sort(l)
	}
	r := rand.New(rand.NewPCG(14, 20260724))
	chosen := map[string]bool{}
	pick := func(from []string, n int) {
		for added := 0; added < n && len(chosen) < 30; {
			if k := from[r.IntN(len(from))]; !chosen[k] {
				chosen[k] = true
				added++
			}
		}
	}
	pick(longCtx, 10)
	pick(serviced, 8)
	pick(tiered, 3)
	pick(all, 30)
	rounded := map[string]bool{}
	for _, rp := range res.Stats.Rounded {
		rounded[rp.Key] = true
		chosen[rp.Key] = true
	}
	for _, key := range all {
		if _, ok := objs[key]["input_cost_per_token_cache_hit"]; ok {
			chosen[key] = true
		}
	}
	// Every entry given Anthropic's 1-hour cache write price: the 78 of the
	// snapshot and their long-context tiers.
	if n := len(res.Stats.AnthropicCacheWrite1h); n < 70 {
		t.Errorf("%d entries given Anthropic's 1-hour cache write price, want the snapshot's 78", n)
	}
	for _, k := range res.Stats.AnthropicCacheWrite1h {
		chosen[k] = true
	}
	keys := make([]string, 0, len(chosen))
	for k := range chosen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	pico := big.NewRat(1, 1_000_000_000_000)
	halfPerToken := big.NewRat(1, 2_000_000_000_000_000_000) // 5·10^-19 USD
	priced, inexact := 0, 0
	for _, key := range keys {
		e, obj := bySource[key], withServiceDefaults(t, withAnthropic1h(t, key, objs[key]))
		evs := events(obj, e.Provider, e.Model)
		if rounded[key] {
			evs = append(evs, schemas.Event{Provider: e.Provider, Model: e.Model, Timestamp: costTime, Status: schemas.StatusOK,
				InputTokens: 900_000, CachedInputTokens: 100_000, CacheWriteTokens: 50_000, OutputTokens: 100_000, ReasoningTokens: 30_000})
		}
		for _, ev := range evs {
			exact := litellmRates(t, obj, ev.ServiceTier, ev.InputTokens)
			want := expectedCost(&ev, exact)
			got, ok := cat.Total(&ev)
			if !ok {
				t.Fatalf("%s (%s/%s) is unpriced", key, e.Provider, e.Model)
			}
			g := picoRat(t, got)
			where := fmt.Sprintf("%s (%s/%s) tier %q input %d cached %d writes %d/%d output %d reasoning %d",
				key, e.Provider, e.Model, ev.ServiceTier, ev.InputTokens, ev.CachedInputTokens, ev.CacheWriteTokens,
				ev.CacheWrite1hTokens, ev.OutputTokens, ev.ReasoningTokens)
			priced++
			if !rounded[key] {
				if g.Cmp(want) != 0 {
					t.Errorf("%s: cost %s, want %s", where, got, want.FloatString(12))
				}
				continue
			}
			// A rounded entry: exact at the rates rounded here ...
			rr := roundedRates(exact)
			if wantRounded := expectedCost(&ev, rr); g.Cmp(wantRounded) != 0 {
				t.Errorf("%s: cost %s, want %s at the rounded rates", where, got, wantRounded.FloatString(12))
			}
			// ... whose error before the final rounding is within the bound
			// of the rounding (5·10^-19 per token, 5·10^-13 per call) ...
			diff := new(big.Rat).Sub(exactCost(&ev, exact), exactCost(&ev, rr))
			bound := new(big.Rat).Mul(halfPerToken, new(big.Rat).SetInt64(ev.InputTokens+ev.OutputTokens))
			bound.Add(bound, new(big.Rat).Quo(pico, big.NewRat(2, 1)))
			if diff.Abs(diff).Cmp(bound) > 0 {
				t.Errorf("%s: the rounded rates are %s USD off, more than the bound %s", where, diff.FloatString(20), bound.FloatString(20))
			}
			// ... and within 10^-12 USD of the cost at the list's exact rates.
			d := new(big.Rat).Sub(g, want)
			if d.Abs(d).Cmp(pico) > 0 {
				t.Errorf("%s: cost %s, want %s ± 10^-12", where, got, want.FloatString(12))
			}
			if g.Cmp(want) != 0 {
				inexact++
			}
		}
	}
	if len(rounded) == 0 && filepath.Base(sharedList) == "litellm-model-prices-2026-07-24.json" {
		t.Error("no entry with a rounded price")
	}
	t.Logf("%d events of %d models (%d with rounded prices; %d events 10^-12 USD off the exact cost): %s",
		priced, len(keys), len(rounded), inexact, strings.Join(keys, ", "))
}

// usd is a cost written as a decimal, for the named checks.
func usd(t *testing.T, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("bad decimal %q", s)
	}
	return r
}

// TestIssueChecks are the checks issue 14 names: Claude Sonnet 4.5 at the
// above-200k rates for every token of a 250k-token call, at the base rates
// for 150k; GPT-5 flex at its flex rates; GPT-5 batch at half the standard
// rates, which needs the provider default of the overrides (so it is
// checked against the embedded catalog, pricing.Default()).
func TestIssueChecks(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(sharedList)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Import(bytes.NewReader(data), Options{})
	if err != nil {
		t.Fatal(err)
	}
	imported, err := pricing.Parse("imported.yaml", res.YAML)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(provider, model, st string, in, cached, cw, cw1h, out int64) schemas.Event {
		return schemas.Event{Provider: provider, Model: model, Timestamp: costTime, Status: schemas.StatusOK, ServiceTier: st,
			InputTokens: in, CachedInputTokens: cached, CacheWriteTokens: cw, CacheWrite1hTokens: cw1h, OutputTokens: out}
	}
	for _, tc := range []struct {
		name string
		cat  *pricing.Catalog
		e    schemas.Event
		want string
	}{
		// Above 200k: 6 input, 0.6 cached, 7.5 cache write, 12 1-hour write,
		// 22.5 output per 1M, for all tokens of the call.
		{"sonnet 4.5 250k", imported, ev("anthropic", "claude-sonnet-4-5", "", 250_000, 50_000, 20_000, 10_000, 2_000),
			// 180k·6 + 50k·0.6 + 10k·7.5 + 10k·12 + 2k·22.5 (µUSD)
			"1.35"},
		{"sonnet 4.5 150k", imported, ev("anthropic", "claude-sonnet-4-5", "", 150_000, 50_000, 20_000, 10_000, 2_000),
			// 80k·3 + 50k·0.3 + 10k·3.75 + 10k·6 + 2k·15
			"0.3825"},
		{"sonnet 4.5 200k is not above", imported, ev("anthropic", "claude-sonnet-4-5", "", 200_000, 0, 0, 0, 0), "0.6"},
		{"sonnet 4.5 200001", imported, ev("anthropic", "claude-sonnet-4-5", "", 200_001, 0, 0, 0, 0), "1.200006"},
		// GPT-5 flex: 0.625 input, 0.0625 cached, 5 output.
		{"gpt-5 flex", imported, ev("openai", "gpt-5", "flex", 10_000, 4_000, 0, 0, 1_000), "0.009"},
		{"gpt-5 standard", imported, ev("openai", "gpt-5", "", 10_000, 4_000, 0, 0, 1_000), "0.018"},
		// The import alone has no batch price for gpt-5: standard rates.
		{"gpt-5 batch, import only", imported, ev("openai", "gpt-5", "batch", 10_000, 4_000, 0, 0, 1_000), "0.018"},
		// The embedded catalog: the openai provider default halves them.
		{"gpt-5 batch, default catalog", pricing.Default(), ev("openai", "gpt-5", "batch", 10_000, 4_000, 0, 0, 1_000), "0.009"},
		{"gpt-5 flex, default catalog", pricing.Default(), ev("openai", "gpt-5", "flex", 10_000, 4_000, 0, 0, 1_000), "0.009"},
		{"gpt-5 standard, default catalog", pricing.Default(), ev("openai", "gpt-5", "", 10_000, 4_000, 0, 0, 1_000), "0.018"},
	} {
		got, ok := tc.cat.Total(&tc.e)
		if !ok || picoRat(t, got).Cmp(usd(t, tc.want)) != 0 {
			t.Errorf("%s: cost %s %v, want %s", tc.name, got, ok, tc.want)
		}
	}
	// And the same through the JSON, independently.
	objs := listObjects(t, data)
	for _, tc := range []struct{ key, st string }{{"gpt-5", "flex"}, {"claude-sonnet-4-5", ""}} {
		for _, n := range []int64{150_000, 250_000} {
			e := ev("", "", tc.st, n, 1000, 500, 100, 3000)
			r := litellmRates(t, objs[tc.key], tc.st, n)
			want := expectedCost(&e, r)
			e.Provider, e.Model = map[string]string{"gpt-5": "openai", "claude-sonnet-4-5": "anthropic"}[tc.key], tc.key
			if got, _ := imported.Total(&e); picoRat(t, got).Cmp(want) != 0 {
				t.Errorf("%s %s %d: cost %s, want %s", tc.key, tc.st, n, got, want.FloatString(12))
			}
		}
	}
}

func Example_perMillion() {
	for _, s := range []string{"3e-06", "1.25e-07", "3E-6", "1e-18"} {
		v, _ := shiftDecimal(s, 6)
		fmt.Println(s, "→", v)
	}
	// Output:
	// 3e-06 → 3
	// 1.25e-07 → 0.125
	// 3E-6 → 3
	// 1e-18 → 0.000000000001
}
