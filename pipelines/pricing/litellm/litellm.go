// Package litellm imports LiteLLM's community price list
// (model_prices_and_context_window.json, https://github.com/BerriAI/litellm,
// MIT licence) as a costpipe price catalog (docs/contracts.md §2). The
// embedded default catalog is generated from it (see ../gen and
// ../README.md).
//
// The list maps a model key to an object of prices in USD per token (JSON
// numbers such as 3e-06) and other facts. Import converts every per-token
// price to USD per 1M tokens on the number's text (never through floating
// point): exactly, except that a price with more than 12 fraction digits
// per 1M tokens (a float artefact such as 2.9999900000000002e-06) is
// rounded half to even to 12 digits and reported (Stats.Rounded), or is an
// error with Options.Strict. It writes one catalog entry per model that has
// per-token prices: an `input_cost_per_token`, or a `tiered_pricing` table
// of token ranges. The field mapping, the provider table, model naming and
// what is skipped are documented in ../README.md.
//
// Import is a pure function of its input and options: importing the same
// list twice gives the same bytes. It is safe for concurrent use.
package litellm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/schemas"
)

// MaxInputBytes bounds the list Import reads (64 MiB; the list is about
// 1.5 MB in 2026).
const MaxInputBytes = 64 << 20

// DefaultSource is the catalog's `source` when Options.Source is empty.
const DefaultSource = "LiteLLM model_prices_and_context_window.json"

// maxErrors bounds the problems Import reports.
const maxErrors = 50

// Options configure Import. The zero Options are valid.
type Options struct {
	// From is the effective date of every imported price (the `from` of
	// each entry's one price). LiteLLM's list has no effective dates, only
	// current prices, so the default, zero, means 1970-01-01: the current
	// prices apply to every event, however old. Set it to the list's date
	// to leave older events to another catalog's prices.
	From time.Time
	// Source is the catalog's top-level `source`. Default DefaultSource.
	Source string
	// Updated is the catalog's `updated` date (YYYY-MM-DD or RFC 3339).
	// Default: the UTC date of the list's `last_updated`; no `updated`
	// when the list has none that parses.
	Updated string
	// Strict makes a price with more than 12 fraction digits in the
	// catalog's unit (a price the catalog cannot hold exactly) an error
	// naming the key and field, like a negative or non-numeric price
	// (which are errors either way). Default false: such a price is rounded
	// half to even to 12 fraction digits — at most 5·10^-13 USD per 1M
	// tokens off — the entry is imported, and the price is listed in
	// Stats.Rounded. Skipping the entry instead would leave its calls
	// unpriced, a far larger error.
	Strict bool
}

// Result is an imported catalog.
type Result struct {
	// YAML is the catalog: a header comment, `source`, `updated` and
	// `models`, entries sorted by provider then model.
	YAML []byte
	// Stats says what was imported and what was not.
	Stats Stats
	// LastUpdated is the list's `last_updated` as written ("" when none).
	LastUpdated string
}

// Stats count what Import did with the list's entries.
type Stats struct {
	// Entries is the number of model entries in the list (sample_spec and
	// last_updated are not entries).
	Entries int
	// Imported is the number of catalog entries written: every entry with
	// per-token prices.
	Imported int
	// FromTieredPricing counts the imported entries priced by a
	// tiered_pricing table of token ranges.
	FromTieredPricing int
	// WithLongContext counts the imported entries with long-context tiers.
	WithLongContext int
	// WithServiceTier counts the imported entries with prices of their own
	// for a service tier, by catalog service tier name.
	WithServiceTier map[string]int
	// Skipped counts the entries not imported, by reason.
	Skipped map[string]int
	// SkippedByMode counts the entries not imported, by their `mode`
	// ("(none)" without one).
	SkippedByMode map[string]int
	// Conflicts are the entries whose model name, after the provider
	// prefix was stripped, was another entry's; the loser keeps its full
	// key as its name. In file order.
	Conflicts []Conflict
	// Rounded are the prices that had more than 12 fraction digits in the
	// catalog's unit and were rounded (not with Strict), in file order of
	// their entries.
	Rounded []RoundedPrice
	// CacheHitAsCacheRead are the keys of imported entries without a
	// cache_read_input_token_cost whose input_cost_per_token_cache_hit is
	// their cache-read price (cached_input), in file order.
	CacheHitAsCacheRead []string
	// CacheHitMismatches are the keys of imported entries that have both
	// and whose input_cost_per_token_cache_hit (then ignored) differs from
	// their cache_read_input_token_cost (or is not a valid price).
	CacheHitMismatches []string
	// AnthropicCacheWrite1h are the keys of imported Claude entries whose
	// 1-hour cache write price is not in the list and was written as
	// Anthropic's rule prices it, 2 × input (their 5-minute cache write
	// being Anthropic's 1.25 × input), in file order.
	AnthropicCacheWrite1h []string
	// IgnoredFields counts the price fields of imported entries that the
	// catalog has no place for (audio, image, video, per-second,
	// per-query, DBU … prices, input_cost_per_token_cache_hit next to a
	// cache_read_input_token_cost, threshold keys LiteLLM itself never
	// applies), by LiteLLM field name.
	IgnoredFields map[string]int
}

