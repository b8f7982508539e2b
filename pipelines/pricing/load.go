package pricing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/costpipe/costpipe/schemas"
)

// MaxCatalogBytes bounds the size of a catalog file Load reads (16 MiB).
const MaxCatalogBytes = 16 << 20

// maxProblems bounds how many problems Parse reports; it stops after that.
const maxProblems = 50

// maxNodes bounds the YAML nodes Parse visits, so aliases cannot make it
// expand a small file into a huge catalog.
const maxNodes = 1_000_000

// ParseError is one problem in a catalog file, located by file, line and
// catalog item. Its message reads like
//
//	prices.yaml:14: model "gpt-4o" (entry 3): cannot parse price "2,50" for field "input": not a decimal number
type ParseError struct {
	// File is the name the catalog was parsed under.
	File string
	// Line is the 1-based line of the offending YAML node (0 when unknown).
	Line int
	// Item names the catalog item, e.g. `model "gpt-4o" (entry 3)` or
	// `tenant "acme"`; empty for the top level.
	Item string
	// Field is the offending field, e.g. "input" or "from"; empty when the
	// problem is not about one field.
	Field string
	// Err is the problem.
	Err error
}

// Error returns "file:line: item: problem".
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Item != "" {
		b.WriteString(e.Item)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns Err.
func (e *ParseError) Unwrap() error { return e.Err }

// Load reads the catalog file at path and parses it with Parse, naming it
// path in errors. Files larger than MaxCatalogBytes are rejected.
func Load(path string) (*Catalog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open price catalog: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxCatalogBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read price catalog %q: %w", path, err)
	}
	if len(data) > MaxCatalogBytes {
		return nil, fmt.Errorf("cannot load price catalog %q: larger than %d bytes", path, MaxCatalogBytes)
	}
	return Parse(path, data)
}

// Parse parses a price catalog (docs/contracts.md §2) from data; name is used
// in error messages, usually the file name. It checks everything and returns
// every problem it finds (up to 50), each a *ParseError, joined with
// errors.Join; errors.As finds the first.
//
// Rejected: unknown fields (typos such as `ouput`), duplicate fields, an
// entry without provider, with both or neither of model and match, with an
// invalid RE2 regex, without prices; a price without from, input or output;
// an unparsable from (want 2024-08-06 or RFC 3339); two prices of an entry
// with the same from; two entries for the same provider and model (or the
// same regex); prices that are negative, have more than 12 fraction digits or
// exceed MaxPriceUSD; a tenant without discount or with a discount outside
// [0, 1]; a catalog without models.
//
// Prices may be written as YAML strings ("2.50", as the contract shows) or
// plain numbers (2.50): either way the source text is parsed as an exact
// decimal, never through floating point.
func Parse(name string, data []byte) (*Catalog, error) {
	var doc yaml.Node
	if err := unmarshal(data, &doc); err != nil {
		return nil, yamlError(name, err)
	}
	p := &parser{name: name, c: &Catalog{
		name:    name,
		exact:   make(map[modelKey]*Entry),
		regexes: make(map[string][]*Entry),
		tenants: make(map[string]uint64),
	}}
	p.document(&doc)
	if len(p.errs) == 0 {
		p.applyProviderDefaults()
	}
	if len(p.errs) == 0 {
		p.c.cache.init(p.c.exact)
		return p.c, nil
	}
	// Report in file order; the "too many problems" note stays last.
	n := min(len(p.errs), maxProblems)
	sort.SliceStable(p.errs[:n], func(i, j int) bool {
		return p.errs[i].(*ParseError).Line < p.errs[j].(*ParseError).Line
	})
	return nil, errors.Join(p.errs...)
}

// yamlError turns the YAML library's "yaml: line 3: did not find …" into a
// ParseError located at that line.
func yamlError(name string, err error) error {
	msg := err.Error()
	line := 0
	if rest, ok := strings.CutPrefix(msg, "yaml: line "); ok {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' && i < 9 {
			line = line*10 + int(rest[i]-'0')
			i++
		}
		if after, ok := strings.CutPrefix(rest[i:], ": "); ok && i > 0 {
			return &ParseError{File: name, Line: line, Err: fmt.Errorf("cannot parse YAML: %s", after)}
		}
		line = 0
	}
	return &ParseError{File: name, Err: fmt.Errorf("cannot parse YAML: %w", err)}
}

