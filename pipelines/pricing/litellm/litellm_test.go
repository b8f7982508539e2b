package litellm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/schemas"
)

// importString imports a list given as JSON text and parses the catalog.
func importString(t *testing.T, list string, opts Options) (*Result, *pricing.Catalog) {
	t.Helper()
	res, err := Import(strings.NewReader(list), opts)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	cat, err := pricing.Parse("imported.yaml", res.YAML)
	if err != nil {
		t.Fatalf("the imported catalog does not parse: %v\n%s", err, res.YAML)
	}
	return res, cat
}

// ratesOf returns the rates of provider/model for a call of n input tokens
// on service tier st, as "input/cached/cw/cw1h/output/reasoning/request".
func ratesOf(t *testing.T, cat *pricing.Catalog, provider, model, st string, n int64) string {
	t.Helper()
	e := cat.Lookup(provider, model)
	if e == nil {
		t.Fatalf("no entry %s/%s", provider, model)
	}
	p, ok := e.PriceAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if !ok {
		t.Fatalf("%s/%s has no price in 2026", provider, model)
	}
	r, _, _ := p.RatesFor(st, n)
	return strings.Join([]string{r.Input.String(), r.CachedInput.String(), r.CacheWrite.String(),
		r.CacheWrite1h.String(), r.Output.String(), r.Reasoning.String(), r.Request.String()}, "/")
}

// rates12 writes rates the way ratesOf returns them, from short decimals.
func rates12(vals ...string) string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = pricing.MustParsePico(v).String()
	}
	return strings.Join(out, "/")
}

func TestFieldMapping(t *testing.T) {
	t.Parallel()
	list := `{
	  "sample_spec": {"input_cost_per_token": 0, "litellm_provider": "one of …"},
	  "last_updated": "2026-07-24T18:23:43.215560+00:00",
	  "m": {
	    "litellm_provider": "anthropic", "mode": "chat",
	    "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
	    "cache_read_input_token_cost": 3e-07, "cache_creation_input_token_cost": 3.75e-06,
	    "cache_creation_input_token_cost_above_1hr": 6e-06,
	    "output_cost_per_reasoning_token": 2e-05,
	    "input_cost_per_request": 0.005,
	    "input_cost_per_token_above_200k_tokens": 6e-06, "output_cost_per_token_above_200k_tokens": 2.25e-05,
	    "cache_read_input_token_cost_above_200k_tokens": 6e-07,
	    "cache_creation_input_token_cost_above_200k_tokens": 7.5e-06,
	    "cache_creation_input_token_cost_above_1hr_above_200k_tokens": 1.2e-05,
	    "input_cost_per_token_flex": 1.5e-06, "output_cost_per_token_flex": 7.5e-06,
	    "input_cost_per_token_priority": 6e-06, "output_cost_per_token_priority": 3e-05,
	    "input_cost_per_token_above_200k_tokens_priority": 1.2e-05,
	    "input_cost_per_token_batches": 1.5e-06, "output_cost_per_token_batches": 7.5e-06,
	    "input_cost_per_token_cache_hit": 3e-07,
	    "input_cost_per_audio_token": 1e-05, "search_context_cost_per_query": {"low": 0.01},
	    "max_tokens": 8192
	  }
	}`
	res, cat := importString(t, list, Options{})
	const p, m = "anthropic", "m"
	for _, tc := range []struct {
		st   string
		n    int64
		want string
	}{
		{"", 1000, rates12("3", "0.3", "3.75", "6", "15", "20", "0.005")},
		{"", 200000, rates12("3", "0.3", "3.75", "6", "15", "20", "0.005")},
		{"", 200001, rates12("6", "0.6", "7.5", "12", "22.5", "20", "0.005")},
		// Service tier: its own rates; a rate it does not give that
		// defaults from one it gives (the cache read and write from input,
		// the 1-hour write from the write, reasoning from output) is the
		// standard rate scaled as the tier scales that one (flex: half of
		// 0.3, 3.75, 6 and 20), where LiteLLM would take the standard rate
		// whole.
		{"flex", 1000, rates12("1.5", "0.15", "1.875", "3", "7.5", "10", "0.005")},
		{"FLEX", 1000, rates12("1.5", "0.15", "1.875", "3", "7.5", "10", "0.005")},
		// Above the threshold: S's tier, the tier, S, the price; a rate S
		// has flat but not for the tier is the tier's standard rate scaled
		// as S scales the standard one (flex: half of 6, 0.6, 7.5, 12 and
		// 22.5; priority: twice 0.6, 7.5, 12 and 22.5), where LiteLLM
		// would take the standard long-context rate whole. Reasoning has
		// no long-context rate: S's own.
		{"flex", 200001, rates12("3", "0.3", "3.75", "6", "11.25", "10", "0.005")},
		{"priority", 200001, rates12("12", "1.2", "15", "24", "45", "40", "0.005")},
		{"priority", 10, rates12("6", "0.6", "7.5", "12", "30", "40", "0.005")},
		{"batch", 10, rates12("1.5", "0.15", "1.875", "3", "7.5", "10", "0.005")},
		{"unknown-tier", 10, rates12("3", "0.3", "3.75", "6", "15", "20", "0.005")},
	} {
		if got := ratesOf(t, cat, p, m, tc.st, tc.n); got != tc.want {
			t.Errorf("%s n=%d: rates %s, want %s", tc.st, tc.n, got, tc.want)
		}
	}
	s := res.Stats
	if s.Entries != 1 || s.Imported != 1 || s.WithLongContext != 1 || len(s.CacheHitMismatches) != 0 ||
		s.WithServiceTier["flex"] != 1 || s.WithServiceTier["priority"] != 1 || s.WithServiceTier["batch"] != 1 {
		t.Errorf("stats %+v", s)
	}
	if s.IgnoredFields["input_cost_per_audio_token"] != 1 || s.IgnoredFields["search_context_cost_per_query"] != 1 ||
		s.IgnoredFields["input_cost_per_token_cache_hit"] != 1 || s.IgnoredFields["max_tokens"] != 0 {
		t.Errorf("ignored fields %v", s.IgnoredFields)
	}
	if cat.Source() != DefaultSource || cat.Updated() != "2026-07-24" {
		t.Errorf("source %q updated %q", cat.Source(), cat.Updated())
	}
	if e := cat.Lookup(p, m); e.Source != "litellm:m" || !e.Prices[0].From.Equal(time.Unix(0, 0)) {
		t.Errorf("entry source %q from %s", e.Source, e.Prices[0].From)
	}
}

