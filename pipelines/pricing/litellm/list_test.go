package litellm

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// inexactPrice is a price of the list that is not a whole number of
// 10^-12 USD per 1M tokens (or per request): key, LiteLLM field, JSON text.
type inexactPrice struct{ key, field, text string }

// independentCount counts, without the importer's code, the entries of the
// list that have per-token prices (a numeric input_cost_per_token, or a
// tiered_pricing table of token ranges), and lists their prices that are
// not a whole number of 10^-12 USD per 1M tokens (or per request),
// exactly, with big.Rat. input_cost_per_token_cache_hit counts as a price
// when the entry has no cache_read_input_token_cost.
func independentCount(t *testing.T, data []byte) (priced int, inexact []inexactPrice) {
	t.Helper()
	var list map[string]json.RawMessage
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatal(err)
	}
	perToken := regexp.MustCompile(`^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|cache_creation_input_token_cost|output_cost_per_reasoning_token)`)
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
		type priceSet struct {
			prefix string
			m      map[string]any
		}
		prices := []priceSet{{"", e}}
		tokenTable := false
		if tp, ok := e["tiered_pricing"].([]any); ok && len(tp) > 0 {
			tokenTable = true
			for i, x := range tp {
				tier, ok := x.(map[string]any)
				if _, hasRange := tier["range"]; !ok || !hasRange {
					tokenTable = false
					break
				}
				prices = append(prices, priceSet{fmt.Sprintf("tiered_pricing[%d].", i), tier})
			}
		}
		if _, isNum := e["input_cost_per_token"].(json.Number); !isNum && !tokenTable {
			continue
		}
		priced++
		for _, ps := range prices {
			for k, v := range ps.m {
				n, isNum := v.(json.Number)
				if !isNum {
					continue
				}
				if k == "input_cost_per_token_cache_hit" {
					if _, hasRead := ps.m["cache_read_input_token_cost"]; hasRead || tokenTable {
						continue
					}
				}
				perMillion := perToken.MatchString(k)
				if !perMillion && k != "input_cost_per_request" {
					continue
				}
				r, ok := new(big.Rat).SetString(n.String())
				if !ok {
					t.Fatalf("not a number: %s", n)
				}
				if perMillion {
					r.Mul(r, big.NewRat(1_000_000, 1))
				}
				if !r.Mul(r, big.NewRat(1_000_000_000_000, 1)).IsInt() {
					inexact = append(inexact, inexactPrice{key, ps.prefix + k, n.String()})
				}
			}
		}
	}
	slices.SortFunc(inexact, func(a, b inexactPrice) int {
		return strings.Compare(a.key+"\x00"+a.field, b.key+"\x00"+b.field)
	})
	return priced, inexact
}

// perMillionRounded is the text of a LiteLLM price in the catalog's unit
// rounded half to even to 12 fraction digits, with big.Rat.
func perMillionRounded(t *testing.T, field, text string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		t.Fatalf("not a number: %s", text)
	}
	if !strings.HasSuffix(field, "input_cost_per_request") {
		r.Mul(r, big.NewRat(1_000_000, 1))
	}
	return roundPico(r)
}

// TestImportSharedList imports the snapshot and checks that every entry
// with per-token prices is in the catalog (under its own or its full key),
// that exactly the prices the catalog cannot hold exactly were rounded,
// each to the right value, and that with Strict those are errors.
func TestImportSharedList(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(sharedList)
	if err != nil {
		t.Fatal(err)
	}
	priced, inexact := independentCount(t, data)
	res, err := Import(bytes.NewReader(data), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Stats
	var got []inexactPrice
	inexactKeys := map[string]bool{}
	for _, r := range s.Rounded {
		got = append(got, inexactPrice{r.Key, r.Field, r.Original})
		inexactKeys[r.Key] = true
		want := perMillionRounded(t, r.Field, r.Original)
		if v, ok := new(big.Rat).SetString(r.Rounded); !ok || v.Cmp(want) != 0 {
			t.Errorf("%s %s %s rounded to %s, want %s", r.Key, r.Field, r.Original, r.Rounded, want.FloatString(12))
		}
		if _, err := pricing.ParsePico(r.Rounded); err != nil {
			t.Errorf("%s %s rounded to %q: %v", r.Key, r.Field, r.Rounded, err)
		}
	}
	slices.SortFunc(got, func(a, b inexactPrice) int {
		return strings.Compare(a.key+"\x00"+a.field, b.key+"\x00"+b.field)
	})
	if !slices.Equal(got, inexact) {
		t.Errorf("rounded prices %v, want %v", got, inexact)
	}
	if s.Imported != priced {
		t.Errorf("imported %d entries, want the %d with per-token prices", s.Imported, priced)
	}
	if s.Skipped["inexact price"] != 0 {
		t.Errorf("%d entries skipped for an inexact price", s.Skipped["inexact price"])
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
	// The header lists every rounded price.
	for _, r := range s.Rounded {
		if !bytes.Contains(res.YAML, []byte(" "+r.Field+" "+r.Original+" -> "+r.Rounded)) {
			t.Errorf("the header does not list %s %s %s", r.Key, r.Field, r.Original)
		}
	}
	if filepath.Base(sharedList) == "litellm-model-prices-2026-07-24.json" {
		// The numbers of the snapshot (docs: the report of issue 14).
		if s.Entries != 2983 || priced != 2528 || len(inexactKeys) != 23 || len(s.Rounded) != 31 || s.Imported != 2528 ||
			len(s.Conflicts) != 36 || s.FromTieredPricing != 18 || len(s.CacheHitMismatches) != 0 || len(s.CacheHitAsCacheRead) != 8 {
			t.Errorf("snapshot stats: %d entries, %d priced, %d with rounded prices (%d prices), %d imported, %d conflicts, %d tiered, %d cache-hit mismatches, %d cache-hit as cache read",
				s.Entries, priced, len(inexactKeys), len(s.Rounded), s.Imported, len(s.Conflicts), s.FromTieredPricing, len(s.CacheHitMismatches), len(s.CacheHitAsCacheRead))
		}
		for k := range inexactKeys {
			if !strings.HasPrefix(k, "databricks/") {
				t.Errorf("rounded prices of %s: the snapshot's are all databricks/*", k)
			}
		}
	}
	t.Logf("%d entries: %d imported (%d tiered_pricing, %d long-context, service tiers %v), %d conflicts, %d rounded prices of %d entries",
		s.Entries, s.Imported, s.FromTieredPricing, s.WithLongContext, s.WithServiceTier, len(s.Conflicts), len(s.Rounded), len(inexactKeys))
	t.Logf("skipped by reason %v", s.Skipped)
	t.Logf("skipped by mode %v", s.SkippedByMode)

	// Strict: each inexact price is an error naming it.
	_, err = Import(bytes.NewReader(data), Options{Strict: true})
	if len(inexact) > 0 {
		if err == nil {
			t.Fatal("Strict: no error for the inexact prices")
		}
		for _, p := range inexact {
			if !strings.Contains(err.Error(), `model "`+p.key+`": field "`+p.field+`" = `+p.text+": ") {
				t.Errorf("Strict: the error does not name %s %s", p.key, p.field)
			}
		}
		if n := len(unjoinErrs(err)); n != len(inexact) {
			t.Errorf("Strict: %d errors, want %d", n, len(inexact))
		}
	}
}

// unjoinErrs returns the errors joined in err.
func unjoinErrs(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