// unmarshal decodes the one YAML document of data into n, turning a panic
// of the YAML library on malformed input into an error. A second document
// (after `---`) is an error naming its line: yaml.Unmarshal would drop it
// silently, and with it every price it holds.
func unmarshal(data []byte, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("YAML library failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(n); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty: the callers report the missing fields
		}
		return err
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return err
	default:
		return fmt.Errorf("line %d: a second YAML document (after ---); a catalog is one document: merge them", next.Line)
	}
}

type parser struct {
	name  string
	c     *Catalog
	errs  []error
	nodes int
	// first line of each exact entry and regex, for duplicate reports
	exactLines map[modelKey]int
	regexLines map[modelKey]int
}

func (p *parser) fail(line int, item, field string, format string, args ...any) {
	if len(p.errs) == maxProblems {
		p.errs = append(p.errs, &ParseError{File: p.name, Line: line, Err: errors.New("too many problems, stopping here")})
	}
	if len(p.errs) > maxProblems {
		return
	}
	p.errs = append(p.errs, &ParseError{File: p.name, Line: line, Item: item, Field: field, Err: fmt.Errorf(format, args...)})
}

// resolve follows aliases and counts visited nodes; nil means the node is
// unusable (already reported).
func (p *parser) resolve(n *yaml.Node, item, field string) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i == 16 {
			p.fail(n.Line, item, field, "aliases nested too deeply")
			return nil
		}
		n = n.Alias
	}
	if n == nil {
		return nil
	}
	if p.nodes++; p.nodes > maxNodes {
		if p.nodes == maxNodes+1 {
			p.fail(n.Line, item, field, "catalog has more than %d YAML nodes", maxNodes)
		}
		return nil
	}
	return n
}

// fields checks that n is a mapping whose keys are all among allowed, each
// at most once, and returns the key and value nodes by key.
func (p *parser) fields(n *yaml.Node, item, what string, allowed ...string) (keys, vals map[string]*yaml.Node) {
	if n.Kind != yaml.MappingNode {
		p.fail(n.Line, item, "", "%s must be a mapping, not %s", what, kindName(n))
		return nil, nil
	}
	keys, vals = make(map[string]*yaml.Node), make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := p.resolve(n.Content[i], item, ""), p.resolve(n.Content[i+1], item, "")
		if k == nil || v == nil {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			p.fail(k.Line, item, "", "%s has a %s as a key", what, kindName(k))
			continue
		}
		if !contains(allowed, k.Value) {
			p.fail(k.Line, item, k.Value, "unknown field %q in %s (want one of %s)", k.Value, what, strings.Join(allowed, ", "))
			continue
		}
		if prev, dup := keys[k.Value]; dup {
			p.fail(k.Line, item, k.Value, "duplicate field %q (first on line %d)", k.Value, prev.Line)
			continue
		}
		keys[k.Value], vals[k.Value] = k, v
	}
	return keys, vals
}

// label returns the text of a field naming what events carry (a provider,
// model or tenant): a str that is also valid event text (schemas.ValidText),
// since an entry for a name with a control character could match no event.
func (p *parser) label(n *yaml.Node, item, field string) (string, bool) {
	s, ok := p.str(n, item, field)
	if ok && !schemas.ValidText(s) {
		p.fail(n.Line, item, field, "field %q = %q holds a control character or invalid UTF-8, which no event may carry", field, truncate(s, 64))
		return "", false
	}
	return s, ok
}

// str returns the text of a scalar field that must not be empty.
func (p *parser) str(n *yaml.Node, item, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		p.fail(n.Line, item, field, "field %q must be a string, not %s", field, kindName(n))
		return "", false
	}
	if n.Tag == "!!null" || n.Value == "" {
		p.fail(n.Line, item, field, "field %q is empty", field)
		return "", false
	}
	return n.Value, true
}

