package litellm

import (
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// level is one level of a catalog price (the price itself, a long-context
// tier, a service tier or a service tier's tier): the fields it gives, as
// decimal text in the catalog's unit. The text is canonical (shiftDecimal's
// shortest form), so equal values have equal text.
type level struct {
	v   [numFields]string
	set [numFields]bool
}

func (l *level) put(f field, s string) { l.v[f], l.set[f] = s, true }

// count is the number of fields l gives.
func (l *level) count() int {
	n := 0
	for _, s := range l.set {
		if s {
			n++
		}
	}
	return n
}

// serviceTier is a `service_tiers` item with its own prices.
type serviceTier struct {
	own   level
	tiers map[int64]*level // refinements of the price's tiers, by above
}

// price is the one price of an imported entry.
type price struct {
	base  level
	tiers map[int64]*level        // long-context tiers, by above
	svc   map[string]*serviceTier // by catalog service tier name
	// explicit keeps every field as written: nothing is omitted (entries
	// from a tiered_pricing table, whose fields are all spelled out).
	explicit bool
}

func newPrice() *price {
	return &price{tiers: map[int64]*level{}, svc: map[string]*serviceTier{}}
}

// level returns the level of service tier st ("" standard) and long-context
// tier above (0: none), creating it.
func (p *price) level(st string, above int64) *level {
	if st == "" {
		if above == 0 {
			return &p.base
		}
		if p.tiers[above] == nil {
			p.tiers[above] = &level{}
		}
		return p.tiers[above]
	}
	s := p.svc[st]
	if s == nil {
		s = &serviceTier{tiers: map[int64]*level{}}
		p.svc[st] = s
	}
	if above == 0 {
		return &s.own
	}
	if s.tiers[above] == nil {
		s.tiers[above] = &level{}
	}
	return s.tiers[above]
}

func (p *price) aboves() []int64 {
	a := make([]int64, 0, len(p.tiers))
	for n := range p.tiers {
		a = append(a, n)
	}
	slices.Sort(a)
	return a
}

func (p *price) serviceNames() []string {
	names := make([]string, 0, len(p.svc))
	for n := range p.svc {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// rates are the resolved rates of one (service tier, long-context tier).
type rates [numFields]string

// combo is a service tier ("" standard) and a long-context tier (0: none).
type combo struct {
	st    string
	above int64
}

// combos lists every (service tier, long-context tier) the price
// distinguishes.
func (p *price) combos() []combo {
	var cs []combo
	for _, st := range append([]string{""}, p.serviceNames()...) {
		cs = append(cs, combo{st, 0})
		for _, a := range p.aboves() {
			cs = append(cs, combo{st, a})
		}
	}
	return cs
}

// resolve returns the rates of c under the contract's rules
// (docs/contracts.md §2): field by field the first given of the service
// tier's tier, the price's tier, the service tier, the price; then the
// defaults (cached_input and cache_write from input, cache_write_1h from
// cache_write, reasoning from output, request 0).
func (p *price) resolve(c combo) rates {
	chain := []*level{&p.base} // later levels win
	var s *serviceTier
	if c.st != "" {
		s = p.svc[c.st]
	}
	if s != nil {
		chain = append(chain, &s.own)
	}
	if c.above != 0 {
		chain = append(chain, p.tiers[c.above])
		if s != nil {
			chain = append(chain, s.tiers[c.above])
		}
	}
	var m level
	for _, l := range chain {
		if l == nil {
			continue
		}
		for f := field(0); f < numFields; f++ {
			if l.set[f] {
				m.put(f, l.v[f])
			}
		}
	}
	var r rates
	for f := field(0); f < numFields; f++ {
		r[f] = m.v[f]
	}
	if !m.set[fInput] {
		r[fInput] = "0"
	}
	if !m.set[fOutput] {
		r[fOutput] = "0"
	}
	if !m.set[fRequest] {
		r[fRequest] = "0"
	}
	if !m.set[fCachedInput] {
		r[fCachedInput] = r[fInput]
	}
	if !m.set[fCacheWrite] {
		r[fCacheWrite] = r[fInput]
	}
	if !m.set[fCacheWrite1h] {
		r[fCacheWrite1h] = r[fCacheWrite]
	}
	if !m.set[fReasoning] {
		r[fReasoning] = r[fOutput]
	}
	return r
}

// scaleServiceTiers gives a service tier's rate that is given flat but not
// for a long-context tier (LiteLLM's input_cost_per_token_batches without
// an _above_272k_tokens_batches) that tier's standard rate scaled as the
// service tier scales the standard one, field by field: gpt-5.4 batch is half of
// standard below 272k input tokens and, as OpenAI bills it, half of the
// long-context rate above. Without it, the contract's rule (a long-context
// rate wins over a flat service tier rate) billed a batch call above the
// threshold at the full standard long-context rate, four times what the
// same call cost one token below it. A field the service tier does not set
// keeps resolving as before; a rate scaled from a standard rate of zero
// cannot be, and stays unset.
func (p *price) scaleServiceTiers() {
	if len(p.tiers) == 0 {
		return
	}
	std := p.resolve(combo{})
	for _, name := range p.serviceNames() {
		s := p.svc[name]
		for _, a := range p.aboves() {
			long := p.resolve(combo{"", a})
			var l level
			if s.tiers[a] != nil {
				l = *s.tiers[a]
			}
			for f := field(0); f < numFields; f++ {
				if !s.own.set[f] || l.set[f] || long[f] == std[f] {
					continue // not given flat, given for the tier (LiteLLM's _above_N_tokens_S), or the same above
				}
				if v, ok := scaleDecimal(long[f], s.own.v[f], std[f]); ok {
					l.put(f, v)
				}
			}
			if l.set != ([numFields]bool{}) {
				s.tiers[a] = &l
			}
		}
	}
}

// scaleServiceDefaults gives a service tier that prices a rate (input,
// output) but not a rate the standard price gives that defaults from it
// (cached_input and cache_write from input, cache_write_1h from
// cache_write, reasoning from output) that standard rate scaled as the
// tier scales its source. gpt-4.1's batch tier (LiteLLM's
// input_cost_per_token_batches 1, output 4, for a standard 2 and 8) then
// bills cached input at 0.25, half the standard 0.5, as OpenAI bills
// every batch token at half (and as the provider's batch multiplier bills
// the models without their own batch prices). Without it the contract's
// rule (a field a service tier does not give takes the standard price's)
// billed batch cached input at the full 0.5. A rate the standard price
// does not give keeps defaulting from the tier's own source; a standard
// source of zero cannot be scaled from, and the rate stays as it was.
func (p *price) scaleServiceDefaults() {
	for _, name := range p.serviceNames() {
		s := p.svc[name]
		for f := field(0); f < numFields; f++ { // cache_write before cache_write_1h
			src, dependent := defaultOf[f]
			if !dependent || s.own.set[f] || !p.base.set[f] || !s.own.set[src] || !p.base.set[src] {
				continue
			}
			if v, ok := scaleDecimal(p.base.v[f], s.own.v[src], p.base.v[src]); ok {
				s.own.put(f, v)
			}
		}
	}
}

// anthropicCacheWrite1h writes the 1-hour cache write price of a Claude
// entry that the list does not give, as Anthropic prices it: 2 × input
// (https://docs.anthropic.com/en/docs/about-claude/pricing), at every
// standard level (the price and its long-context tiers) whose 5-minute
// cache write is Anthropic's 1.25 × input. Without it the contract's
// default (cache_write_1h = cache_write) billed 1-hour cache writes at the
// 5-minute rate, 37.5% under what the call cost: LiteLLM's list has the
// 1-hour key for most Claude entries of Anthropic's API and Vertex, and
// lacks it for most of Bedrock's and the gateways' (which bill Anthropic's
// rates). A level whose cache write is not 1.25 × input follows another
// price structure, and keeps the default. It reports whether it wrote any.
func (p *price) anthropicCacheWrite1h(key string) bool {
	if !strings.Contains(strings.ToLower(key), "claude") {
		return false
	}
	levels := []*level{&p.base}
	for _, a := range p.aboves() {
		levels = append(levels, p.tiers[a])
	}
	wrote := false
	for _, l := range levels {
		if l.set[fCacheWrite1h] || !l.set[fCacheWrite] || !l.set[fInput] || l.v[fInput] == "0" {
			continue
		}
		if w, ok := scaleDecimal(l.v[fInput], "5", "4"); !ok || w != l.v[fCacheWrite] {
			continue
		}
		if v, ok := scaleDecimal(l.v[fInput], "2", "1"); ok {
			l.put(fCacheWrite1h, v)
			wrote = true
		}
	}
	return wrote
}

func (p *price) resolveAll() map[combo]rates {
	all := make(map[combo]rates)
	for _, c := range p.combos() {
		all[c] = p.resolve(c)
	}
	return all
}

// defaultOf is the field a defaulted field takes its value from.
var defaultOf = map[field]field{
	fCachedInput: fInput, fCacheWrite: fInput, fCacheWrite1h: fCacheWrite, fReasoning: fOutput,
}

// omitDefaults drops the fields whose value is what the contract's default
// would give there (cached_input = input, cache_write = input,
// cache_write_1h = cache_write, reasoning = output at that level's service
// tier and tier), but only when the catalog then resolves every service
// tier and long-context tier to exactly the rates it resolved to before:
// a level's field may be what other levels inherit, and then it stays.
func (p *price) omitDefaults() {
	if p.explicit {
		return
	}
	truth := p.resolveAll()
	type place struct {
		l *level
		c combo
	}
	places := []place{{&p.base, combo{}}}
	for _, a := range p.aboves() {
		places = append(places, place{p.tiers[a], combo{"", a}})
	}
	for _, st := range p.serviceNames() {
		s := p.svc[st]
		places = append(places, place{&s.own, combo{st, 0}})
		for _, a := range p.aboves() {
			if s.tiers[a] != nil {
				places = append(places, place{s.tiers[a], combo{st, a}})
			}
		}
	}
	for _, pl := range places {
		for _, f := range []field{fCachedInput, fCacheWrite, fCacheWrite1h, fReasoning} {
			if !pl.l.set[f] || truth[pl.c][f] != truth[pl.c][defaultOf[f]] {
				continue
			}
			if pl.c.st != "" && pl.c.above == 0 && pl.l.count() == 1 && len(p.svc[pl.c.st].tiers) == 0 {
				continue // a service tier's last field: an empty one does not load
			}
			pl.l.set[f] = false
			for c, r := range p.resolveAll() {
				if r != truth[c] {
					pl.l.set[f] = true
					break
				}
			}
		}
	}
}

// equal reports whether p and q write the same levels.
func (p *price) equal(q *price) bool {
	if p.base != q.base || len(p.tiers) != len(q.tiers) || len(p.svc) != len(q.svc) {
		return false
	}
	for a, l := range p.tiers {
		if m := q.tiers[a]; m == nil || *m != *l {
			return false
		}
	}
	for n, s := range p.svc {
		t := q.svc[n]
		if t == nil || s.own != t.own || len(s.tiers) != len(t.tiers) {
			return false
		}
		for a, l := range s.tiers {
			if m := t.tiers[a]; m == nil || *m != *l {
				return false
			}
		}
	}
	return true
}

// node returns the price as a catalog `prices` item effective from.
func (p *price) node(from string) *yaml.Node {
	m := mapNode()
	add(m, "from", strNode(from))
	p.base.addTo(m)
	if len(p.tiers) > 0 {
		add(m, "tiers", tiersNode(p.tiers, p.aboves()))
	}
	if len(p.svc) > 0 {
		sm := mapNode()
		for _, name := range p.serviceNames() {
			s := p.svc[name]
			n := mapNode()
			s.own.addTo(n)
			if len(s.tiers) > 0 {
				var as []int64
				for _, a := range p.aboves() {
					if s.tiers[a] != nil {
						as = append(as, a)
					}
				}
				add(n, "tiers", tiersNode(s.tiers, as))
			}
			add(sm, name, n)
		}
		add(m, "service_tiers", sm)
	}
	return m
}

func tiersNode(tiers map[int64]*level, aboves []int64) *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, a := range aboves {
		t := mapNode()
		add(t, "above", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(a, 10)})
		tiers[a].addTo(t)
		seq.Content = append(seq.Content, t)
	}
	return seq
}

func (l *level) addTo(m *yaml.Node) {
	for f := field(0); f < numFields; f++ {
		if l.set[f] {
			add(m, fieldNames[f], strNode(l.v[f]))
		}
	}
}

func mapNode() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"} }

// strNode is a double-quoted string: YAML reads it back as exactly s,
// whatever s holds (':', '#', '@', spaces, "yes", "1e3", escapes).
func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
}

// add appends key: v to mapping m; keys are the catalog's plain field names.
func add(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}
