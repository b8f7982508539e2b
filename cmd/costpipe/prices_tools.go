package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/render"
	"github.com/costpipe/costpipe/report"
	"github.com/costpipe/costpipe/warehouse"
)

// loadNamedCatalog loads a catalog named on the command line: a file, or
// "default" for the embedded one.
func loadNamedCatalog(arg, what string) (*pricing.Catalog, error) {
	if arg == "default" {
		return pricing.Default(), nil
	}
	cat, err := pricing.Load(arg)
	if err != nil {
		return nil, &exitError{code: 2, msg: fmt.Sprintf("cannot load %s catalog %s:\n%v", what, arg, err)}
	}
	return cat, nil
}

// rateNames are the rate fields in catalog order.
var rateNames = pricing.RateFields()

// flattenPrice lists every effective rate of a price by a path such as
// "input", "tier>200000 output", "batch input" or "priority tier>272000
// input": what a call on that service tier and long-context tier pays.
func flattenPrice(p *pricing.Price) map[string]pricing.Pico {
	out := map[string]pricing.Pico{}
	tiers := append([]string{""}, p.ServiceTierNames()...)
	aboves := []int64{0}
	for _, t := range p.Tiers {
		aboves = append(aboves, t.Above)
	}
	for _, st := range tiers {
		for _, a := range aboves {
			r, _, _ := p.RatesFor(st, a+1)
			prefix := ""
			if st != "" {
				prefix = st + " "
			}
			if a > 0 {
				prefix += "tier>" + strconv.FormatInt(a, 10) + " "
			}
			for i, v := range r.Values() {
				out[prefix+rateNames[i]] = v
			}
		}
	}
	return out
}

// entryKey names an entry across catalogs: provider and model, or the
// regex prefixed with "~".
func entryKey(e *pricing.Entry) string {
	if e.Match != "" {
		return e.Provider + "\x00~" + e.Match
	}
	return e.Provider + "\x00" + e.Model
}

type diffRow struct {
	Change   string `json:"change"` // added, removed, changed, reordered, other period
	Provider string `json:"provider"`
	Model    string `json:"model"`
	Field    string `json:"field,omitempty"`
	Old      string `json:"old,omitempty"`
	New      string `json:"new,omitempty"`
	Percent  string `json:"change_pct,omitempty"`
}

func pricesDiff(c *cli.Context) error {
	if c.NArg() != 2 {
		return &exitError{code: 2, msg: "usage: costpipe prices diff OLD NEW (files, or \"default\" for the embedded catalog)"}
	}
	format := c.String("format")
	if format != "table" && format != "json" {
		return &exitError{code: 2, msg: fmt.Sprintf("invalid --format %q: want table or json", format)}
	}
	at, err := parseAt(c.String("at"))
	if err != nil {
		return &exitError{code: 2, msg: "--at: " + err.Error()}
	}
	oldCat, err := loadNamedCatalog(c.Args().Get(0), "old")
	if err != nil {
		return err
	}
	newCat, err := loadNamedCatalog(c.Args().Get(1), "new")
	if err != nil {
		return err
	}
	rows, counts := diffCatalogs(oldCat, newCat, at)
	if format == "json" {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if rows == nil {
			rows = []diffRow{}
		}
		if err := enc.Encode(rows); err != nil {
			return err
		}
	} else {
		out := bufio.NewWriter(c.App.Writer)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		if len(rows) > 0 {
			fmt.Fprintln(tw, "CHANGE\tPROVIDER\tMODEL\tFIELD\tOLD\tNEW\tCHANGE %\t")
		}
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Change, r.Provider, r.Model, r.Field, r.Old, r.New, r.Percent)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s → %s at %s: %d added, %d removed, %d changed, %d unchanged (USD per 1M tokens)\n",
			oldCat.Name(), newCat.Name(), at.Format(time.RFC3339), counts[0], counts[1], counts[2], counts[3])
		if counts[4] > 0 {
			fmt.Fprintf(out, "%d alike at %s price differently in another period (CHANGE \"other period\"): compare there with --at; costpipe reprice corrects the stored cost of a past one\n", counts[4], at.Format(time.DateOnly))
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
	if c.Bool("exit-code") && counts[0]+counts[1]+counts[2]+counts[4] > 0 {
		return &exitError{code: 1}
	}
	return nil
}