func (p *parser) document(doc *yaml.Node) {
	if doc.Kind == 0 || len(doc.Content) == 0 {
		p.fail(0, "", "", "catalog is empty: want a mapping with a %q list", "models")
		return
	}
	root := p.resolve(doc.Content[0], "", "")
	if root == nil {
		return
	}
	keys, vals := p.fields(root, "", "the catalog", "source", "updated", "providers", "models", "tenants")
	if keys == nil {
		return
	}
	if v, ok := vals["source"]; ok {
		p.c.source, _ = p.str(v, "", "source")
	}
	if v, ok := vals["updated"]; ok {
		if u, ok := p.str(v, "", "updated"); ok {
			if _, err := parseFrom(u); err != nil {
				p.fail(v.Line, "", "updated", "cannot parse date %q for field %q: want YYYY-MM-DD or RFC 3339", truncate(u, 64), "updated")
			}
			p.c.updated = u
		}
	}
	if v, ok := vals["providers"]; ok {
		p.providers(v)
	}
	models, ok := vals["models"]
	if !ok {
		p.fail(root.Line, "", "models", "missing field %q", "models")
	} else if models.Kind != yaml.SequenceNode {
		p.fail(models.Line, "", "models", "field %q must be a list, not %s", "models", kindName(models))
	} else if len(models.Content) == 0 {
		p.fail(models.Line, "", "models", "field %q is empty", "models")
	} else {
		p.exactLines = make(map[modelKey]int)
		p.regexLines = make(map[modelKey]int)
		for i, n := range models.Content {
			if n = p.resolve(n, "", "models"); n != nil {
				p.entry(i+1, n)
			}
		}
	}
	if tenants, ok := vals["tenants"]; ok {
		p.tenants(tenants)
	}
}

var (
	entryFields = []string{"provider", "model", "match", "source", "prices"}
	priceFields = append([]string{"from"}, append(rateFields[:], "tiers", "service_tiers")...)
	tierFields  = append([]string{"above"}, rateFields[:]...)
	stFields    = append([]string{"multiplier"}, append(rateFields[:], "tiers")...)
)

// MaxMultiplier bounds a service tier's multiplier.
const MaxMultiplier = 100

func (p *parser) entry(index int, n *yaml.Node) {
	item := entryItem(n, index)
	keys, vals := p.fields(n, item, "a model entry", entryFields...)
	if keys == nil {
		return
	}
	e := &Entry{Index: index, Line: n.Line}
	ok := true
	if v, has := vals["model"]; has {
		e.Model, ok = p.label(v, item, "model")
	}
	if v, has := vals["match"]; has {
		var okm bool
		e.Match, okm = p.str(v, item, "match")
		ok = ok && okm
	}
	_, hasModel := vals["model"]
	_, hasMatch := vals["match"]
	switch {
	case hasModel && hasMatch:
		p.fail(keys["match"].Line, item, "match", "has both %q and %q; want exactly one", "model", "match")
		ok = false
	case !hasModel && !hasMatch:
		p.fail(n.Line, item, "model", "has neither %q nor %q; want exactly one", "model", "match")
		ok = false
	}
	if v, has := vals["source"]; has {
		var oks bool
		e.Source, oks = p.str(v, item, "source")
		ok = ok && oks
	}
	if v, has := vals["provider"]; has {
		var okp bool
		e.Provider, okp = p.label(v, item, "provider")
		ok = ok && okp
	} else {
		p.fail(n.Line, item, "provider", "missing field %q", "provider")
		ok = false
	}
	if e.Match != "" {
		re, err := regexp.Compile(e.Match)
		if err != nil {
			p.fail(vals["match"].Line, item, "match", "cannot compile regex %q for field %q: %w", truncate(e.Match, 64), "match", err)
			ok = false
		}
		e.re = re
	}
	if v, has := vals["prices"]; !has {
		p.fail(n.Line, item, "prices", "missing field %q", "prices")
		ok = false
	} else if v.Kind != yaml.SequenceNode {
		p.fail(v.Line, item, "prices", "field %q must be a list, not %s", "prices", kindName(v))
		ok = false
	} else if len(v.Content) == 0 {
		p.fail(v.Line, item, "prices", "field %q is empty", "prices")
		ok = false
	} else {
		for _, pn := range v.Content {
			if pn = p.resolve(pn, item, "prices"); pn == nil {
				ok = false
				continue
			}
			pr, okp := p.price(pn, item)
			ok = ok && okp
			e.Prices = append(e.Prices, pr)
		}
	}
	if !ok {
		return
	}
	sort.SliceStable(e.Prices, func(i, j int) bool { return e.Prices[i].From.Before(e.Prices[j].From) })
	for i := 1; i < len(e.Prices); i++ {
		if e.Prices[i].From.Equal(e.Prices[i-1].From) {
			a, b := e.Prices[i-1].Line, e.Prices[i].Line
			if a > b {
				a, b = b, a
			}
			p.fail(b, item, "from", "duplicate from %s (also on line %d)", e.Prices[i].From.Format(time.RFC3339), a)
			ok = false
		}
	}
	key := modelKey{e.Provider, e.Name()}
	lines, what := p.exactLines, "model"
	if e.Match != "" {
		lines, what = p.regexLines, "match"
	}
	if first, dup := lines[key]; dup {
		p.fail(n.Line, item, what, "duplicate %s %q for provider %q (first on line %d)", what, truncate(e.Name(), 64), e.Provider, first)
		ok = false
	} else {
		lines[key] = n.Line
	}
	if !ok {
		return
	}
	p.c.entries = append(p.c.entries, e)
	if e.Match != "" {
		p.c.regexes[e.Provider] = append(p.c.regexes[e.Provider], e)
	} else {
		p.c.exact[key] = e
	}
}