// RoundedPrice is a price of the list that was rounded to fit the catalog.
type RoundedPrice struct {
	// Key is the model key of the list's entry.
	Key string
	// Field is the LiteLLM field, e.g. "input_cost_per_token" or
	// "tiered_pricing[1].output_cost_per_token".
	Field string
	// Original is the JSON text of the price (USD per token, or per call
	// for input_cost_per_request), e.g. "2.9999900000000002e-06".
	Original string
	// Rounded is the catalog's price (USD per 1M tokens, or per call),
	// e.g. "2.99999".
	Rounded string
}

// Conflict is two entries of the list that want the same provider and
// model name.
type Conflict struct {
	// Provider and Model are the name both wanted.
	Provider, Model string
	// Winner is the key that got the name: the one that had no prefix to
	// strip, else the first in the file.
	Winner string
	// Loser is the other key; its entry is named Loser (its full key).
	Loser string
	// SamePrices reports whether both entries have the same prices.
	SamePrices bool
}

// PriceError is a price of the list that cannot be imported.
type PriceError struct {
	// Key is the model key of the list's entry.
	Key string
	// Field is the LiteLLM field, e.g. "input_cost_per_token" or
	// "tiered_pricing[1].output_cost_per_token".
	Field string
	// Value is the JSON text of the value (truncated).
	Value string
	// Err says what is wrong; an *InexactError for too many fraction
	// digits (Strict).
	Err error
}

// Error returns `cannot import model "key": field "f" = value: problem`.
func (e *PriceError) Error() string {
	return fmt.Sprintf("cannot import model %q: field %q = %s: %v", e.Key, e.Field, e.Value, e.Err)
}

// Unwrap returns Err.
func (e *PriceError) Unwrap() error { return e.Err }

// listEntry is one model of the list, in file order.
type listEntry struct {
	key string
	obj map[string]any
}

// Import reads a LiteLLM price list from r (at most MaxInputBytes) and
// returns it as a catalog. It fails on input that is not a JSON object of
// entries, on a duplicate key, and on a price it cannot convert (negative,
// not a number, above the catalog's maximum, or — with opts.Strict — more
// than 12 fraction digits); price errors are *PriceError values joined
// with errors.Join (at most 50).
func Import(r io.Reader, opts Options) (*Result, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	from, _ := opts.from()
	data, err := readList(r, MaxInputBytes)
	if err != nil {
		return nil, err
	}
	list, lastUpdated, err := decodeList(data)
	if err != nil {
		return nil, err
	}
	im := &importer{opts: opts, stats: Stats{
		Entries:         len(list),
		WithServiceTier: map[string]int{},
		Skipped:         map[string]int{},
		SkippedByMode:   map[string]int{},
		IgnoredFields:   map[string]int{},
	}}
	for _, le := range list {
		im.entry(le)
	}
	if len(im.errs) > 0 {
		return nil, errors.Join(im.errs...)
	}
	if len(im.out) == 0 {
		why := make([]string, 0, len(im.stats.Skipped))
		for reason, n := range im.stats.Skipped {
			why = append(why, fmt.Sprintf("%s: %d", reason, n))
		}
		slices.Sort(why)
		return nil, fmt.Errorf("cannot import the LiteLLM price list: none of its %d entries could be imported (skipped: %s)", len(list), strings.Join(why, "; "))
	}
	if err := im.name(); err != nil {
		return nil, err
	}
	updated := opts.Updated
	if updated == "" {
		updated = dateOf(lastUpdated)
	}
	source := opts.Source
	if source == "" {
		source = DefaultSource
	}
	out, err := im.yaml(source, updated, from)
	if err != nil {
		return nil, err
	}
	// What is written must load: a catalog --prices then refuses would be
	// found only when an aggregator starts with it.
	if _, err := pricing.Parse("imported", out); err != nil {
		return nil, fmt.Errorf("cannot import the LiteLLM price list: the catalog made of it does not load (a costpipe bug; please report it with the list): %w", err)
	}
	im.stats.Imported = len(im.out)
	return &Result{YAML: out, Stats: im.stats, LastUpdated: lastUpdated}, nil
}