// diffCatalogs compares the prices in effect at at. counts are added,
// removed, changed and unchanged entries, and of those unchanged (or
// absent from both) at at, the ones that differ in another period.
func diffCatalogs(oldCat, newCat *pricing.Catalog, at time.Time) ([]diffRow, [5]int) {
	type side struct {
		e *pricing.Entry
		p *pricing.Price
	}
	collect := func(cat *pricing.Catalog) map[string]side {
		m := map[string]side{}
		for _, e := range cat.Entries() {
			if p, ok := e.PriceAt(at); ok {
				m[entryKey(e)] = side{e, &p}
			}
		}
		return m
	}
	olds, news := collect(oldCat), collect(newCat)
	keys := sortedKeys(olds, news)
	var rows []diffRow
	var counts [5]int
	unchanged := map[string]bool{}
	name := func(e *pricing.Entry) string {
		if e.Match != "" {
			return "~" + e.Match
		}
		return e.Model
	}
	summary := func(p *pricing.Price) string {
		return "input " + usd(p.Input) + ", output " + usd(p.Output)
	}
	for _, k := range keys {
		o, hasOld := olds[k]
		n, hasNew := news[k]
		switch {
		case !hasOld:
			counts[0]++
			rows = append(rows, diffRow{Change: "added", Provider: n.e.Provider, Model: name(n.e), New: summary(n.p)})
		case !hasNew:
			counts[1]++
			rows = append(rows, diffRow{Change: "removed", Provider: o.e.Provider, Model: name(o.e), Old: summary(o.p)})
		default:
			fo, fn := flattenPrice(o.p), flattenPrice(n.p)
			var fields []string
			for f := range fo {
				fields = append(fields, f)
			}
			for f := range fn {
				if _, ok := fo[f]; !ok {
					fields = append(fields, f)
				}
			}
			slices.SortFunc(fields, compareRateField)
			changed := false
			for _, f := range fields {
				ov, okO := fo[f]
				nv, okN := fn[f]
				if okO && okN && ov == nv {
					continue
				}
				changed = true
				r := diffRow{Change: "changed", Provider: n.e.Provider, Model: name(n.e), Field: f}
				if okO {
					r.Old = usd(ov)
				}
				if okN {
					r.New = usd(nv)
				}
				if okO && okN && !ov.IsZero() {
					r.Percent = percentChange(ov, nv)
				}
				rows = append(rows, r)
			}
			if changed {
				counts[2]++
				continue
			}
			counts[3]++
			unchanged[k] = true
		}
	}
	// Among a provider's regexes the first in file order wins, whatever
	// its prices (one without a price at a call's time leaves the call
	// unpriced): two regexes that trade places can price a model at the
	// other's rates, or not at all. Each regex of both catalogs whose rank
	// among the provider's regexes of both changed is a change.
	regexes := func(cat *pricing.Catalog) map[string]*pricing.Entry {
		m := map[string]*pricing.Entry{}
		for _, e := range cat.Entries() {
			if e.Match != "" {
				m[entryKey(e)] = e
			}
		}
		return m
	}
	oldRe, newRe := regexes(oldCat), regexes(newCat)
	order := func(cat *pricing.Catalog, other map[string]*pricing.Entry) map[string]int {
		rank, next := map[string]int{}, map[string]int{}
		for _, e := range cat.Entries() {
			if k := entryKey(e); e.Match != "" && other[k] != nil {
				next[e.Provider]++
				rank[k] = next[e.Provider]
			}
		}
		return rank
	}
	oldRank, newRank := order(oldCat, newRe), order(newCat, oldRe)
	for _, k := range slices.Sorted(maps.Keys(oldRank)) {
		or, nr := oldRank[k], newRank[k]
		if or == nr {
			continue
		}
		e := newRe[k]
		rows = append(rows, diffRow{Change: "reordered", Provider: e.Provider, Model: name(e), Field: "regex order",
			Old: strconv.Itoa(or), New: strconv.Itoa(nr)})
		_, priced := olds[k]
		_, pricedNew := news[k]
		switch {
		case unchanged[k]:
			unchanged[k] = false
			counts[3]--
			counts[2]++
		case !priced && !pricedNew:
			counts[2]++ // priced in neither at at, yet it shadows others
		}
	}
	// An entry that prices alike at at may still differ in another period
	// (a past price corrected, a future one added): the very change that
	// costpipe reprice rewrites stored costs for. Say where.
	listed := map[string]bool{}
	for _, r := range rows {
		listed[r.Provider+"\x00"+r.Model] = true
	}
	oldByKey := make(map[string]*pricing.Entry, len(oldCat.Entries()))
	for _, e := range oldCat.Entries() {
		oldByKey[entryKey(e)] = e
	}
	newByKey := make(map[string]*pricing.Entry, len(newCat.Entries()))
	for _, e := range newCat.Entries() {
		newByKey[entryKey(e)] = e
	}
	none := &pricing.Entry{} // an entry without prices, for one-sided keys
	for _, ne := range newCat.Entries() {
		oe := oldByKey[entryKey(ne)]
		if listed[ne.Provider+"\x00"+name(ne)] {
			continue
		}
		if oe == nil {
			oe = none // an entry whose prices all start after at: added later
		}
		if from, ok := firstDifference(oe, ne); ok {
			counts[4]++
			rows = append(rows, diffRow{Change: "other period", Provider: ne.Provider, Model: name(ne), Field: "from " + from.Format(time.RFC3339)})
		}
	}
	for _, oe := range oldCat.Entries() {
		if newByKey[entryKey(oe)] != nil || listed[oe.Provider+"\x00"+name(oe)] {
			continue
		}
		if from, ok := firstDifference(oe, none); ok {
			counts[4]++
			rows = append(rows, diffRow{Change: "other period", Provider: oe.Provider, Model: name(oe), Field: "from " + from.Format(time.RFC3339)})
		}
	}
	// Tenant discounts change what every call of the tenant costs.
	oldT, newT := map[string]pricing.Pico{}, map[string]pricing.Pico{}
	for _, t := range oldCat.Tenants() {
		oldT[t.Name] = t.Discount
	}
	for _, t := range newCat.Tenants() {
		newT[t.Name] = t.Discount
	}
	for _, n := range sortedKeys(oldT, newT) {
		ov, okO := oldT[n]
		nv, okN := newT[n]
		if okO && okN && ov == nv {
			continue
		}
		r := diffRow{Change: "changed", Provider: "(tenant)", Model: n, Field: "discount"}
		if okO {
			r.Old = shortFraction(ov)
		}
		if okN {
			r.New = shortFraction(nv)
		}
		counts[2]++
		rows = append(rows, r)
	}
	return rows, counts
}