// entryItem names a model entry for error messages: `model "gpt-4o" (entry
// 3)`, `match "^o3$" (entry 4)` or `entry 5`, from its first model or match
// field with a text value.
func entryItem(n *yaml.Node, index int) string {
	if n.Kind == yaml.MappingNode {
		for _, key := range []string{"model", "match"} {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Kind == yaml.ScalarNode && k.Value == key && v.Kind == yaml.ScalarNode && v.Value != "" && v.Tag != "!!null" {
					return fmt.Sprintf("%s %q (entry %d)", key, truncate(v.Value, 64), index)
				}
			}
		}
	}
	return fmt.Sprintf("entry %d", index)
}

func (p *parser) price(n *yaml.Node, item string) (Price, bool) {
	pr := Price{Line: n.Line}
	keys, vals := p.fields(n, item, "a price", priceFields...)
	if keys == nil {
		return pr, false
	}
	ok := true
	if v, has := vals["from"]; has {
		if s, oks := p.str(v, item, "from"); !oks {
			ok = false
		} else if t, err := parseFrom(s); err != nil {
			p.fail(v.Line, item, "from", "cannot parse date %q for field %q: want YYYY-MM-DD or RFC 3339", truncate(s, 64), "from")
			ok = false
		} else {
			pr.From = t
		}
	} else {
		p.fail(n.Line, item, "from", "missing field %q", "from")
		ok = false
	}
	for _, f := range []string{"input", "output"} {
		if _, has := vals[f]; !has {
			p.fail(n.Line, item, f, "missing field %q", f)
			ok = false
		}
	}
	ok = p.rates(vals, item, &pr.given) && ok
	if v, has := vals["tiers"]; has {
		var okt bool
		pr.Tiers, okt = p.tiers(v, item, nil)
		ok = ok && okt
	}
	if v, has := vals["service_tiers"]; has {
		var oks bool
		pr.ServiceTiers, oks = p.serviceTiers(v, item, append([]Tier{}, pr.Tiers...), false)
		ok = ok && oks
	}
	if !ok {
		return pr, false
	}
	return pr, p.resolvePrice(&pr, item)
}

// rates parses the rate fields present in vals into l.
func (p *parser) rates(vals map[string]*yaml.Node, item string, l *level) bool {
	ok := true
	for f := field(0); f < numFields; f++ {
		name := rateFields[f]
		v, has := vals[name]
		if !has {
			continue
		}
		x, okx := p.amount(v, item, name, "price")
		if okx {
			l.put(f, x)
		}
		ok = ok && okx
	}
	return ok
}