// Validate reports options Import cannot use: a From outside years
// 1–9999, an Updated that is not YYYY-MM-DD or RFC 3339.
func (o Options) Validate() error {
	if _, err := o.from(); err != nil {
		return err
	}
	if o.Updated != "" && !validDate(o.Updated) {
		return fmt.Errorf("cannot use updated %q: want YYYY-MM-DD or RFC 3339", o.Updated)
	}
	return nil
}

// from returns the text of the `from` of every price.
func (o Options) from() (string, error) {
	if o.From.IsZero() {
		return "1970-01-01", nil
	}
	t := o.From.UTC()
	if t.Year() < 1 || t.Year() > 9999 {
		return "", fmt.Errorf("cannot use from %s: want a year in [1, 9999]", t)
	}
	if t.Equal(t.Truncate(24 * time.Hour)) {
		return t.Format(time.DateOnly), nil
	}
	return t.Format(time.RFC3339Nano), nil
}

func validDate(s string) bool {
	if _, err := time.Parse(time.DateOnly, s); err == nil {
		return true
	}
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

// dateOf returns the UTC date of an RFC 3339 time or a date, or "".
func dateOf(s string) string {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC().Format(time.DateOnly)
	}
	if _, err := time.Parse(time.DateOnly, s); err == nil {
		return s
	}
	return ""
}

// decodeList decodes the list's top-level object in file order, keeping
// numbers as their text. It returns the entries and last_updated.
func decodeList(data []byte) ([]listEntry, string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	fail := func(err error) ([]listEntry, string, error) {
		if len(bytes.TrimSpace(data)) == 0 {
			return nil, "", errors.New("cannot decode the LiteLLM price list: it is empty")
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			// encoding/json says only "EOF" for a list cut short.
			return nil, "", fmt.Errorf("cannot decode the LiteLLM price list: it ends at byte %d, inside a value (a truncated download?): %w", len(data), err)
		}
		return nil, "", fmt.Errorf("cannot decode the LiteLLM price list: %w", err)
	}
	tok, err := dec.Token()
	if err != nil {
		return fail(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fail(fmt.Errorf("want a JSON object of model entries, not %v", tok))
	}
	var list []listEntry
	lastUpdated := ""
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail(err)
		}
		key := tok.(string) // object keys are strings
		if seen[key] {
			return fail(fmt.Errorf("duplicate key %q", truncate(key, 64)))
		}
		seen[key] = true
		var v any
		if err := dec.Decode(&v); err != nil {
			return fail(fmt.Errorf("value of %q: %w", truncate(key, 64), err))
		}
		switch key {
		case "sample_spec": // documentation of the format
			continue
		case "last_updated":
			lastUpdated, _ = v.(string)
			continue
		}
		obj, _ := v.(map[string]any) // nil: not an object, skipped
		list = append(list, listEntry{key: key, obj: obj})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return fail(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail(errors.New("data after the top-level object"))
	}
	return list, lastUpdated, nil
}

// importer is the state of one Import.
type importer struct {
	opts  Options
	stats Stats
	errs  []error
	out   []*outEntry // imported entries, file order until name sorts them
	// rounded are the rounded prices of the entry being imported.
	rounded []RoundedPrice
}

// outEntry is an imported entry.
type outEntry struct {
	key      string // the list's key
	provider string
	model    string // catalog model name, set by name
	stripped string // key without its provider prefix; "" when it has none
	p        *price
}

func (im *importer) fail(err error) {
	if len(im.errs) < maxErrors {
		im.errs = append(im.errs, err)
	} else if len(im.errs) == maxErrors {
		im.errs = append(im.errs, errors.New("too many problems, stopping here"))
	}
}

