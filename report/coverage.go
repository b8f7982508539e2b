package report

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/render"
)

// The defaults of a coverage request.
const (
	DefaultCoverageSince = "7d"
	DefaultStaleAfter    = "180d"
)

// CoverageRow is one provider, model and service tier of the traffic,
// classified under a catalog.
type CoverageRow struct {
	// Status is unpriced, regex, service_tier, stale or ok.
	Status      string
	Provider    string
	Model       string
	ServiceTier string
	Requests    uint64
	// UnpricedAtIngest are the calls the aggregator's catalog had no
	// price for.
	UnpricedAtIngest uint64
	CostUSD          pricing.Pico
	Note             string
}

// Coverage is a coverage request: the usage of [Now−Since, Now) by
// provider, model and service tier, restricted by Where.
type Coverage struct {
	Since, StaleAfter time.Duration
	Where             map[analytics.Dim][]string
	// All keeps the rows whose status is ok.
	All bool
}

// ParseCoverage reads since (default 7d), stale-after (default 180d) and
// where; all is left to the caller.
func ParseCoverage(p Params) (Coverage, error) {
	var c Coverage
	var err error
	for _, f := range []struct {
		name, def string
		dst       *time.Duration
	}{{"since", DefaultCoverageSince, &c.Since}, {"stale-after", DefaultStaleAfter, &c.StaleAfter}} {
		s := p.Value(f.name)
		if s == "" {
			s = f.def
		}
		if *f.dst, err = ParseSince(s); err != nil {
			return c, paramErr(f.name, "invalid %s %v", p.Name(f.name), err)
		}
	}
	_, c.Where, _, err = ParseByWhere(p)
	return c, err
}

// CoverageRows runs c at now and classifies the traffic under cat, worst
// first (see Classify); without c.All only the problems.
func CoverageRows(ctx context.Context, q *analytics.Querier, cat *pricing.Catalog, c Coverage, now time.Time) ([]CoverageRow, error) {
	usage, err := q.Usage(ctx, analytics.UsageQuery{From: now.Add(-c.Since), To: now, Where: c.Where,
		By: []analytics.Dim{analytics.DimProvider, analytics.DimModel, analytics.DimServiceTier}, NoLatency: true})
	if err != nil {
		return nil, err
	}
	rows := Classify(cat, usage, now, c.StaleAfter)
	if !c.All {
		rows = slices.DeleteFunc(rows, func(r CoverageRow) bool { return r.Status == "ok" })
	}
	return rows, nil
}

// CoverageTable is the report of rows.
func CoverageTable(rows []CoverageRow, cat *pricing.Catalog) *render.Table {
	t := &render.Table{
		Title: "price coverage under " + cat.Name(),
		Empty: "every model of the traffic is priced",
		Columns: []render.Column{
			{Name: "status", Kind: render.KindText}, {Name: "provider", Kind: render.KindText},
			{Name: "model", Kind: render.KindText}, {Name: "service_tier", Kind: render.KindText},
			{Name: "requests", Kind: render.KindUint}, {Name: "unpriced_at_ingest", Kind: render.KindUint},
			{Name: "cost_usd", Kind: render.KindMoney}, {Name: "note", Kind: render.KindText},
		},
	}
	for _, r := range rows {
		t.Rows = append(t.Rows, []render.Value{render.Text(r.Status), render.Text(r.Provider), render.Text(r.Model),
			render.Text(r.ServiceTier), render.Uint(r.Requests), render.Uint(r.UnpricedAtIngest), render.Money(r.CostUSD), render.Text(r.Note)})
	}
	return t
}

// Classify classifies the usage groups (provider, model, service tier)
// under cat at now: unpriced (no entry or no price yet), regex (priced by a
// match entry), service_tier (the entry has no price for the group's
// service tier: standard rates), stale (the price is older than stale:
// its from, or the catalog's updated date if later), or ok. Worst first,
// then by calls.
func Classify(cat *pricing.Catalog, usage []analytics.UsageRow, now time.Time, stale time.Duration) []CoverageRow {
	var updated time.Time
	if u := cat.Updated(); u != "" {
		if t, err := ParseTime(u); err == nil {
			updated = t
		}
	}
	rank := map[string]int{"unpriced": 0, "regex": 1, "service_tier": 2, "stale": 3, "ok": 4}
	var rows []CoverageRow
	for i := range usage {
		u := &usage[i]
		r := CoverageRow{Provider: u.Group[analytics.DimProvider], Model: u.Group[analytics.DimModel],
			ServiceTier: u.Group[analytics.DimServiceTier], Requests: u.Requests, UnpricedAtIngest: u.UnpricedRequests,
			CostUSD: u.CostUSD, Status: "ok"}
		e := cat.Lookup(r.Provider, r.Model)
		var p pricing.Price
		ok := false
		if e != nil {
			p, ok = e.PriceAt(now)
		}
		switch {
		case e == nil:
			r.Status, r.Note = "unpriced", "no entry for this provider and model"
		case !ok:
			r.Status, r.Note = "unpriced", "the entry's first price is later than now"
		case e.Match != "":
			r.Status, r.Note = "regex", "priced by match "+strconv.Quote(e.Match)
		case r.ServiceTier != "" && !slices.Contains(p.ServiceTierNames(), r.ServiceTier):
			r.Status, r.Note = "service_tier", "no "+r.ServiceTier+" price: charged the standard rates"
		default:
			asOf := p.From
			if updated.After(asOf) {
				asOf = updated
			}
			if now.Sub(asOf) > stale {
				r.Status = "stale"
				r.Note = fmt.Sprintf("price as of %s, %d days ago", asOf.Format("2006-01-02"), int(now.Sub(asOf).Hours()/24))
			}
		}
		rows = append(rows, r)
	}
	slices.SortStableFunc(rows, func(a, b CoverageRow) int {
		if d := rank[a.Status] - rank[b.Status]; d != 0 {
			return d
		}
		switch {
		case a.Requests > b.Requests:
			return -1
		case a.Requests < b.Requests:
			return 1
		}
		return strings.Compare(a.Provider+"\x00"+a.Model+"\x00"+a.ServiceTier, b.Provider+"\x00"+b.Model+"\x00"+b.ServiceTier)
	})
	return rows
}