// amount parses one non-negative decimal of at most MaxPriceUSD.
func (p *parser) amount(v *yaml.Node, item, field, what string) (Pico, bool) {
	s, ok := p.str(v, item, field)
	if !ok {
		return Pico{}, false
	}
	x, err := parsePico(s)
	switch {
	case err != nil:
		p.fail(v.Line, item, field, "cannot parse %s %q for field %q: %w", what, truncate(s, 64), field, err)
	case x.Sign() < 0:
		p.fail(v.Line, item, field, "%s %q for field %q must not be negative", what, s, field)
	case x.Cmp(maxPrice) > 0:
		p.fail(v.Line, item, field, "%s %q for field %q exceeds the maximum %d", what, s, field, MaxPriceUSD)
	default:
		return x, true
	}
	return Pico{}, false
}

// tiers parses a `tiers` list. base, when not nil, are the price's tiers
// that a service tier's tiers must refine.
func (p *parser) tiers(n *yaml.Node, item string, base []Tier) ([]Tier, bool) {
	if n.Kind != yaml.SequenceNode {
		p.fail(n.Line, item, "tiers", "field %q must be a list, not %s", "tiers", kindName(n))
		return nil, false
	}
	ok := true
	var ts []Tier
	lines := make(map[int64]int)
	for _, tn := range n.Content {
		if tn = p.resolve(tn, item, "tiers"); tn == nil {
			ok = false
			continue
		}
		keys, vals := p.fields(tn, item, "a tier", tierFields...)
		if keys == nil {
			ok = false
			continue
		}
		t := Tier{Line: tn.Line}
		av, has := vals["above"]
		if !has {
			p.fail(tn.Line, item, "above", "missing field %q", "above")
			ok = false
			continue
		}
		s, oks := p.str(av, item, "above")
		if !oks {
			ok = false
			continue
		}
		above, err := strconv.ParseInt(s, 10, 64)
		if err != nil || above < 1 || above > 1_000_000_000 {
			p.fail(av.Line, item, "above", "field %q = %q must be a whole number of input tokens in [1, 1000000000]", "above", truncate(s, 32))
			ok = false
			continue
		}
		t.Above = above
		if first, dup := lines[above]; dup {
			p.fail(av.Line, item, "above", "duplicate tier above %d (first on line %d)", above, first)
			ok = false
			continue
		}
		lines[above] = av.Line
		if base != nil && !slices.ContainsFunc(base, func(b Tier) bool { return b.Above == above }) {
			p.fail(av.Line, item, "above", "service tier's tier above %d refines no tier of the price (its tiers are above %s)", above, tierList(base))
			ok = false
			continue
		}
		if !p.rates(vals, item, &t.given) {
			ok = false
			continue
		}
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b Tier) int { return cmpInt64(a.Above, b.Above) })
	return ts, ok
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func tierList(ts []Tier) string {
	if len(ts) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatInt(t.Above, 10))
	}
	return b.String()
}

// serviceTiers parses a `service_tiers` mapping. provider is set for a
// provider's defaults, which may only be multipliers.
func (p *parser) serviceTiers(n *yaml.Node, item string, base []Tier, provider bool) ([]ServiceTier, bool) {
	if n.Kind != yaml.MappingNode {
		p.fail(n.Line, item, "service_tiers", "field %q must be a mapping of service tier names, not %s", "service_tiers", kindName(n))
		return nil, false
	}
	ok := true
	var sts []ServiceTier
	lines := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := p.resolve(n.Content[i], item, "service_tiers"), p.resolve(n.Content[i+1], item, "service_tiers")
		if k == nil || v == nil {
			ok = false
			continue
		}
		name, oks := p.str(k, item, "service_tiers")
		if !oks {
			ok = false
			continue
		}
		if reason := badServiceTierName(name); reason != "" {
			p.fail(k.Line, item, "service_tiers", "service tier %q: %s", truncate(name, 32), reason)
			ok = false
			continue
		}
		if first, dup := lines[name]; dup {
			p.fail(k.Line, item, "service_tiers", "duplicate service tier %q (first on line %d)", name, first)
			ok = false
			continue
		}
		lines[name] = k.Line
		allowed := stFields
		if provider {
			allowed = []string{"multiplier"}
		}
		keys, vals := p.fields(v, item, fmt.Sprintf("service tier %q", name), allowed...)
		if keys == nil {
			ok = false
			continue
		}
		st := ServiceTier{Name: name, Line: k.Line}
		if mv, has := vals["multiplier"]; has {
			if len(vals) > 1 {
				p.fail(mv.Line, item, "multiplier", "service tier %q has a multiplier and its own prices; want one or the other", name)
				ok = false
				continue
			}
			m, okm := p.amount(mv, item, "multiplier", "multiplier")
			if okm && m.Cmp(FromPicos(MaxMultiplier*picoScale)) > 0 {
				p.fail(mv.Line, item, "multiplier", "multiplier %s of service tier %q exceeds %d", m, name, MaxMultiplier)
				okm = false
			}
			if !okm {
				ok = false
				continue
			}
			st.Multiplier, st.HasMultiplier = m, true
		} else {
			if len(vals) == 0 {
				p.fail(v.Line, item, "service_tiers", "service tier %q has neither a multiplier nor prices", name)
				ok = false
				continue
			}
			okr := p.rates(vals, item, &st.given)
			if tv, has := vals["tiers"]; has {
				var okt bool
				st.Tiers, okt = p.tiers(tv, item, base)
				okr = okr && okt
			}
			if !okr {
				ok = false
				continue
			}
		}
		sts = append(sts, st)
	}
	slices.SortFunc(sts, func(a, b ServiceTier) int { return strings.Compare(a.Name, b.Name) })
	return sts, ok
}

