package pricing

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
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

// Parse parses a price catalog (ARCHITECTURE.md §2) from data; name is used
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

// unmarshal is yaml.Unmarshal, turning a panic of the YAML library on
// malformed input into an error.
func unmarshal(data []byte, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("YAML library failed: %v", r)
		}
	}()
	return yaml.Unmarshal(data, n)
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
	keys, vals := p.fields(root, "", "the catalog", "models", "tenants")
	if keys == nil {
		return
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
	entryFields = []string{"provider", "model", "match", "prices"}
	priceFields = []string{"from", "input", "cached_input", "cache_write", "output", "reasoning", "gpu_hour", "request"}
)

func (p *parser) entry(index int, n *yaml.Node) {
	item := entryItem(n, index)
	keys, vals := p.fields(n, item, "a model entry", entryFields...)
	if keys == nil {
		return
	}
	e := &Entry{Index: index, Line: n.Line}
	ok := true
	if v, has := vals["model"]; has {
		e.Model, ok = p.str(v, item, "model")
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
	if v, has := vals["provider"]; has {
		var okp bool
		e.Provider, okp = p.str(v, item, "provider")
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
	amount := func(field string, dst *Pico, def *Pico, required bool) {
		v, has := vals[field]
		if !has {
			if required {
				p.fail(n.Line, item, field, "missing field %q", field)
				ok = false
			} else if def != nil {
				*dst = *def
			}
			return
		}
		s, oks := p.str(v, item, field)
		if !oks {
			ok = false
			return
		}
		x, err := parsePico(s)
		switch {
		case err != nil:
			p.fail(v.Line, item, field, "cannot parse price %q for field %q: %w", truncate(s, 64), field, err)
		case x.Sign() < 0:
			p.fail(v.Line, item, field, "price %q for field %q must not be negative", s, field)
		case x.Cmp(maxPrice) > 0:
			p.fail(v.Line, item, field, "price %q for field %q exceeds the maximum %d", s, field, MaxPriceUSD)
		default:
			*dst = x
			return
		}
		ok = false
	}
	amount("input", &pr.Input, nil, true)
	amount("output", &pr.Output, nil, true)
	amount("cached_input", &pr.CachedInput, &pr.Input, false)
	amount("cache_write", &pr.CacheWrite, &pr.Input, false)
	amount("reasoning", &pr.Reasoning, &pr.Output, false)
	amount("gpu_hour", &pr.GPUHour, nil, false)
	amount("request", &pr.Request, nil, false)
	pr.r = rates{
		input: pr.Input.lo, cachedInput: pr.CachedInput.lo, cacheWrite: pr.CacheWrite.lo,
		output: pr.Output.lo, reasoning: pr.Reasoning.lo, gpuHour: pr.GPUHour.lo, request: pr.Request.lo,
	}
	return pr, ok
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
	lines := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := p.resolve(n.Content[i], "", "tenants"), p.resolve(n.Content[i+1], "", "tenants")
		if k == nil || v == nil {
			continue
		}
		name, ok := p.str(k, "", "tenants")
		if !ok {
			continue
		}
		item := fmt.Sprintf("tenant %q", truncate(name, 64))
		if first, dup := lines[name]; dup {
			p.fail(k.Line, item, "", "duplicate tenant (first on line %d)", first)
			continue
		}
		lines[name] = k.Line
		keys, vals := p.fields(v, item, "a tenant", "discount")
		if keys == nil {
			continue
		}
		dv, has := vals["discount"]
		if !has {
			p.fail(v.Line, item, "discount", "missing field %q", "discount")
			continue
		}
		s, ok := p.str(dv, item, "discount")
		if !ok {
			continue
		}
		d, err := parsePico(s)
		if err != nil {
			p.fail(dv.Line, item, "discount", "cannot parse discount %q for field %q: %w", truncate(s, 64), "discount", err)
			continue
		}
		if d.Sign() < 0 || d.Cmp(FromPicos(picoScale)) > 0 {
			p.fail(dv.Line, item, "discount", "discount %q for field %q must be between 0 and 1", s, "discount")
			continue
		}
		p.c.tenants[name] = picoScale - d.lo
		p.c.tenantList = append(p.c.tenantList, Tenant{Name: name, Discount: d})
	}
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
