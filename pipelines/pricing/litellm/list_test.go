package litellm

import (
	"bytes"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

// sharedList is the snapshot of LiteLLM's list the embedded catalog is
// generated from (the only litellm-model-prices-*.json in ../source).
var sharedList = func() string {
	m, _ := filepath.Glob("../source/litellm-model-prices-*.json")
	if len(m) != 1 {
		return "../source/litellm-model-prices-missing.json"
	}
	return m[0]
}()

// independentCount counts, without the importer's code, the entries of the
// list that have per-token prices (a numeric input_cost_per_token, or a
// tiered_pricing table of token ranges), and the keys among them with a
// price that is not a whole number of 10^-12 USD per 1M tokens (or per
// request), exactly, with big.Rat.
func independentCount(t *testing.T, data []byte) (priced int, inexact []string) {
	t.Helper()
	var list map[string]json.RawMessage
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatal(err)
	}
	perToken := regexp.MustCompile(`^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|cache_creation_input_token_cost|output_cost_per_reasoning_token)`)
	exact := func(v json.Number, perMillion bool) bool {
		r, ok := new(big.Rat).SetString(v.String())
		if !ok {
			t.Fatalf("not a number: %s", v)
		}
		if perMillion {
			r.Mul(r, big.NewRat(1_000_000, 1))
		}
		return r.Mul(r, big.NewRat(1_000_000_000_000, 1)).IsInt()
	}
	for key, raw := range list {
		if key == "sample_spec" || key == "last_updated" {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var e map[string]any
		if err := dec.Decode(&e); err != nil {
			continue // not an object
		}
		if p, _ := e["litellm_provider"].(string); p == "" {
			continue
		}
		prices := []map[string]any{e}
		tokenTable := false
		if tp, ok := e["tiered_pricing"].([]any); ok && len(tp) > 0 {
			tokenTable = true
			for _, x := range tp {
				tier, ok := x.(map[string]any)
				if _, hasRange := tier["range"]; !ok || !hasRange {
					tokenTable = false
					break
				}
				prices = append(prices, tier)
			}
		}
		if _, isNum := e["input_cost_per_token"].(json.Number); !isNum && !tokenTable {
			continue
		}
		priced++
		ok := true
		for _, m := range prices {
			for k, v := range m {
				n, isNum := v.(json.Number)
				if !isNum || strings.Contains(k, "cache_hit") {
					continue
				}
				if perToken.MatchString(k) && !exact(n, true) || k == "input_cost_per_request" && !exact(n, false) {
					ok = false
				}
			}
		}
		if !ok {
			inexact = append(inexact, key)
		}
	}
	slices.Sort(inexact)
	return priced, inexact
}

// TestImportSharedList imports the snapshot and checks that every entry
// with per-token prices is in the catalog (under its own or its full key)
// but for those with a price the catalog cannot hold exactly, which are
// listed, and that without SkipInexact those are errors.
func TestImportSharedList(t *testing.T) {
	data, err := os.ReadFile(sharedList)
	if err != nil {
		t.Fatal(err)
	}
	priced, inexact := independentCount(t, data)
	res, err := Import(bytes.NewReader(data), Options{SkipInexact: true})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Stats
	var gotInexact []string
	for _, e := range s.Inexact {
		if !slices.Contains(gotInexact, e.Key) {
			gotInexact = append(gotInexact, e.Key)
		}
	}
	slices.Sort(gotInexact)
	if !slices.Equal(gotInexact, inexact) {
		t.Errorf("inexact entries %v, want %v", gotInexact, inexact)
	}
	if s.Imported != priced-len(inexact) {
		t.Errorf("imported %d entries, want %d with per-token prices − %d inexact", s.Imported, priced, len(inexact))
	}
	skipped := 0
	for _, n := range s.Skipped {
		skipped += n
	}
	byMode := 0
	for _, n := range s.SkippedByMode {
		byMode += n
	}
	if s.Imported+skipped != s.Entries || byMode != skipped {
		t.Errorf("imported %d + skipped %d (by mode %d) ≠ %d entries", s.Imported, skipped, byMode, s.Entries)
	}
	cat, err := pricing.Parse("imported.yaml", res.YAML)
	if err != nil {
		t.Fatalf("the imported catalog does not parse: %v", err)
	}
	// No entry lost: every priced key is the source of exactly one entry.
	sources := map[string]int{}
	for _, e := range cat.Entries() {
		sources[strings.TrimPrefix(e.Source, "litellm:")]++
	}
	if len(cat.Entries()) != s.Imported || len(sources) != s.Imported {
		t.Errorf("%d entries from %d keys, want %d", len(cat.Entries()), len(sources), s.Imported)
	}
	for _, c := range s.Conflicts {
		if w, l := cat.Lookup(c.Provider, c.Model), cat.Lookup(c.Provider, c.Loser); w == nil || w.Source != "litellm:"+c.Winner ||
			l == nil || l.Source != "litellm:"+c.Loser {
			t.Errorf("conflict %+v: winner %v, loser %v", c, w, l)
		}
	}
	if filepath.Base(sharedList) == "litellm-model-prices-2026-07-24.json" {
		// The numbers of the snapshot (docs: the report of issue 14).
		if s.Entries != 2983 || priced != 2528 || len(inexact) != 23 || len(s.Inexact) != 31 || s.Imported != 2505 ||
			len(s.Conflicts) != 36 || s.FromTieredPricing != 18 || len(s.CacheHitMismatches) != 8 {
			t.Errorf("snapshot stats: %d entries, %d priced, %d inexact (%d prices), %d imported, %d conflicts, %d tiered, %d cache-hit mismatches",
				s.Entries, priced, len(inexact), len(s.Inexact), s.Imported, len(s.Conflicts), s.FromTieredPricing, len(s.CacheHitMismatches))
		}
	}
	t.Logf("%d entries: %d imported (%d tiered_pricing, %d long-context, service tiers %v), %d conflicts, %d inexact",
		s.Entries, s.Imported, s.FromTieredPricing, s.WithLongContext, s.WithServiceTier, len(s.Conflicts), len(gotInexact))
	t.Logf("skipped by reason %v", s.Skipped)
	t.Logf("skipped by mode %v", s.SkippedByMode)

	// Without SkipInexact, each inexact price is an error naming it.
	_, err = Import(bytes.NewReader(data), Options{})
	if len(inexact) > 0 {
		if err == nil {
			t.Fatal("no error for the inexact prices")
		}
		for _, e := range s.Inexact {
			if !strings.Contains(err.Error(), `model "`+e.Key+`": field "`+e.Field+`"`) {
				t.Errorf("error does not name %s %s", e.Key, e.Field)
			}
		}
	}
}