// badServiceTierName says what is wrong with a catalog's service tier name.
func badServiceTierName(name string) string {
	if isStandardTier(name) {
		return "is the standard tier: give its rates in the price itself"
	}
	if len(name) > 32 {
		return "longer than 32 bytes"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return "want lower-case letters, digits, '_', '-' and '.'"
		}
	}
	return ""
}

// resolvePrice computes the bands of every service tier of pr.
func (p *parser) resolvePrice(pr *Price, item string) bool {
	pr.std = make([]band, 1+len(pr.Tiers))
	pr.std[0] = newBand(0, resolve(&pr.given))
	for i := range pr.Tiers {
		pr.std[i+1] = newBand(pr.Tiers[i].Above, resolve(&pr.given, &pr.Tiers[i].given))
	}
	r := pr.std[0].rates
	pr.Input, pr.CachedInput, pr.CacheWrite, pr.CacheWrite1h = r.Input, r.CachedInput, r.CacheWrite, r.CacheWrite1h
	pr.Output, pr.Reasoning, pr.GPUHour, pr.Request = r.Output, r.Reasoning, r.GPUHour, r.Request
	ok := true
	for i := range pr.ServiceTiers {
		st := &pr.ServiceTiers[i]
		b, okb := serviceBands(pr, st)
		if !okb {
			p.fail(st.Line, item, "multiplier", "service tier %q: a rate times the multiplier exceeds the maximum %d", st.Name, MaxPriceUSD)
			ok = false
			continue
		}
		if pr.svc == nil {
			pr.svc = make(map[string][]band)
		}
		pr.svc[st.Name] = b
	}
	return ok
}

// serviceBands resolves the bands of service tier st of pr.
func serviceBands(pr *Price, st *ServiceTier) ([]band, bool) {
	b := make([]band, len(pr.std))
	if st.HasMultiplier {
		for i, sb := range pr.std {
			r, ok := sb.rates.scaled(st.Multiplier)
			if !ok {
				return nil, false
			}
			b[i] = newBand(sb.above, r)
		}
		return b, true
	}
	b[0] = newBand(0, resolve(&pr.given, &st.given))
	for i := range pr.Tiers {
		var own *level
		for j := range st.Tiers {
			if st.Tiers[j].Above == pr.Tiers[i].Above {
				own = &st.Tiers[j].given
			}
		}
		b[i+1] = newBand(pr.Tiers[i].Above, resolve(&pr.given, &st.given, &pr.Tiers[i].given, own))
	}
	return b, true
}

func newBand(above int64, r Rates) band { return band{above: above, r: r.word(), rates: r} }