// sortedKeys is the keys of a and b, each once, sorted.
func sortedKeys[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// shortFraction writes a fraction without trailing zeros: 0.1, not
// 0.100000000000.
func shortFraction(p pricing.Pico) string {
	s := p.String()
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// firstDifference is the earliest time at which a and b (two catalogs'
// entries for one model) price differently, or at which one has a price
// and the other none.
func firstDifference(a, b *pricing.Entry) (time.Time, bool) {
	var froms []time.Time
	for _, e := range []*pricing.Entry{a, b} {
		for _, p := range e.Prices {
			froms = append(froms, p.From)
		}
	}
	slices.SortFunc(froms, time.Time.Compare)
	for _, t := range froms {
		pa, okA := a.PriceAt(t)
		pb, okB := b.PriceAt(t)
		if okA != okB || okA && !maps.Equal(flattenPrice(&pa), flattenPrice(&pb)) {
			return t, true
		}
	}
	return time.Time{}, false
}

// compareRateField orders paths by service tier, then tier, then the
// catalog's field order.
func compareRateField(a, b string) int {
	pa, fa := splitField(a)
	pb, fb := splitField(b)
	if pa != pb {
		return strings.Compare(pa, pb)
	}
	return slices.Index(rateNames, fa) - slices.Index(rateNames, fb)
}

func splitField(s string) (prefix, field string) {
	if i := strings.LastIndexByte(s, ' '); i >= 0 {
		return s[:i], s[i+1:]
	}
	return "", s
}

// percentChange is (n − o)/o in percent, exactly computed, one decimal.
func percentChange(o, n pricing.Pico) string {
	r := new(big.Rat).SetFrac(new(big.Int).Sub(n.BigInt(), o.BigInt()), o.BigInt())
	r.Mul(r, big.NewRat(100, 1))
	f, _ := r.Float64()
	return fmt.Sprintf("%+.1f", f)
}

type coverageRow struct {
	Status      string `json:"status"` // unpriced, regex, stale, service_tier, ok
	Provider    string `json:"provider"`
	Model       string `json:"model"`
	ServiceTier string `json:"service_tier"`
	Requests    uint64 `json:"requests"`
	// UnpricedAtIngest are the calls the aggregator's catalog had no price for.
	UnpricedAtIngest uint64 `json:"unpriced_at_ingest"`
	CostUSD          string `json:"cost_usd"`
	Note             string `json:"note,omitempty"`
}

func pricesCoverage(c *cli.Context) error {
	if c.NArg() > 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("prices coverage takes no arguments, got %q", c.Args().First())}
	}
	format := c.String("format")
	if format != "table" && format != "json" {
		return &exitError{code: 2, msg: fmt.Sprintf("invalid --format %q: want table or json", format)}
	}
	since, err := parseSince(c.String("since"))
	if err != nil {
		return &exitError{code: 2, msg: "invalid --since: " + err.Error()}
	}
	stale, err := parseSince(c.String("stale-after"))
	if err != nil {
		return &exitError{code: 2, msg: "invalid --stale-after: " + err.Error()}
	}
	cat, err := loadCatalog(c)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	opts := warehouse.DefaultOptions()
	opts.DSN = c.String("clickhouse")
	if err := clickhouseSecurity(c, &opts); err != nil {
		return err
	}
	w, err := warehouse.Open(c.Context, opts)
	if err != nil {
		return err
	}
	defer w.Close()
	q := analytics.New(w, querierOptions(c))
	usage, err := q.Usage(c.Context, analytics.UsageQuery{From: now.Add(-since), To: now,
		By: []analytics.Dim{analytics.DimProvider, analytics.DimModel, analytics.DimServiceTier}})
	if err != nil {
		return err
	}
	rows := coverage(cat, usage, now, stale)
	var total, problem uint64
	var shown []coverageRow
	for _, r := range rows {
		total += r.Requests
		if r.Status != "ok" {
			problem += r.Requests
		}
		if r.Status != "ok" || c.Bool("all") {
			shown = append(shown, r)
		}
	}
	if format == "json" {
		if shown == nil {
			shown = []coverageRow{}
		}
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(shown)
	}
	out := bufio.NewWriter(c.App.Writer)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	if len(shown) > 0 {
		fmt.Fprintln(tw, "STATUS\tPROVIDER\tMODEL\tSERVICE_TIER\tCALLS\tUNPRICED AT INGEST\tCOST USD\tNOTE\t")
	}
	for _, r := range shown {
		st := r.ServiceTier
		if st == "" {
			st = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Status, r.Provider, r.Model, st, render.Thousands(r.Requests),
			render.Thousands(r.UnpricedAtIngest), r.CostUSD, r.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	pct := 0.0
	if total > 0 {
		pct = float64(problem) / float64(total) * 100
	}
	fmt.Fprintf(out, "%s of %s calls (%.2f%%) in the last %s are unpriced, priced by a regex, at a stale price or on a service tier without its own price, under %s",
		render.Thousands(problem), render.Thousands(total), pct, c.String("since"), cat.Name())
	if cat.Updated() != "" {
		fmt.Fprintf(out, " (updated %s)", cat.Updated())
	}
	fmt.Fprintln(out)
	return out.Flush()
}

// coverage classifies the usage groups under cat at now (report.Classify).
func coverage(cat *pricing.Catalog, usage []analytics.UsageRow, now time.Time, stale time.Duration) []coverageRow {
	var rows []coverageRow
	for _, r := range report.Classify(cat, usage, now, stale) {
		rows = append(rows, coverageRow{Status: r.Status, Provider: r.Provider, Model: r.Model, ServiceTier: r.ServiceTier,
			Requests: r.Requests, UnpricedAtIngest: r.UnpricedAtIngest, CostUSD: usd(r.CostUSD), Note: r.Note})
	}
	return rows
}