func (im *importer) skip(obj map[string]any, reason string) {
	im.stats.Skipped[reason]++
	mode, _ := obj["mode"].(string)
	if mode == "" {
		mode = "(none)"
	}
	im.stats.SkippedByMode[mode]++
}

// entry imports or skips one entry of the list.
func (im *importer) entry(le listEntry) {
	obj := le.obj
	if obj == nil {
		im.skip(nil, "not an object")
		return
	}
	if le.key == "" {
		im.skip(obj, "empty key")
		return
	}
	prov, _ := obj["litellm_provider"].(string)
	if prov == "" {
		im.skip(obj, "no litellm_provider")
		return
	}
	if !schemas.ValidText(le.key) || !schemas.ValidText(prov) {
		// No event can carry the name, and the catalog refuses it.
		im.skip(obj, "control character or invalid UTF-8 in its key or litellm_provider")
		return
	}
	var (
		p       *price
		errs    []*PriceError
		tiered  bool
		problem string
	)
	im.rounded = im.rounded[:0]
	if table, ok := rangeTable(obj["tiered_pricing"]); ok {
		tiered = true
		p, errs, problem = im.tiered(le.key, obj, table)
	} else if _, ok := obj[litellmFields[fInput]]; ok {
		p, errs = im.flat(le.key, obj)
	} else if _, ok := obj["tiered_pricing"]; ok {
		im.skip(obj, "tiered_pricing not by tokens")
		return
	} else {
		im.skip(obj, unpricedReason(obj))
		return
	}
	if problem != "" {
		im.skip(obj, problem)
		return
	}
	if len(errs) > 0 {
		for _, e := range errs {
			im.fail(e)
		}
		return
	}
	im.stats.Rounded = append(im.stats.Rounded, im.rounded...)
	if tiered {
		im.stats.FromTieredPricing++
	}
	if len(p.tiers) > 0 {
		im.stats.WithLongContext++
	}
	for st := range p.svc {
		im.stats.WithServiceTier[st]++
	}
	e := &outEntry{key: le.key, provider: ProviderName(prov), p: p}
	if seg, rest, ok := strings.Cut(le.key, "/"); ok && rest != "" && ProviderName(seg) == e.provider {
		e.stripped = rest
	}
	im.out = append(im.out, e)
}

// unpricedReason says why an entry without per-token prices is skipped,
// from the kind of prices it has.
func unpricedReason(obj map[string]any) string {
	has := func(subs ...string) bool {
		for k := range obj {
			for _, s := range subs {
				if strings.Contains(k, s) {
					return true
				}
			}
		}
		return false
	}
	switch {
	case has("_per_second"):
		return "priced per second"
	case has("_per_image", "_per_pixel"):
		return "priced per image or pixel"
	case has("_per_character"):
		return "priced per character"
	case has("_per_query", "_per_request"):
		return "priced per query or request"
	case has("_per_page", "_per_credit"):
		return "priced per page"
	case has("output_cost_per_token"):
		return "output price only"
	case has("_cost"):
		return "other prices only"
	}
	return "no price"
}

// isCostKey reports whether a key the importer does not read is a price.
func isCostKey(k string) bool { return strings.Contains(k, "cost") }

// convert converts the value of field name of entry key, a price in
// LiteLLM's unit for f, to the catalog's: exactly, or rounded to 12
// fraction digits and noted in im.rounded (unless Strict, where that is an
// error).
func (im *importer) convert(key, name string, v any, f field) (string, *PriceError) {
	s, rounded, err := im.convertQuiet(key, name, v, f)
	if err == nil && rounded {
		im.rounded = append(im.rounded, RoundedPrice{Key: key, Field: name, Original: string(v.(json.Number)), Rounded: s})
	}
	return s, err
}

// convertQuiet is convert without noting a rounded price.
func (im *importer) convertQuiet(key, name string, v any, f field) (string, bool, *PriceError) {
	n, ok := v.(json.Number)
	if !ok {
		return "", false, &PriceError{Key: key, Field: name, Value: jsonText(v), Err: errNotNumber}
	}
	s, rounded, err := convertDecimal(string(n), f.shift(), !im.opts.Strict)
	if err != nil {
		return "", false, &PriceError{Key: key, Field: name, Value: truncate(string(n), 64), Err: err}
	}
	return s, rounded, nil
}