// providers parses the `providers` section: default service tiers per
// provider.
func (p *parser) providers(n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		p.fail(n.Line, "", "providers", "field %q must be a mapping of provider names, not %s", "providers", kindName(n))
		return
	}
	p.c.providers = make(map[string][]ServiceTier)
	p.c.providerLines = make(map[string]int)
	p.eachNamed(n, "providers", "provider", func(name, item string, line int, v *yaml.Node) {
		p.c.providerLines[name] = line
		keys, vals := p.fields(v, item, "a provider", "service_tiers")
		if keys == nil {
			return
		}
		sv, has := vals["service_tiers"]
		if !has {
			p.fail(v.Line, item, "service_tiers", "missing field %q", "service_tiers")
			return
		}
		if sts, ok := p.serviceTiers(sv, item, nil, true); ok {
			p.c.providers[name] = sts
		}
	})
}

// eachNamed calls fn for each item of the mapping n (the catalog's field
// named field) whose key is a name (a provider, a tenant), once per name:
// item names it for messages ("tenant \"acme\""), line is its key's line, v
// its value.
func (p *parser) eachNamed(n *yaml.Node, field, what string, fn func(name, item string, line int, v *yaml.Node)) {
	lines := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := p.resolve(n.Content[i], "", field), p.resolve(n.Content[i+1], "", field)
		if k == nil || v == nil {
			continue
		}
		if k.Kind == yaml.ScalarNode && (k.Value == "" || k.Tag == "!!null") {
			p.fail(k.Line, "", field, "a %s name in %q is empty", what, field)
			continue
		}
		name, ok := p.label(k, "", field)
		if !ok {
			continue
		}
		item := fmt.Sprintf("%s %q", what, truncate(name, 64))
		if first, dup := lines[name]; dup {
			p.fail(k.Line, item, "", "duplicate %s (first on line %d)", what, first)
			continue
		}
		lines[name] = k.Line
		fn(name, item, k.Line, v)
	}
}

// applyProviderDefaults gives every price the service tiers of its
// provider's defaults that it does not define itself.
func (p *parser) applyProviderDefaults() {
	for _, e := range p.c.entries {
		defs := p.c.providers[e.Provider]
		if len(defs) == 0 {
			continue
		}
		for i := range e.Prices {
			pr := &e.Prices[i]
			for j := range defs {
				st := &defs[j]
				if _, own := pr.svc[st.Name]; own {
					continue
				}
				b, ok := serviceBands(pr, st)
				if !ok {
					p.fail(pr.Line, entryName(e), "multiplier", "provider %q service tier %q: a rate times the multiplier exceeds the maximum %d", e.Provider, st.Name, MaxPriceUSD)
					continue
				}
				if pr.svc == nil {
					pr.svc = make(map[string][]band)
				}
				pr.svc[st.Name] = b
			}
		}
	}
}

func entryName(e *Entry) string {
	return fmt.Sprintf("%s %q (entry %d)", e.kind(), truncate(e.Name(), 64), e.Index)
}

// parseFrom accepts a UTC date (2024-08-06) or an RFC 3339 time.
func parseFrom(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

func (p *parser) tenants(n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		p.fail(n.Line, "", "tenants", "field %q must be a mapping of tenant names, not %s", "tenants", kindName(n))
		return
	}
	p.eachNamed(n, "tenants", "tenant", func(name, item string, _ int, v *yaml.Node) {
		keys, vals := p.fields(v, item, "a tenant", "discount")
		if keys == nil {
			return
		}
		dv, has := vals["discount"]
		if !has {
			p.fail(v.Line, item, "discount", "missing field %q", "discount")
			return
		}
		s, ok := p.str(dv, item, "discount")
		if !ok {
			return
		}
		d, err := parsePico(s)
		if err != nil {
			p.fail(dv.Line, item, "discount", "cannot parse discount %q for field %q: %w", truncate(s, 64), "discount", err)
			return
		}
		if d.Sign() < 0 || d.Cmp(FromPicos(picoScale)) > 0 {
			p.fail(dv.Line, item, "discount", "discount %q for field %q must be between 0 and 1", s, "discount")
			return
		}
		p.c.tenants[name] = picoScale - d.lo
		p.c.tenantList = append(p.c.tenantList, Tenant{Name: name, Discount: d})
	})
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the scalar %q", truncate(n.Value, 32))
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