func TestDefaultsOmittedOnlyWhenInheritanceAgrees(t *testing.T) {
	t.Parallel()
	list := `{
	  "plain": {"litellm_provider": "openai", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
	    "cache_read_input_token_cost": 1e-06, "cache_creation_input_token_cost": 1e-06,
	    "output_cost_per_reasoning_token": 2e-06},
	  "inherited": {"litellm_provider": "openai", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
	    "cache_read_input_token_cost": 1e-06,
	    "input_cost_per_token_above_128k_tokens": 2e-06,
	    "input_cost_per_token_flex": 5e-07},
	  "embedding": {"litellm_provider": "openai", "mode": "embedding", "input_cost_per_token": 1.3e-07}
	}`
	res, cat := importString(t, list, Options{})
	y := string(res.YAML)
	plain := y[strings.Index(y, `model: "plain"`):]
	if strings.Contains(plain, "cached_input") || strings.Contains(plain, "cache_write") || strings.Contains(plain, "reasoning") {
		t.Errorf("defaults not omitted:\n%s", plain)
	}
	// "inherited": the long-context tier inherits cached_input 1 from the
	// price (not its own input), so the price must keep writing it; flex
	// gets it scaled as its input (half).
	for _, tc := range []struct {
		model, st string
		n         int64
		want      string
	}{
		{"inherited", "", 10, rates12("1", "1", "1", "1", "2", "2", "0")},
		{"inherited", "", 128001, rates12("2", "1", "2", "2", "2", "2", "0")},
		{"inherited", "flex", 10, rates12("0.5", "0.5", "0.5", "0.5", "2", "2", "0")},
		{"embedding", "", 10, rates12("0.13", "0.13", "0.13", "0.13", "0", "0", "0")},
	} {
		if got := ratesOf(t, cat, "openai", tc.model, tc.st, tc.n); got != tc.want {
			t.Errorf("%s %s n=%d: %s, want %s", tc.model, tc.st, tc.n, got, tc.want)
		}
	}
	inherited := y[strings.Index(y, `model: "inherited"`):strings.Index(y, `model: "plain"`)]
	if !strings.Contains(inherited, `cached_input: "1"`) {
		t.Errorf("cached_input omitted although the tier inherits it:\n%s", inherited)
	}
}