// cacheHitKey is a cache-read price of some entries (deepseek's, …) under
// another name: the entry's cached_input when it has no
// cache_read_input_token_cost, else ignored.
const cacheHitKey = "input_cost_per_token_cache_hit"

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%T", v)
	}
	return truncate(string(b), 64)
}

// flat imports an entry priced by its own keys: fields, long-context
// thresholds and service tiers.
func (im *importer) flat(key string, obj map[string]any) (*price, []*PriceError) {
	p := newPrice()
	var errs []*PriceError
	// LiteLLM finds the thresholds among the standard input keys
	// (input_cost_per_token_above_<N>_tokens) only; other keys of a
	// threshold without one are never applied, and are ignored here too.
	thresholds := make(map[int64]bool)
	for k := range obj {
		if ki, ok := parseKey(k); ok && ki.f == fInput && ki.above > 0 && ki.service == "" {
			thresholds[ki.above] = true
		}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	type slot struct {
		st    string
		above int64
		f     field
	}
	from := make(map[slot]string) // which key filled a slot
	for _, k := range keys {
		if k == cacheHitKey {
			continue // below
		}
		ki, ok := parseKey(k)
		if !ok || ki.above < 0 || (ki.above > 0 && !thresholds[ki.above]) {
			if isCostKey(k) {
				im.stats.IgnoredFields[k]++
			}
			continue
		}
		s, err := im.convert(key, k, obj[k], ki.f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sl := slot{ki.service, ki.above, ki.f}
		if prev, dup := from[sl]; dup {
			errs = append(errs, &PriceError{Key: key, Field: k, Value: s,
				Err: fmt.Errorf("the same price as field %q", prev)})
			continue
		}
		from[sl] = k
		p.level(ki.service, ki.above).put(ki.f, s)
	}
	if hit, ok := obj[cacheHitKey]; ok {
		if !p.base.set[fCachedInput] {
			// The cache-read price under another name: LiteLLM's own
			// calculator reads only cache_read_input_token_cost, but the
			// cached tokens of these models are billed at this rate.
			s, err := im.convert(key, cacheHitKey, hit, fCachedInput)
			if err != nil {
				errs = append(errs, err)
			} else {
				p.base.put(fCachedInput, s)
				im.stats.CacheHitAsCacheRead = append(im.stats.CacheHitAsCacheRead, key)
			}
		} else {
			im.stats.IgnoredFields[cacheHitKey]++
			s, _, err := im.convertQuiet(key, cacheHitKey, hit, fCachedInput)
			if err != nil || s != p.base.v[fCachedInput] {
				im.stats.CacheHitMismatches = append(im.stats.CacheHitMismatches, key)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if !p.base.set[fOutput] { // embeddings and the like
		p.base.put(fOutput, "0")
	}
	if p.anthropicCacheWrite1h(key) {
		im.stats.AnthropicCacheWrite1h = append(im.stats.AnthropicCacheWrite1h, key)
	}
	p.scaleServiceDefaults()
	p.scaleServiceTiers()
	p.omitDefaults()
	return p, nil
}

// rangeTable returns v as a tiered_pricing table of token ranges: a
// non-empty list of objects that all have a `range`. Other tables (of
// search results, …) are not price tables for tokens.
func rangeTable(v any) ([]map[string]any, bool) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, false
	}
	table := make([]map[string]any, len(list))
	for i, x := range list {
		t, ok := x.(map[string]any)
		if !ok {
			return nil, false
		}
		if _, ok := t["range"]; !ok {
			return nil, false
		}
		table[i] = t
	}
	return table, true
}

// tiered imports an entry priced by a tiered_pricing table. LiteLLM picks
// the one tier with range_start < input_tokens ≤ range_end (the last tier
// above every range) and prices every token of the call at its rates; so
// the range starting at 0 is the price's base and a range [a, b] with
// a > 0 is a tier above a. The ranges must start at 0 and be contiguous
// (each starts where the previous ends), else the table cannot be written
// as tiers and the entry is skipped with the returned problem.
//
// Within a tier, LiteLLM takes a missing (or zero) cache read or cache
// write rate from the tier's input rate, a missing 1-hour cache write rate
// from the cache write rate, a missing output rate from the model's own
// output_cost_per_token (else 0), a missing reasoning rate from the tier's
// output. Every rate is written explicitly, so the catalog's inheritance
// (a tier keeps the price's own rates) cannot change them.
func (im *importer) tiered(key string, obj map[string]any, table []map[string]any) (*price, []*PriceError, string) {
	type row struct {
		start, end int64
		t          map[string]any
		i          int
	}
	rows := make([]row, len(table))
	for i, t := range table {
		r, ok := t["range"].([]any)
		if !ok || len(r) != 2 {
			return nil, nil, "tiered_pricing range not [start, end]"
		}
		var se [2]int64
		for j, x := range r {
			n, ok := x.(json.Number)
			if !ok {
				return nil, nil, "tiered_pricing range not [start, end]"
			}
			w, ok := wholeNumber(string(n))
			if !ok {
				return nil, nil, "tiered_pricing range not whole tokens"
			}
			se[j] = w
		}
		if _, ok := t[litellmFields[fInput]]; !ok {
			return nil, nil, "tiered_pricing tier without input_cost_per_token"
		}
		if se[0] >= se[1] {
			return nil, nil, "tiered_pricing range not [start, end]"
		}
		rows[i] = row{se[0], se[1], t, i}
	}
	slices.SortStableFunc(rows, func(a, b row) int { return cmp64(a.start, b.start) })
	if rows[0].start != 0 {
		return nil, nil, "tiered_pricing ranges not from 0"
	}
	for i := 1; i < len(rows); i++ {
		if rows[i].start != rows[i-1].end || rows[i].start > maxAbove {
			return nil, nil, "tiered_pricing ranges not contiguous"
		}
	}
	var errs []*PriceError
	conv := func(name string, v any, f field) string {
		s, err := im.convert(key, name, v, f)
		if err != nil {
			errs = append(errs, err)
		}
		return s
	}
	vals := make([]map[field]string, len(rows))
	for i, r := range rows {
		vals[i] = make(map[field]string)
		for _, f := range []field{fInput, fCachedInput, fCacheWrite, fCacheWrite1h, fOutput, fReasoning} {
			if v, ok := r.t[litellmFields[f]]; ok {
				vals[i][f] = conv(fmt.Sprintf("tiered_pricing[%d].%s", r.i, litellmFields[f]), v, f)
			}
		}
	}
	modelOutput := "0"
	if v, ok := obj[litellmFields[fOutput]]; ok {
		modelOutput = conv(litellmFields[fOutput], v, fOutput)
	}
	request, hasRequest := "", false
	if v, ok := obj[litellmFields[fRequest]]; ok {
		request, hasRequest = conv(litellmFields[fRequest], v, fRequest), true
	}
	if len(errs) > 0 {
		return nil, errs, ""
	}
	p := newPrice()
	p.explicit = true
	for i, r := range rows {
		v := vals[i]
		// LiteLLM reads a tier's rates with `tier.get(k) or fallback`: a
		// zero rate falls back like a missing one.
		nonzero := func(fs ...field) string {
			for _, f := range fs {
				if s, ok := v[f]; ok && s != "0" {
					return s
				}
			}
			return "0"
		}
		out, ok := v[fOutput]
		if !ok {
			out = modelOutput
		}
		reasoning := nonzero(fReasoning, fOutput)
		if reasoning == "0" {
			reasoning = out
		}
		l := p.level("", r.start)
		l.put(fInput, v[fInput])
		l.put(fCachedInput, nonzero(fCachedInput, fInput))
		l.put(fCacheWrite, nonzero(fCacheWrite, fInput))
		l.put(fCacheWrite1h, nonzero(fCacheWrite1h, fCacheWrite, fInput))
		l.put(fOutput, out)
		l.put(fReasoning, reasoning)
	}
	if hasRequest {
		p.base.put(fRequest, request)
	}
	// The table replaces the entry's own per-token keys (LiteLLM does not
	// read them for a tiered entry).
	for k := range obj {
		if k != litellmFields[fOutput] && k != litellmFields[fRequest] && isCostKey(k) {
			im.stats.IgnoredFields[k]++
		}
	}
	return p, nil, ""
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// name gives every imported entry its catalog model name: the key, with
// its first path segment stripped when that segment names the entry's
// provider (gemini/gemini-2.5-pro → google gemini-2.5-pro). When two
// entries want the same provider and name, the one whose key had no prefix
// wins, else the first in the file; the other is named by its full key, so
// no entry is lost. It then sorts the entries by provider and model.
func (im *importer) name() error {
	type pm struct{ provider, model string }
	owner := make(map[pm]*outEntry)
	for _, e := range im.out {
		if e.stripped == "" {
			e.model = e.key
			owner[pm{e.provider, e.model}] = e // keys are unique
		}
	}
	var losers []*outEntry
	for _, e := range im.out {
		if e.stripped == "" {
			continue
		}
		k := pm{e.provider, e.stripped}
		if w, taken := owner[k]; taken {
			im.stats.Conflicts = append(im.stats.Conflicts, Conflict{
				Provider: e.provider, Model: e.stripped, Winner: w.key, Loser: e.key, SamePrices: w.p.equal(e.p),
			})
			losers = append(losers, e)
			continue
		}
		e.model = e.stripped
		owner[k] = e
	}
	for _, e := range losers {
		k := pm{e.provider, e.key}
		if w, taken := owner[k]; taken {
			return fmt.Errorf("cannot name model %q of provider %q: %q and its full key are both taken (by %q)",
				truncate(e.key, 64), e.provider, truncate(e.stripped, 64), truncate(w.key, 64))
		}
		e.model = e.key
		owner[k] = e
	}
	slices.SortFunc(im.out, func(a, b *outEntry) int {
		if c := strings.Compare(a.provider, b.provider); c != 0 {
			return c
		}
		return strings.Compare(a.model, b.model)
	})
	return nil
}

// header is the comment at the top of an imported catalog.
const header = `# Price catalog imported from LiteLLM's model_prices_and_context_window.json
# (https://github.com/BerriAI/litellm, MIT licence, Copyright (c) 2023 Berri AI).
# Prices are USD per 1M tokens (request: USD per call). LiteLLM's list has no
# effective dates: every price applies from %s.
`

// yaml writes the catalog.
func (im *importer) yaml(source, updated, from string) ([]byte, error) {
	root := mapNode()
	add(root, "source", strNode(source))
	if updated != "" {
		add(root, "updated", strNode(updated))
	}
	models := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, e := range im.out {
		n := mapNode()
		add(n, "provider", strNode(e.provider))
		add(n, "model", strNode(e.model))
		add(n, "source", strNode("litellm:"+e.key))
		prices := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{e.p.node(from)}}
		add(n, "prices", prices)
		models.Content = append(models.Content, n)
	}
	add(root, "models", models)
	var b bytes.Buffer
	fmt.Fprintf(&b, header, from)
	if len(im.stats.Rounded) > 0 {
		b.WriteString("# Rounded half to even to 12 fraction digits per 1M tokens (the list's value\n")
		b.WriteString("# per token -> the catalog's per 1M tokens):\n")
		for _, line := range RoundedLines(im.stats.Rounded) {
			b.WriteString("#   " + line + "\n")
		}
	}
	if err := Encode(&b, root); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Encode writes a YAML node the way imported catalogs are written: block
// style, two-space indent, no line wrapping. The default catalog's
// generator uses it too, so both look alike.
func Encode(w io.Writer, n *yaml.Node) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return fmt.Errorf("cannot write the catalog: %w", err)
	}
	return enc.Close()
}

// RoundedLines describes rounded prices, one line per entry in their
// order: `key: field original -> rounded, field original -> rounded`. Keys
// are written with DisplayKey, so a line never holds a line break.
func RoundedLines(rs []RoundedPrice) []string {
	var lines []string
	var line strings.Builder
	last := ""
	for i, r := range rs {
		if i == 0 || r.Key != last {
			if line.Len() > 0 {
				lines = append(lines, line.String())
				line.Reset()
			}
			fmt.Fprintf(&line, "%s: ", DisplayKey(r.Key))
			last = r.Key
		} else {
			line.WriteString(", ")
		}
		fmt.Fprintf(&line, "%s %s -> %s", DisplayKey(r.Field), r.Original, r.Rounded)
	}
	if line.Len() > 0 {
		lines = append(lines, line.String())
	}
	return lines
}

// DisplayKey returns a key of the list for a comment or a message: as it
// is when it is printable ASCII without spaces, else quoted (Go syntax,
// ASCII only), so that it cannot break a line or hide in one.
func DisplayKey(k string) string {
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] > '~' || k[i] == '"' {
			return strconv.QuoteToASCII(k)
		}
	}
	if k == "" {
		return `""`
	}
	return k
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// readList reads all of r, refusing more than limit bytes.
func readList(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the LiteLLM price list: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("cannot import the LiteLLM price list: larger than %d bytes", limit)
	}
	return data, nil
}
