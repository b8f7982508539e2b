package pricing

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/schemas"
)

func TestParseErrorMessage(t *testing.T) {
	const doc = `models:
  - provider: openai
    model: gpt-4o
    prices:
      - from: 2024-08-06
        input: "2,50"
        output: "10"
`
	_, err := Parse("prices.yaml", []byte(doc))
	const want = `prices.yaml:6: model "gpt-4o" (entry 1): cannot parse price "2,50" for field "input": not a decimal number`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
	var pe *ParseError
	if !errors.As(err, &pe) || pe.File != "prices.yaml" || pe.Line != 6 || pe.Field != "input" || pe.Item != `model "gpt-4o" (entry 1)` {
		t.Errorf("ParseError = %+v", pe)
	}
}

func TestParseRejects(t *testing.T) {
	// entry builds a one-entry catalog; its lines are:
	// 1 models:, 2 - provider, 3 model, 4 prices:, 5 - from, 6.. the price fields.
	entry := func(fields string) string {
		return "models:\n  - provider: p\n    model: m\n    prices:\n      - from: 2024-08-06\n" + fields
	}
	const io = "        input: \"1\"\n        output: \"2\"\n"
	for _, tc := range []struct {
		name string
		doc  string
		want []string // each must appear in the error
	}{
		{"typo in a price field", entry("        input: \"1\"\n        ouput: \"2\"\n"),
			[]string{`test.yaml:7: model "m" (entry 1): unknown field "ouput" in a price (want one of from, input,`, `test.yaml:5: model "m" (entry 1): missing field "output"`}},
		{"typo in an entry field", "models:\n  - provider: p\n    modle: m\n    prices: []\n",
			[]string{`test.yaml:3: entry 1: unknown field "modle" in a model entry`}},
		{"typo at the top level", "model:\n  - provider: p\n",
			[]string{`test.yaml:1: unknown field "model" in the catalog (want one of source, updated, providers, models, tenants)`, `test.yaml:1: missing field "models"`}},
		{"missing provider", "models:\n  - model: m\n    prices:\n      - from: 2024-08-06\n" + io,
			[]string{`test.yaml:2: model "m" (entry 1): missing field "provider"`}},
		{"empty provider", "models:\n  - provider: \"\"\n    model: m\n    prices:\n      - from: 2024-08-06\n" + io,
			[]string{`test.yaml:2: model "m" (entry 1): field "provider" is empty`}},
		// Names no event may carry (schemas.ValidText): entries that
		// could never match were accepted without a word.
		{"control character in a provider", "models:\n  - provider: \"open\\x1bai\"\n    model: m\n    prices:\n      - from: 2024-08-06\n" + io,
			[]string{`test.yaml:2: model "m" (entry 1): field "provider" = "open\x1bai" holds a control character or invalid UTF-8, which no event may carry`}},
		{"tab in a model", "models:\n  - provider: p\n    model: \"gpt\\t4o\"\n    prices:\n      - from: 2024-08-06\n" + io,
			[]string{`test.yaml:3: model "gpt\t4o" (entry 1): field "model" = "gpt\t4o" holds a control character`}},
		{"tab in a tenant", entry(io) + "tenants:\n  \"ac\\tme\": { discount: \"0.1\" }\n",
			[]string{`test.yaml:9: field "tenants" = "ac\tme" holds a control character`}},
		{"empty tenant name", entry(io) + "tenants:\n  \"\": { discount: \"0.1\" }\n",
			[]string{`test.yaml:9: a tenant name in "tenants" is empty`}},
		{"control character in a provider's defaults", "providers:\n  \"p\\x01\": { service_tiers: {} }\n" + entry(io),
			[]string{`field "providers" = "p\x01" holds a control character`}},
		{"both model and match", "models:\n  - provider: p\n    model: m\n    match: '^m'\n    prices:\n      - from: 2024-08-06\n" + io,
			[]string{`test.yaml:4: model "m" (entry 1): has both "model" and "match"; want exactly one`}},
		{"neither model nor match", "models:\n  - provider: p\n    prices:\n      - from: 2024-08-06\n" + io,
			[]string{`test.yaml:2: entry 1: has neither "model" nor "match"; want exactly one`}},
		{"invalid regex", "models:\n  - provider: p\n    match: '^(a'\n    prices:\n      - from: 2024-08-06\n" + io,
			[]string{`test.yaml:3: match "^(a" (entry 1): cannot compile regex "^(a" for field "match": error parsing regexp: missing closing )`}},
		{"missing prices", "models:\n  - provider: p\n    model: m\n",
			[]string{`test.yaml:2: model "m" (entry 1): missing field "prices"`}},
		{"empty prices", "models:\n  - provider: p\n    model: m\n    prices: []\n",
			[]string{`test.yaml:4: model "m" (entry 1): field "prices" is empty`}},
		{"missing from", "models:\n  - provider: p\n    model: m\n    prices:\n      - input: \"1\"\n        output: \"2\"\n",
			[]string{`test.yaml:5: model "m" (entry 1): missing field "from"`}},
		{"unparsable from", "models:\n  - provider: p\n    model: m\n    prices:\n      - from: 2024-13-01\n" + io,
			[]string{`test.yaml:5: model "m" (entry 1): cannot parse date "2024-13-01" for field "from": want YYYY-MM-DD or RFC 3339`}},
		{"from not a date", "models:\n  - provider: p\n    model: m\n    prices:\n      - from: last tuesday\n" + io,
			[]string{`test.yaml:5: model "m" (entry 1): cannot parse date "last tuesday" for field "from"`}},
		{"duplicate from", entry(io) + "      - from: 2024-08-06T00:00:00Z\n" + io,
			[]string{`test.yaml:8: model "m" (entry 1): duplicate from 2024-08-06T00:00:00Z (also on line 5)`}},
		{"duplicate model", entry(io) + "  - provider: p\n    model: m\n    prices:\n      - from: 2025-01-01\n" + io,
			[]string{`test.yaml:8: model "m" (entry 2): duplicate model "m" for provider "p" (first on line 2)`}},
		{"duplicate regex", "models:\n  - provider: p\n    match: x\n    prices:\n      - from: 2024-08-06\n" + io + "  - provider: p\n    match: x\n    prices:\n      - from: 2024-08-06\n" + io,
			[]string{`test.yaml:8: match "x" (entry 2): duplicate match "x" for provider "p" (first on line 2)`}},
		{"negative price", entry("        input: \"-1\"\n        output: \"2\"\n"),
			[]string{`test.yaml:6: model "m" (entry 1): price "-1" for field "input" must not be negative`}},
		{"too many fraction digits", entry("        input: \"1\"\n        output: \"2\"\n        cached_input: \"0.0000000000001\"\n"),
			[]string{`test.yaml:8: model "m" (entry 1): cannot parse price "0.0000000000001" for field "cached_input": more than 12 fraction digits`}},
		{"price above the maximum", entry("        input: \"1\"\n        output: \"2\"\n        gpu_hour: \"1000000.000000000001\"\n"),
			[]string{`test.yaml:8: model "m" (entry 1): price "1000000.000000000001" for field "gpu_hour" exceeds the maximum 1000000`}},
		{"float notation", entry("        input: 1e-6\n        output: \"2\"\n"),
			[]string{`test.yaml:6: model "m" (entry 1): cannot parse price "1e-6" for field "input"`}},
		{"missing input", entry("        output: \"2\"\n"),
			[]string{`test.yaml:5: model "m" (entry 1): missing field "input"`}},
		{"missing output", entry("        input: \"2\"\n"),
			[]string{`test.yaml:5: model "m" (entry 1): missing field "output"`}},
		{"null price", entry("        input:\n        output: \"2\"\n"),
			[]string{`test.yaml:6: model "m" (entry 1): field "input" is empty`}},
		{"price is a mapping", entry("        input: {usd: 1}\n        output: \"2\"\n"),
			[]string{`test.yaml:6: model "m" (entry 1): field "input" must be a string, not a mapping`}},
		{"duplicate field", entry("        input: \"1\"\n        input: \"2\"\n        output: \"2\"\n"),
			[]string{`test.yaml:7: model "m" (entry 1): duplicate field "input" (first on line 6)`}},
		{"discount above 1", entry(io) + "tenants:\n  acme: { discount: \"1.5\" }\n",
			[]string{`test.yaml:9: tenant "acme": discount "1.5" for field "discount" must be between 0 and 1`}},
		{"negative discount", entry(io) + "tenants:\n  acme:\n    discount: \"-0.1\"\n",
			[]string{`test.yaml:10: tenant "acme": discount "-0.1" for field "discount" must be between 0 and 1`}},
		{"unparsable discount", entry(io) + "tenants:\n  acme: { discount: 10% }\n",
			[]string{`test.yaml:9: tenant "acme": cannot parse discount "10%" for field "discount"`}},
		{"missing discount", entry(io) + "tenants:\n  acme: {}\n",
			[]string{`test.yaml:9: tenant "acme": missing field "discount"`}},
		{"typo in a tenant", entry(io) + "tenants:\n  acme: { disount: \"0.1\" }\n",
			[]string{`test.yaml:9: tenant "acme": unknown field "disount" in a tenant (want one of discount)`}},
		{"duplicate tenant", entry(io) + "tenants:\n  acme: { discount: \"0.1\" }\n  acme: { discount: \"0.2\" }\n",
			[]string{`test.yaml:10: tenant "acme": duplicate tenant (first on line 9)`}},
		{"tenants not a mapping", entry(io) + "tenants: [acme]\n",
			[]string{`test.yaml:8: field "tenants" must be a mapping of tenant names, not a list`}},
		{"models not a list", "models: {provider: p}\n",
			[]string{`test.yaml:1: field "models" must be a list, not a mapping`}},
		{"empty models", "models: []\n", []string{`test.yaml:1: field "models" is empty`}},
		{"empty file", "", []string{`test.yaml: catalog is empty`}},
		{"comments only", "# nothing\n", []string{`test.yaml: catalog is empty`}},
		{"not a mapping", "- a\n- b\n", []string{`test.yaml:1: the catalog must be a mapping, not a list`}},
		{"invalid YAML", "models: [\n", []string{`test.yaml:1: cannot parse YAML: did not find expected node content`}},
		{"tab indentation", "models:\n\t- provider: p\n", []string{`test.yaml:2: cannot parse YAML: found character that cannot start any token`}},
		{"typo next to a model", "models:\n  - provider: p\n    prices: []\n    model: m\n    pirces: x\n",
			[]string{`test.yaml:3: model "m" (entry 1): field "prices" is empty`, `test.yaml:5: model "m" (entry 1): unknown field "pirces"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("test.yaml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tc.doc)
			}
			if c != nil {
				t.Error("Parse returned a catalog with an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	const doc = `models:
  - provider: p
    model: a
    prices:
      - from: 2024-08-06
        input: "x"
        output: "1"
  - provider: p
    model: b
    prices:
      - from: someday
        input: "1"
        output: "1"
tenants:
  t: { discount: "2" }
`
	_, err := Parse("test.yaml", []byte(doc))
	if err == nil {
		t.Fatal("Parse accepted three problems")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"test.yaml:6: ", "test.yaml:11: ", "test.yaml:15: "}
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("problem %d = %q, want prefix %q", i, lines[i], w)
		}
	}
}

func TestParseCapsProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString("models:\n")
	for range 200 {
		b.WriteString("  - provider: p\n")
	}
	_, err := Parse("test.yaml", []byte(b.String()))
	if err == nil {
		t.Fatal("accepted")
	}
	n := strings.Count(err.Error(), "\n") + 1
	if n != maxProblems+1 || !strings.Contains(err.Error(), "too many problems, stopping here") {
		t.Errorf("reported %d problems, want %d and a note", n, maxProblems+1)
	}
}

func TestParseAccepts(t *testing.T) {
	const doc = `
models:
  - provider: p
    model: m
    prices:
      - from: 2024-08-06T10:00:00+02:00   # RFC 3339 with an offset: 08:00 UTC
        input: 2.50                       # plain YAML numbers are read as exact decimals
        output: 0.1
        request: "0.000000000001"
      - from: 2024-01-01
        input: &in "1.25"
        output: "3"
  - provider: p
    model: m2                             # same prices through an alias
    prices: &p2
      - from: 2024-01-01
        input: *in
        output: "1"
  - provider: q
    model: m2                             # same model, other provider: not a duplicate
    prices: *p2
tenants:
  zero: { discount: "0" }
  all: { discount: "1.000000000000" }
`
	c := mustParse(t, doc)
	e := c.Lookup("p", "m")
	if e == nil || len(e.Prices) != 2 {
		t.Fatalf("entry m = %+v", e)
	}
	p := e.Prices[1]
	if !p.From.Equal(time.Date(2024, 8, 6, 8, 0, 0, 0, time.UTC)) || p.From.Location() != time.UTC {
		t.Errorf("from = %s, want 2024-08-06T08:00:00Z", p.From)
	}
	if p.Input.String() != "2.500000000000" || p.Output.String() != "0.100000000000" || p.Request.String() != "0.000000000001" {
		t.Errorf("price = %s / %s / %s", p.Input, p.Output, p.Request)
	}
	if p.CachedInput != p.Input || p.CacheWrite != p.Input || p.Reasoning != p.Output || !p.GPUHour.IsZero() {
		t.Errorf("defaults not applied: %+v", p)
	}
	if q := c.Lookup("q", "m2"); q == nil || q.Prices[0].Input.String() != "1.250000000000" {
		t.Errorf("aliased entry = %+v", q)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "prices.yaml")
	if err := os.WriteFile(good, DefaultYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != good || len(c.Entries()) != len(Default().Entries()) {
		t.Errorf("Load: name %q, %d entries", c.Name(), len(c.Entries()))
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("models:\n  - provider: p\n    model: m\n    prices:\n      - from: 2024-08-06\n        input: \"1\"\n        ouput: \"2\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad+`:7: model "m" (entry 1): unknown field "ouput"`) {
		t.Errorf("Load(bad) = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "cannot open price catalog") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v", err)
	}
}

func TestDefaultCatalog(t *testing.T) {
	c := Default()
	if c != Default() {
		t.Error("Default is parsed more than once")
	}
	if c.Name() != DefaultName {
		t.Errorf("name = %q", c.Name())
	}
	if !strings.Contains(c.Source(), "LiteLLM") || c.Updated() == "" {
		t.Errorf("source %q, updated %q: want the generated catalog's provenance", c.Source(), c.Updated())
	}
	entries := c.Entries()
	if len(entries) < 2000 {
		t.Fatalf("default catalog has %d entries, want the ≥ 2000 of the generated catalog", len(entries))
	}
	providers := map[string]int{}
	for _, e := range entries {
		providers[e.Provider]++
		if (e.Model == "") == (e.Match == "") {
			t.Errorf("entry %d: model %q, match %q", e.Index, e.Model, e.Match)
		}
		if len(e.Prices) == 0 {
			t.Errorf("entry %d (%s) has no prices", e.Index, e.Name())
		}
		for _, p := range e.Prices {
			for _, v := range []Pico{p.Input, p.CachedInput, p.CacheWrite, p.CacheWrite1h, p.Output, p.Reasoning, p.GPUHour, p.Request} {
				if v.Sign() < 0 || v.Cmp(maxPrice) > 0 {
					t.Errorf("entry %d (%s) line %d: price %s out of range", e.Index, e.Name(), p.Line, v)
				}
			}
			// Imported prices apply from 1970 (the list has no dates);
			// hand-written ones carry their real dates.
			if y := p.From.Year(); y != 1970 && (y < 2022 || p.From.After(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))) {
				t.Errorf("entry %d (%s): implausible from %s", e.Index, e.Name(), p.From)
			}
		}
	}
	for _, p := range []string{"openai", "anthropic", "google", "mistral", "deepseek", "groq", "together", "fireworks", "bedrock", "vertex_ai", "azure", "self-hosted"} {
		if providers[p] == 0 {
			t.Errorf("no entry for provider %q", p)
		}
	}
	if again, err := Parse("again", DefaultYAML()); err != nil || len(again.Entries()) != len(entries) {
		t.Errorf("re-parse: %v", err)
	}
}

// TestDefaultCatalogThresholds: every long-context threshold of the
// embedded catalog is one the rollups keep calls apart by, so what-if
// pricing with it (or with a catalog imported the same way) is exact.
func TestDefaultCatalogThresholds(t *testing.T) {
	n, exceptions := 0, 0
	for _, e := range Default().Entries() {
		for _, p := range e.Prices {
			for _, tr := range p.Tiers {
				n++
				// The 32k tiers of Alibaba's qwen and ByteDance's doubao
				// models are the documented exception.
				if tr.Above == 32_000 && (e.Provider == "dashscope" || e.Provider == "volcengine") {
					exceptions++
					continue
				}
				if !IsContextThreshold(tr.Above) {
					t.Errorf("%s %q: tier above %d is not in ContextThresholds %v", e.Provider, e.Name(), tr.Above, ContextThresholds)
				}
			}
		}
	}
	if n < 100 || exceptions > 20 {
		t.Errorf("%d long-context tiers in the default catalog, %d of them at 32k", n, exceptions)
	}
}

func TestDefaultCatalogPrices(t *testing.T) {
	c := Default()
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		provider, model, tier string
		input                 int64
		entry                 string // "" = unpriced
		in, out               string // effective input and output rates
	}{
		{"openai", "gpt-4o", "", 1000, "gpt-4o", "2.5", "10"},
		{"openai", "gpt-4o", "batch", 1000, "gpt-4o", "1.25", "5"},     // the list's own _batches prices
		{"openai", "gpt-4o", "priority", 1000, "gpt-4o", "4.25", "17"}, // _priority
		{"openai", "gpt-5", "flex", 1000, "gpt-5", "0.625", "5"},       // _flex
		{"openai", "gpt-5", "batch", 1000, "gpt-5", "0.625", "5"},      // the provider default: 50%
		{"openai", "gpt-5", "priority", 1000, "gpt-5", "2.5", "20"},    // _priority
		{"openai", "gpt-5", "scale", 1000, "gpt-5", "1.25", "10"},      // no price: standard
		{"anthropic", "claude-sonnet-4-5", "", 150_000, "claude-sonnet-4-5", "3", "15"},
		{"anthropic", "claude-sonnet-4-5", "", 250_000, "claude-sonnet-4-5", "6", "22.5"},
		{"anthropic", "claude-sonnet-4-5", "batch", 250_000, "claude-sonnet-4-5", "3", "11.25"},
		// A service tier with its own rates, above a long-context threshold
		// it gives none for: scaled from the long-context rates as it scales
		// the standard ones (was the full standard long-context 5 / 22.5).
		{"openai", "gpt-5.4", "batch", 271_000, "gpt-5.4", "1.25", "7.5"},
		{"openai", "gpt-5.4", "batch", 300_000, "gpt-5.4", "2.5", "11.25"},
		{"openai", "gpt-5.4", "flex", 300_000, "gpt-5.4", "2.5", "11.25"},
		{"openai", "gpt-5.4", "priority", 300_000, "gpt-5.4", "10", "45"},
		{"openai", "gpt-5.4", "", 300_000, "gpt-5.4", "5", "22.5"},
		{"anthropic", "claude-opus-4-0", "", 1000, `^claude-opus-4(-0|-\d{8})?$`, "15", "75"}, // an override
		{"google", "gemini-2.5-pro", "", 1000, "gemini-2.5-pro", "1.25", "10"},
		{"google", "gemini-2.5-pro", "", 300_000, "gemini-2.5-pro", "2.5", "15"},
		{"vertex_ai", "gemini-2.5-pro", "", 1000, "gemini-2.5-pro", "1.25", "10"},
		{"deepseek", "deepseek-chat", "", 1000, "deepseek-chat", "0.28", "0.42"},
		{"groq", "llama-3.3-70b-versatile", "", 1000, "llama-3.3-70b-versatile", "0.59", "0.79"},
		{"bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "", 1000, "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "3.3", "16.5"},
		{"self-hosted", "my-finetune", "", 1000, ".*", "0", "0"},
		{"openai", "gpt-4x1", "", 1000, "", "", ""},
		{"OpenAI", "gpt-4o", "", 1000, "", "", ""}, // providers are case-sensitive
	} {
		e := schemas.Event{Provider: tc.provider, Model: tc.model, Timestamp: at, ServiceTier: tc.tier, InputTokens: tc.input}
		q := c.Cost(&e)
		name := fmt.Sprintf("%s/%s %q %d", tc.provider, tc.model, tc.tier, tc.input)
		if tc.entry == "" {
			if q.Priced {
				t.Errorf("%s priced by %q, want unpriced", name, q.Entry.Name())
			}
			continue
		}
		if !q.Priced || q.Entry.Name() != tc.entry {
			t.Errorf("%s: priced %v by %v (%s), want %q", name, q.Priced, q.Entry, q.Reason, tc.entry)
			continue
		}
		if q.Rates.Input != MustParsePico(tc.in) || q.Rates.Output != MustParsePico(tc.out) {
			t.Errorf("%s: input %s output %s, want %s %s", name, q.Rates.Input, q.Rates.Output, tc.in, tc.out)
		}
	}
	// A typical call: 800 × 2.50 + 200 × 1.25 + 500 × 10 = 7250 µUSD.
	e := schemas.Event{Provider: "openai", Model: "gpt-4o", Timestamp: at, InputTokens: 1000, CachedInputTokens: 200, OutputTokens: 500}
	if got, ok := c.Total(&e); !ok || got.String() != "0.007250000000" {
		t.Errorf("typical gpt-4o call = %s, %v; want 0.007250000000", got, ok)
	}
	// Anthropic cache writes: 5-minute at 1.25 × input, 1-hour at 2 ×:
	// 600 × 3.75 + 400 × 6 = 4650 µUSD.
	e = schemas.Event{Provider: "anthropic", Model: "claude-sonnet-4-5", Timestamp: at, InputTokens: 1000, CacheWriteTokens: 1000, CacheWrite1hTokens: 400}
	if got, ok := c.Total(&e); !ok || got.String() != "0.004650000000" {
		t.Errorf("claude cache writes = %s, %v; want 0.004650000000", got, ok)
	}
	// The same rule where LiteLLM's list has no 1-hour price (Bedrock, the
	// gateways, a long-context tier): tokens all written to the 1-hour cache
	// cost 2 × input, not the 5-minute 1.25 ×.
	for _, tc := range []struct {
		provider, model string
		input           int64
		want            string
	}{
		{"bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0", 100_000, "0.600000000000"},
		{"bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0", 250_000, "3.000000000000"}, // 12 per 1M above 200k
		{"openrouter", "anthropic/claude-opus-4.5", 100_000, "1.000000000000"},
		{"anthropic", "claude-4-opus-20250514", 100_000, "3.000000000000"},
		{"anthropic", "claude-sonnet-4-20250514", 250_000, "3.000000000000"}, // the tier lacked the 1-hour price
	} {
		e := schemas.Event{Provider: tc.provider, Model: tc.model, Timestamp: at, InputTokens: tc.input, CacheWriteTokens: tc.input, CacheWrite1hTokens: tc.input}
		if got, ok := c.Total(&e); !ok || got.String() != tc.want {
			t.Errorf("%s/%s: %d 1-hour cache write tokens cost %s, %v; want %s", tc.provider, tc.model, tc.input, got, ok, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(testCatalog))
	f.Add([]byte(tierCatalog))
	f.Add([]byte("models:\n  - provider: p\n    match: '(a|b)*'\n    prices: &x\n      - {from: 2024-01-01, input: 1, output: 2}\n  - {provider: q, model: m, prices: *x}\ntenants: {a: {discount: 0.5}}\n"))
	f.Add([]byte("a: &a [*a]"))
	f.Add([]byte("models: [{provider: p, model: m, prices: [{from: 2024-01-01T00:00:00Z, input: \"1\", output: \"1\", gpu_hour: \"1000000\", request: \"1000000\"}]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != "fuzz.yaml" {
				t.Fatalf("error is not a *ParseError naming the file: %v", err)
			}
			return
		}
		// A catalog that parses prices the biggest valid event without panicking.
		for _, e := range c.Entries() {
			ev := schemas.Event{
				Provider: e.Provider, Model: e.Model, Tenant: "a", Timestamp: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
				InputTokens: schemas.MaxTokens, CachedInputTokens: schemas.MaxTokens / 2, CacheWriteTokens: schemas.MaxTokens / 2,
				OutputTokens: schemas.MaxTokens, ReasoningTokens: schemas.MaxTokens / 3, GPUMs: schemas.MaxDurationMs,
				CacheWrite1hTokens: schemas.MaxTokens / 4,
			}
			tiers := []string{""}
			for _, p := range e.Prices {
				tiers = append(tiers, p.ServiceTierNames()...)
			}
			for _, st := range tiers {
				ev.ServiceTier = st
				total, ok := c.Total(&ev)
				q := c.Cost(&ev)
				if ok != q.Priced || total != q.Total || total.Sign() < 0 || total.Saturated() {
					t.Fatalf("Total %s %v, Cost %s %v", total, ok, q.Total, q.Priced)
				}
				sum, sok, err := c.CostOfSums(SumsKey{Tenant: ev.Tenant, Provider: ev.Provider, Model: ev.Model, ServiceTier: st,
					ContextBand: ContextBand(ev.InputTokens), At: ev.Timestamp}, Sums{Requests: 1,
					InputTokens: uint64(ev.InputTokens), CachedInputTokens: uint64(ev.CachedInputTokens), CacheWriteTokens: uint64(ev.CacheWriteTokens),
					CacheWrite1hTokens: uint64(ev.CacheWrite1hTokens), OutputTokens: uint64(ev.OutputTokens), ReasoningTokens: uint64(ev.ReasoningTokens),
					GPUMicros: GPUMicros(ev.GPUMs)})
				if err == nil && (sok != ok || sum != total) {
					t.Fatalf("CostOfSums %s %v, Total %s %v", sum, sok, total, ok)
				}
			}
		}
	})
}

// A second YAML document is refused, naming its line: it was dropped
// silently, and every price in it with it (`prices check` said ok).
func TestParseRefusesASecondDocument(t *testing.T) {
	data := "models:\n  - provider: openai\n    model: a\n    prices:\n      - {from: \"2026-01-01\", input: \"1\", output: \"2\"}\n---\nmodels:\n  - provider: openai\n    model: b\n    prices:\n      - {from: \"2026-01-01\", input: \"1\", output: \"2\"}\n"
	_, err := Parse("two.yaml", []byte(data))
	if err == nil || !strings.Contains(err.Error(), "line 6: a second YAML document") {
		t.Fatalf("Parse of two documents: %v; want an error naming line 6 (the ---)", err)
	}
	if _, err := Parse("one.yaml", []byte(strings.SplitN(data, "---\n", 2)[0])); err != nil {
		t.Fatalf("the first document alone: %v", err)
	}
}

// TestProviderProblems: a provider in providers that no model has (a
// differently cased name) is a warning naming its line and the models'
// spelling, not an error; one whose models exist is none.
func TestProviderProblems(t *testing.T) {
	cat, err := Parse("p.yaml", []byte(`providers:
  openai:
    service_tiers:
      flex: { multiplier: "0.5" }
  Anthropic:
    service_tiers:
      batch: { multiplier: "0.5" }
  nobody:
    service_tiers:
      batch: { multiplier: "0.5" }
models:
  - provider: openai
    model: gpt-x
    prices: [{ from: 2025-01-01, input: "2", output: "8" }]
  - provider: anthropic
    model: claude-x
    prices: [{ from: 2025-01-01, input: "3", output: "15" }]
`))
	if err != nil {
		t.Fatal(err)
	}
	got := cat.ProviderProblems()
	want := []string{
		`p.yaml:5: provider "Anthropic" in providers has no models: its service tiers apply to nothing (provider names match exactly; the models' provider is "anthropic")`,
		`p.yaml:8: provider "nobody" in providers has no models: its service tiers apply to nothing (provider names match exactly)`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("ProviderProblems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if p := Default().ProviderProblems(); len(p) > 0 {
		t.Errorf("the embedded catalog: %v", p)
	}
}