func TestTieredPricing(t *testing.T) {
	t.Parallel()
	list := `{
	  "dashscope/q": {"litellm_provider": "dashscope", "mode": "chat", "tiered_pricing": [
	    {"input_cost_per_token": 1.8e-06, "output_cost_per_token": 9e-06, "cache_read_input_token_cost": 0, "range": [32000.0, 128000]},
	    {"input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06, "cache_read_input_token_cost": 1e-07,
	     "output_cost_per_reasoning_token": 8e-06, "range": [0, 32000]},
	    {"input_cost_per_token": 3e-06, "range": [128000, 256000]}
	  ], "output_cost_per_token": 4e-06, "input_cost_per_token_flex": 1e-07},
	  "gap": {"litellm_provider": "dashscope", "mode": "chat", "tiered_pricing": [
	    {"input_cost_per_token": 1e-06, "range": [0, 32000]}, {"input_cost_per_token": 2e-06, "range": [64000, 128000]}]},
	  "exa_ai/search": {"litellm_provider": "exa_ai", "mode": "search", "tiered_pricing": [
	    {"input_cost_per_query": 0.005, "max_results_range": [0, 25]}]}
	}`
	res, cat := importString(t, list, Options{})
	for _, tc := range []struct {
		n    int64
		st   string
		want string
	}{
		{1, "", rates12("1", "0.1", "1", "1", "5", "8", "0")},
		{32000, "", rates12("1", "0.1", "1", "1", "5", "8", "0")},
		// A zero cache read rate falls back to the tier's input, as in LiteLLM.
		{32001, "", rates12("1.8", "1.8", "1.8", "1.8", "9", "9", "0")},
		// No output rate in the tier: the model's.
		{128001, "", rates12("3", "3", "3", "3", "4", "4", "0")},
		{5_000_000, "", rates12("3", "3", "3", "3", "4", "4", "0")},
		// LiteLLM ignores service tiers for a tiered entry.
		{100, "flex", rates12("1", "0.1", "1", "1", "5", "8", "0")},
	} {
		if got := ratesOf(t, cat, "dashscope", "q", tc.st, tc.n); got != tc.want {
			t.Errorf("n=%d %s: %s, want %s", tc.n, tc.st, got, tc.want)
		}
	}
	s := res.Stats
	if s.Imported != 1 || s.FromTieredPricing != 1 || s.Skipped["tiered_pricing ranges not contiguous"] != 1 ||
		s.Skipped["tiered_pricing not by tokens"] != 1 || s.SkippedByMode["chat"] != 1 || s.SkippedByMode["search"] != 1 ||
		s.IgnoredFields["input_cost_per_token_flex"] != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestNamingAndConflicts(t *testing.T) {
	t.Parallel()
	list := `{
	  "gemini/gemini-2.5-pro": {"litellm_provider": "gemini", "input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05},
	  "vertex_ai/claude-haiku-4-5": {"litellm_provider": "vertex_ai-anthropic_models", "input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06},
	  "openrouter/anthropic/claude-3-haiku": {"litellm_provider": "openrouter", "input_cost_per_token": 2.5e-07, "output_cost_per_token": 1.25e-06},
	  "fireworks_ai/accounts/fireworks/models/x": {"litellm_provider": "fireworks_ai", "input_cost_per_token": 9e-07, "output_cost_per_token": 9e-07},
	  "deepseek/deepseek-chat": {"litellm_provider": "deepseek", "input_cost_per_token": 2.7e-07, "output_cost_per_token": 1.1e-06},
	  "deepseek-chat": {"litellm_provider": "deepseek", "input_cost_per_token": 2.8e-07, "output_cost_per_token": 4.2e-07},
	  "gemini/x": {"litellm_provider": "gemini", "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06},
	  "palm/x": {"litellm_provider": "palm", "input_cost_per_token": 2e-06, "output_cost_per_token": 2e-06},
	  "anthropic.claude-v2:1": {"litellm_provider": "bedrock_converse", "input_cost_per_token": 8e-06, "output_cost_per_token": 2.4e-05},
	  "azure/": {"litellm_provider": "azure", "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06},
	  "text-completion-codestral/codestral-2405": {"litellm_provider": "text-completion-codestral", "input_cost_per_token": 0, "output_cost_per_token": 0}
	}`
	res, cat := importString(t, list, Options{})
	for _, tc := range []struct{ provider, model, input, source string }{
		{"google", "gemini-2.5-pro", "1.25", "gemini/gemini-2.5-pro"},
		{"vertex_ai", "claude-haiku-4-5", "1", "vertex_ai/claude-haiku-4-5"},
		{"openrouter", "anthropic/claude-3-haiku", "0.25", "openrouter/anthropic/claude-3-haiku"},
		{"fireworks", "accounts/fireworks/models/x", "0.9", "fireworks_ai/accounts/fireworks/models/x"},
		// The key without a prefix wins, wherever it is in the file.
		{"deepseek", "deepseek-chat", "0.28", "deepseek-chat"},
		{"deepseek", "deepseek/deepseek-chat", "0.27", "deepseek/deepseek-chat"},
		// Both prefixed: the first in the file wins.
		{"google", "x", "1", "gemini/x"},
		{"google", "palm/x", "2", "palm/x"},
		{"bedrock", "anthropic.claude-v2:1", "8", "anthropic.claude-v2:1"},
		{"azure", "azure/", "1", "azure/"},
		{"codestral", "codestral-2405", "0", "text-completion-codestral/codestral-2405"},
	} {
		e := cat.Lookup(tc.provider, tc.model)
		if e == nil || e.Model != tc.model || e.Source != "litellm:"+tc.source || e.Prices[0].Input != pricing.MustParsePico(tc.input) {
			t.Errorf("%s/%s: entry %+v, want input %s from %s", tc.provider, tc.model, e, tc.input, tc.source)
		}
	}
	if len(cat.Entries()) != 11 || res.Stats.Imported != 11 {
		t.Errorf("%d entries, imported %d; want 11", len(cat.Entries()), res.Stats.Imported)
	}
	want := []Conflict{
		{Provider: "deepseek", Model: "deepseek-chat", Winner: "deepseek-chat", Loser: "deepseek/deepseek-chat"},
		{Provider: "google", Model: "x", Winner: "gemini/x", Loser: "palm/x"},
	}
	if len(res.Stats.Conflicts) != len(want) || res.Stats.Conflicts[0] != want[0] || res.Stats.Conflicts[1] != want[1] {
		t.Errorf("conflicts %+v, want %+v", res.Stats.Conflicts, want)
	}
	// Sorted by provider, then model.
	var last string
	for _, e := range cat.Entries() {
		k := e.Provider + "\x00" + e.Model
		if k < last {
			t.Errorf("entry %s/%s out of order", e.Provider, e.Model)
		}
		last = k
	}
}

func TestProviderName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"vertex_ai": "vertex_ai", "vertex_ai-language-models": "vertex_ai", "vertex_ai-anthropic_models": "vertex_ai",
		"bedrock_converse": "bedrock", "bedrock": "bedrock", "gemini": "google", "palm": "google",
		"text-completion-openai": "openai", "azure_text": "azure", "together_ai": "together",
		"fireworks_ai": "fireworks", "fireworks_ai-embedding-models": "fireworks", "cohere_chat": "cohere",
		"text-completion-codestral": "codestral", "text-completion-inception": "inception",
		"openai": "openai", "xai": "xai", "vertex_aix": "vertex_aix",
	} {
		if got := ProviderName(in); got != want {
			t.Errorf("ProviderName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestProviderTableInREADME keeps the README's provider table and
// providerNames equal.
func TestProviderTableInREADME(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	if i := strings.Index(section, "### Providers"); i >= 0 {
		section = section[i:]
	}
	if i := strings.Index(section, "### Model names"); i >= 0 {
		section = section[:i]
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9_.*-]+)` \\| `([a-z0-9_.-]+)` \\|")
	got := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		got[m[1]] = m[2]
	}
	for k, v := range providerNames {
		if got[k] != v {
			t.Errorf("README maps %q to %q, the code to %q", k, got[k], v)
		}
	}
	for k, v := range got {
		if k != "vertex_ai-*" && providerNames[k] != v {
			t.Errorf("README maps %q to %q, the code to %q", k, v, providerNames[k])
		}
	}
	if got["vertex_ai-*"] != "vertex_ai" {
		t.Errorf("README does not map vertex_ai-* to vertex_ai")
	}
}

func TestImportErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, list string
		want       []string // substrings of the error
		strictOnly bool     // rounded, not an error, by default
	}{
		{"negative", `{"m": {"litellm_provider": "p", "input_cost_per_token": -1e-06}}`,
			[]string{`model "m"`, `field "input_cost_per_token" = -1e-06`, "negative"}, false},
		{"string", `{"m": {"litellm_provider": "p", "input_cost_per_token": 1e-06, "output_cost_per_token": "2e-06"}}`,
			[]string{`model "m"`, `field "output_cost_per_token" = "2e-06"`, "not a JSON number"}, false},
		{"null", `{"m": {"litellm_provider": "p", "input_cost_per_token": null}}`,
			[]string{`field "input_cost_per_token" = null`}, false},
		{"too large", `{"m": {"litellm_provider": "p", "input_cost_per_token": 2}}`,
			[]string{`field "input_cost_per_token" = 2`, "exceeds"}, false},
		{"inexact", `{"m": {"litellm_provider": "p", "input_cost_per_token": 1e-06, "cache_read_input_token_cost_above_200k_tokens": 1e-20, "input_cost_per_token_above_200k_tokens": 2e-06}}`,
			[]string{`field "cache_read_input_token_cost_above_200k_tokens" = 1e-20`, "14 fraction digits"}, true},
		{"inexact tier", `{"m": {"litellm_provider": "p", "tiered_pricing": [{"range": [0, 10], "input_cost_per_token": 1.0000000000000001e-06}]}}`,
			[]string{`model "m": field "tiered_pricing[0].input_cost_per_token" = 1.0000000000000001e-06`, "16 fraction digits"}, true},
		{"inexact cache hit", `{"m": {"litellm_provider": "p", "input_cost_per_token": 1e-06, "input_cost_per_token_cache_hit": 1.25e-19}}`,
			[]string{`model "m": field "input_cost_per_token_cache_hit" = 1.25e-19`}, true},
		{"negative cache hit", `{"m": {"litellm_provider": "p", "input_cost_per_token": 1e-06, "input_cost_per_token_cache_hit": -1e-07}}`,
			[]string{`model "m": field "input_cost_per_token_cache_hit" = -1e-07`, "negative"}, false},
		{"inexact and too large", `{"m": {"litellm_provider": "p", "input_cost_per_token": 1.0000000000000000001}}`,
			[]string{`field "input_cost_per_token" = 1.0000000000000000001`, "exceeds"}, false},
		{"tier", `{"m": {"litellm_provider": "p", "tiered_pricing": [{"range": [0, 10], "input_cost_per_token": "x"}]}}`,
			[]string{`field "tiered_pricing[0].input_cost_per_token" = "x"`}, false},
		{"duplicate threshold", `{"m": {"litellm_provider": "p", "input_cost_per_token": 1e-06, "input_cost_per_token_above_200k_tokens": 2e-06, "input_cost_per_token_above_200000_tokens": 3e-06}}`,
			[]string{"the same price as field"}, false},
		{"duplicate key", `{"m": {}, "m": {}}`, []string{`duplicate key "m"`}, false},
		{"not an object", `[1, 2]`, []string{"want a JSON object"}, false},
		{"trailing", `{} {}`, []string{"data after the top-level object"}, false},
		{"syntax", `{"m": {"input_cost_per_token": 1e-06,}}`, []string{"cannot decode"}, false},
		{"empty", ``, []string{"cannot decode the LiteLLM price list: it is empty"}, false},
		{"truncated", `{"m": {"litellm_provider": "p", "input_cost_per_token": 1e-06}`,
			[]string{"cannot decode the LiteLLM price list: it ends at byte 62, inside a value (a truncated download?)"}, false},
		{"nothing importable", `{"m": {"litellm_provider": "", "input_cost_per_token": 1e-06}, "n": {"litellm_provider": "p"}}`,
			[]string{"none of its 2 entries could be imported (skipped: no litellm_provider: 1; "}, false},
	} {
		_, err := Import(strings.NewReader(tc.list), Options{Strict: true})
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, w)
			}
		}
		_, err = Import(strings.NewReader(tc.list), Options{})
		if tc.strictOnly != (err == nil) {
			t.Errorf("%s: without Strict, error %v", tc.name, err)
		}
	}
	var pe *PriceError
	_, err := Import(strings.NewReader(`{"k": {"litellm_provider": "p", "input_cost_per_token": 1e-19}}`), Options{Strict: true})
	var ie *InexactError
	if !errors.As(err, &pe) || pe.Key != "k" || pe.Field != "input_cost_per_token" || !errors.As(err, &ie) || ie.Digits != 13 {
		t.Errorf("err = %v, want a PriceError with an InexactError", err)
	}
	// Rounding does not excuse another problem of the entry.
	if _, err := Import(strings.NewReader(`{"k": {"litellm_provider": "p", "input_cost_per_token": 1e-19, "output_cost_per_token": -1}}`), Options{}); err == nil {
		t.Error("accepted a negative price next to a rounded one")
	}
	if _, err := Import(strings.NewReader(`{}`), Options{Updated: "yesterday"}); err == nil {
		t.Error("accepted updated \"yesterday\"")
	}
}

func TestImportBounded(t *testing.T) {
	t.Parallel()
	// Import reads through readList with MaxInputBytes; the bound is
	// checked at 1 MiB, since 64 MiB took 7 s under the race detector.
	const limit = 1 << 20
	over := func() io.Reader {
		return io.MultiReader(strings.NewReader("{"), io.LimitReader(zeros{}, limit), strings.NewReader("}"))
	}
	if _, err := readList(over(), limit); err == nil || !strings.Contains(err.Error(), "larger than 1048576 bytes") {
		t.Errorf("err = %v, want too large", err)
	}
	if data, err := readList(io.LimitReader(over(), limit), limit); err != nil || len(data) != limit {
		t.Errorf("%d bytes, %v; want the limit's %d read", len(data), err, limit)
	}
}

// zeros reads spaces, JSON whitespace.
type zeros struct{}

// spaces is what zeros copies from: a byte at a time took 15 s under the
// race detector for 64 MiB of whitespace.
var spaces = bytes.Repeat([]byte{' '}, 64<<10)

func (zeros) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], spaces)
	}
	return n, nil
}

func TestOptions(t *testing.T) {
	t.Parallel()
	list := `{"last_updated": "garbage", "m": {"litellm_provider": "p", "input_cost_per_token": 1e-06}}`
	res, cat := importString(t, list, Options{From: time.Date(2026, 7, 24, 0, 0, 0, 0, time.UTC), Source: "mine", Updated: "2026-07-25"})
	if cat.Source() != "mine" || cat.Updated() != "2026-07-25" || !bytes.Contains(res.YAML, []byte(`from: "2026-07-24"`)) {
		t.Errorf("options not applied:\n%s", res.YAML)
	}
	e := schemas.Event{Provider: "p", Model: "m", Timestamp: time.Date(2026, 7, 23, 0, 0, 0, 0, time.UTC), InputTokens: 1}
	if _, ok := cat.Total(&e); ok {
		t.Error("an event before From is priced")
	}
	res, cat = importString(t, list, Options{From: time.Date(2026, 7, 24, 12, 30, 0, 0, time.FixedZone("x", 3600))})
	if cat.Updated() != "" || !bytes.Contains(res.YAML, []byte(`from: "2026-07-24T11:30:00Z"`)) {
		t.Errorf("from or updated wrong:\n%s", res.YAML)
	}
}

func TestYAMLQuoting(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"a: b", "#x", "@cf/meta/llama", "yes", "1e3", "null", "~", "a\"b\\c",
		"\u2028", "é", "- x", "[x]", "{x}", "*a", "&a", "!t", "%x", "`x`", "'q'", " lead", "trail ", ">", "|", "emoji 😀"} {
		list, _ := json.Marshal(map[string]any{name: map[string]any{"litellm_provider": "p", "input_cost_per_token": json.Number("1e-06")}})
		_, cat := importString(t, string(list), Options{})
		if e := cat.Lookup("p", name); e == nil {
			t.Errorf("model %q not found after the round trip", name)
		}
	}
	// Names no event may carry are skipped: the catalog would refuse them.
	for _, name := range []string{"x\ny", "tab\there", "\x01\x7f", "\u0085"} {
		good := map[string]any{"litellm_provider": "p", "input_cost_per_token": json.Number("1e-06")}
		for _, obj := range []map[string]any{
			{name: map[string]any{"litellm_provider": "p", "input_cost_per_token": json.Number("1e-06")}, "good": good},
			{"m": map[string]any{"litellm_provider": name, "input_cost_per_token": json.Number("1e-06")}, "good": good},
		} {
			list, _ := json.Marshal(obj)
			res, _ := importString(t, string(list), Options{})
			if res.Stats.Imported != 1 || res.Stats.Skipped["control character or invalid UTF-8 in its key or litellm_provider"] != 1 {
				t.Errorf("%q: imported %d, skipped %v; want it skipped", name, res.Stats.Imported, res.Stats.Skipped)
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	list, err := os.ReadFile(sharedList)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Import(bytes.NewReader(list), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Import(bytes.NewReader(list), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.YAML, b.YAML) {
		t.Error("two imports of the same list differ")
	}
}

// TestRoundedPrices: by default a price with more than 12 fraction digits
// per 1M tokens is rounded half to even, the entry imported, the price
// listed in the stats and the catalog's header; with Strict it is an error.
func TestRoundedPrices(t *testing.T) {
	t.Parallel()
	list := `{
	  "databricks/databricks-claude-3-7-sonnet": {"litellm_provider": "databricks", "mode": "chat",
	    "input_cost_per_token": 2.9999900000000002e-06, "output_cost_per_token": 1.5000020000000002e-05},
	  "half": {"litellm_provider": "p", "input_cost_per_token": 1.5e-18, "output_cost_per_token": 2.5e-18,
	    "input_cost_per_request": 0.0000000000005},
	  "tiny": {"litellm_provider": "p", "input_cost_per_token": 1e-19},
	  "q\"x": {"litellm_provider": "p", "tiered_pricing": [{"range": [0, 10], "input_cost_per_token": 1.0000000000000001e-06}]},
	  "exact": {"litellm_provider": "p", "input_cost_per_token": 1e-18}
	}`
	res, cat := importString(t, list, Options{})
	s := res.Stats
	if s.Imported != 5 || len(s.Skipped) != 0 {
		t.Errorf("imported %d, skipped %v; want 5, none", s.Imported, s.Skipped)
	}
	want := []RoundedPrice{
		{"databricks/databricks-claude-3-7-sonnet", "input_cost_per_token", "2.9999900000000002e-06", "2.99999"},
		{"databricks/databricks-claude-3-7-sonnet", "output_cost_per_token", "1.5000020000000002e-05", "15.00002"},
		{"half", "input_cost_per_request", "0.0000000000005", "0"},
		{"half", "input_cost_per_token", "1.5e-18", "0.000000000002"},
		{"half", "output_cost_per_token", "2.5e-18", "0.000000000002"},
		{"tiny", "input_cost_per_token", "1e-19", "0"},
		{"q\"x", "tiered_pricing[0].input_cost_per_token", "1.0000000000000001e-06", "1"},
	}
	if len(s.Rounded) != len(want) {
		t.Fatalf("rounded %+v, want %+v", s.Rounded, want)
	}
	for i := range want {
		if s.Rounded[i] != want[i] {
			t.Errorf("rounded[%d] = %+v, want %+v", i, s.Rounded[i], want[i])
		}
	}
	if got := ratesOf(t, cat, "databricks", "databricks-claude-3-7-sonnet", "", 10); got != rates12("2.99999", "2.99999", "2.99999", "2.99999", "15.00002", "15.00002", "0") {
		t.Errorf("databricks rates %s", got)
	}
	if got := ratesOf(t, cat, "p", "q\"x", "", 10); got != rates12("1", "1", "1", "1", "0", "0", "0") {
		t.Errorf("tiered rates %s", got)
	}
	y := string(res.YAML)
	for _, line := range []string{
		"#   databricks/databricks-claude-3-7-sonnet: input_cost_per_token 2.9999900000000002e-06 -> 2.99999, output_cost_per_token 1.5000020000000002e-05 -> 15.00002\n",
		"#   half: input_cost_per_request 0.0000000000005 -> 0, input_cost_per_token 1.5e-18 -> 0.000000000002, output_cost_per_token 2.5e-18 -> 0.000000000002\n",
		"#   \"q\\\"x\": tiered_pricing[0].input_cost_per_token 1.0000000000000001e-06 -> 1\n",
	} {
		if !strings.Contains(y, line) {
			t.Errorf("the header lacks %q:\n%s", line, y[:strings.Index(y, "source:")])
		}
	}
	// Strict: every inexact price is an error naming the key and field.
	_, err := Import(strings.NewReader(list), Options{Strict: true})
	if err == nil {
		t.Fatal("Strict accepted inexact prices")
	}
	for _, r := range want {
		if !strings.Contains(err.Error(), fmt.Sprintf("model %q: field %q = %s: has ", r.Key, r.Field, r.Original)) {
			t.Errorf("Strict: error does not name %q %s:\n%v", r.Key, r.Field, err)
		}
	}
}

// TestCacheHit: input_cost_per_token_cache_hit is the cache-read price of
// an entry without cache_read_input_token_cost, and ignored (compared)
// next to one.
func TestCacheHit(t *testing.T) {
	t.Parallel()
	list := `{
	  "deepseek/deepseek-coder": {"litellm_provider": "deepseek", "input_cost_per_token": 1.4e-07, "output_cost_per_token": 2.8e-07,
	    "input_cost_per_token_cache_hit": 1.4e-08},
	  "same": {"litellm_provider": "deepseek", "input_cost_per_token": 2.8e-07, "cache_read_input_token_cost": 2.8e-08,
	    "input_cost_per_token_cache_hit": 2.8e-08},
	  "differs": {"litellm_provider": "deepseek", "input_cost_per_token": 2.8e-07, "cache_read_input_token_cost": 2.8e-08,
	    "input_cost_per_token_cache_hit": 1e-08},
	  "tiered": {"litellm_provider": "deepseek", "input_cost_per_token_cache_hit": 1e-08, "tiered_pricing": [
	    {"range": [0, 10], "input_cost_per_token": 1e-06}]},
	  "above": {"litellm_provider": "deepseek", "input_cost_per_token": 1e-06, "input_cost_per_token_cache_hit": 1e-07,
	    "input_cost_per_token_above_128k_tokens": 2e-06, "cache_read_input_token_cost_above_128k_tokens": 3e-07}
	}`
	res, cat := importString(t, list, Options{})
	for _, tc := range []struct {
		model string
		n     int64
		want  string
	}{
		{"deepseek-coder", 10, rates12("0.14", "0.014", "0.14", "0.14", "0.28", "0.28", "0")},
		{"same", 10, rates12("0.28", "0.028", "0.28", "0.28", "0", "0", "0")},
		{"differs", 10, rates12("0.28", "0.028", "0.28", "0.28", "0", "0", "0")},
		// A tiered_pricing table replaces the entry's own keys.
		{"tiered", 10, rates12("1", "1", "1", "1", "0", "0", "0")},
		// The cache-hit price is the price's; a tier's cache read wins.
		{"above", 10, rates12("1", "0.1", "1", "1", "0", "0", "0")},
		{"above", 128001, rates12("2", "0.3", "2", "2", "0", "0", "0")},
	} {
		if got := ratesOf(t, cat, "deepseek", tc.model, "", tc.n); got != tc.want {
			t.Errorf("%s n=%d: %s, want %s", tc.model, tc.n, got, tc.want)
		}
	}
	s := res.Stats
	if strings.Join(s.CacheHitAsCacheRead, " ") != "deepseek/deepseek-coder above" || strings.Join(s.CacheHitMismatches, " ") != "differs" ||
		s.IgnoredFields[cacheHitKey] != 3 {
		t.Errorf("as cache read %v, mismatches %v, ignored %d", s.CacheHitAsCacheRead, s.CacheHitMismatches, s.IgnoredFields[cacheHitKey])
	}
}

func TestDisplayKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"gpt-5": "gpt-5", "databricks/x:1@y": "databricks/x:1@y", "": `""`, "a b": `"a b"`, "a\nb": `"a\nb"`,
		"é": `"\u00e9"`, "\u2028": `"\u2028"`, `q"`: `"q\""`, "#x": "#x",
	} {
		if got := DisplayKey(in); got != want {
			t.Errorf("DisplayKey(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestFieldNamesAreCatalogFields: the importer writes only rate fields the
// catalog declares (pricing.RateFields is the one list).
func TestFieldNamesAreCatalogFields(t *testing.T) {
	t.Parallel()
	for _, name := range fieldNames {
		if !slices.Contains(pricing.RateFields(), name) {
			t.Errorf("importer field %q is not a catalog rate field %v", name, pricing.RateFields())
		}
	}
}

// A service tier whose only rate is what the default would give (a flex
// cache-read price equal to the input price) keeps it: dropped as a
// default, it left `flex: {}`, a catalog that does not load, while import
// exited 0.
func TestServiceTierKeepsItsLastField(t *testing.T) {
	t.Parallel()
	list := `{
	  "last_updated": "2026-07-24T18:23:43.215560+00:00",
	  "m": {
	    "litellm_provider": "openai", "mode": "chat",
	    "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
	    "cache_read_input_token_cost_flex": 1e-06
	  }
	}`
	_, cat := importString(t, list, Options{})
	if got, want := ratesOf(t, cat, "openai", "m", "flex", 1000), rates12("1", "1", "1", "1", "2", "2", "0"); got != want {
		t.Errorf("flex rates %s, want %s", got, want)
	}
}
