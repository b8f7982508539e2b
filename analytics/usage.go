package analytics

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/pipelines/sketch"
	"github.com/costpipe/costpipe/warehouse"
)

// UsageQuery selects usage in the half-open range [From, To) of the rows'
// ts (the start of their minute, hour or day, UTC), grouped by By and
// filtered by Where.
type UsageQuery struct {
	// From is the inclusive start. Required. Sub-second parts round up
	// (ts has whole seconds).
	From time.Time
	// To is the exclusive end; zero means the Querier's Now().
	To time.Time
	// By lists the dimensions to group by, each at most once; none gives a
	// single row of totals.
	By []Dim
	// Where keeps rows whose dimension has one of the listed values: OR
	// within a dimension, AND across dimensions. A listed dimension needs at
	// least one value; "" matches the empty value (e.g. error_type of
	// successful calls).
	Where map[Dim][]string
	// Granularity chooses the tables read; zero is GranularityAuto.
	Granularity Granularity
	// Reprice, when set, also prices every group's stored token, GPU and
	// request sums with this catalog, as if it had priced every call
	// (what-if pricing): see UsageRow.Reprice and pricing.CostOfSums.
	Reprice *pricing.Catalog
	// MapModel re-prices the calls of a model (the key) as calls of another
	// (the value): "what if this tenant moved to that model". The new
	// model's provider is the call's when the catalog prices the model
	// there, else the one provider whose entry has that exact model name.
	// Only with Reprice.
	MapModel map[string]string
	// NoLatency leaves the latency and TTFT distributions out: the rows'
	// Latency and TTFT are empty, and a long range answers several times
	// faster (merging the histograms is most of its query). For callers
	// that need the sums only (top groups, a forecast's spend so far).
	NoLatency bool
	// NoTTFT leaves the TTFT distribution out and keeps the latency one:
	// the rows' TTFT is empty, and the query merges one histogram instead
	// of two (the alert backtest's latency rules).
	NoTTFT bool
}

// UsageRow is the usage of one group (or the totals).
type UsageRow struct {
	// Group holds the value of each dimension of the query's By.
	Group map[Dim]string

	Requests          uint64 // calls
	Errors            uint64 // calls with status "error"
	InputTokens       uint64 // all prompt tokens, cached ones included
	CachedInputTokens uint64 // prompt tokens read from cache (part of InputTokens)
	CacheWriteTokens  uint64 // prompt tokens written to cache (part of InputTokens)
	// CacheWrite1hTokens are the cache writes with a 1-hour lifetime (part
	// of CacheWriteTokens).
	CacheWrite1hTokens uint64
	OutputTokens       uint64 // all completion tokens, reasoning included
	ReasoningTokens    uint64 // part of OutputTokens
	UnpricedRequests   uint64 // calls whose model had no price (cost 0)
	// GPUMicros is the accelerator time in microseconds (exact).
	GPUMicros uint64
	// GPUMs is GPUMicros/1000, for display.
	GPUMs float64
	// CostUSD is the exact cost.
	CostUSD pricing.Pico

	// Latency and TTFT summarise the calls that reported latency_ms and
	// ttft_ms respectively.
	Latency, TTFT Percentiles

	// Reprice is the group's usage priced with UsageQuery.Reprice; nil
	// without one.
	Reprice *Repriced
}

// Repriced is a group's usage priced with another catalog.
type Repriced struct {
	// CostUSD is the cost under the catalog, exact (rounded once per
	// tenant, provider, model, service tier, context band and price period;
	// see pricing.CostOfSums).
	CostUSD pricing.Pico
	// UnpricedRequests are the calls the catalog has no price for (cost 0).
	UnpricedRequests uint64

	requests uint64 // the calls re-priced, priced or not (coverage check)
}

// Percentiles summarise a duration, in milliseconds, over a group's calls.
// When Count is 0 (no call reported it) every other field is 0 and
// Present is false.
type Percentiles struct {
	Count uint64  // calls that reported the duration
	Avg   float64 // exact mean (from the microsecond sum)
	Min   float64 // minimum, from the lowest histogram bucket (within 1%)
	Max   float64 // maximum, from the highest histogram bucket (within 1%)
	P50   float64 // median, within 1% (sketch.Alpha)
	P90   float64 // 90th percentile, within 1%
	P95   float64 // 95th percentile, within 1%
	P99   float64 // 99th percentile, within 1%
	P999  float64 // 99.9th percentile, within 1%

	hist      *sketch.Histogram // the merged histogram, nil when empty
	sumMicros uint64            // the exact sum Avg is computed from
}

// Present reports whether any call reported the duration.
func (p Percentiles) Present() bool { return p.Count > 0 }

// Quantile returns the value at quantile q (0 ≤ q ≤ 1) in milliseconds,
// within 1% relative error; ok is false when no call reported the
// duration.
func (p Percentiles) Quantile(q float64) (v float64, ok bool) {
	if p.hist == nil {
		return 0, false
	}
	return p.hist.Quantile(q)
}

// Usage returns the usage of uq, one row per group ordered by cost
// (descending) then the group's values; an empty slice when nothing
// matched. It fails on an invalid query, naming the bad value, and when
// there are more groups than Options.MaxRows. The rows count the range
// UsageAnswered returns: an edge whose minute (or hour) rows retention
// has dropped is read whole.
func (q *Querier) Usage(ctx context.Context, uq UsageQuery) ([]UsageRow, error) {
	out, _, err := q.UsageAnswered(ctx, uq)
	return out, err
}

// UsageAnswered is Usage that also returns the range its rows count:
// uq's, aligned to whole minutes, and with GranularityAuto each edge
// widened to the whole hour (or UTC day) where retention has dropped the
// minute (or hour) rows it needs, Answered.Note saying so. A fixed
// granularity over a month whose rows are dropped fails (ErrDropped).
func (q *Querier) UsageAnswered(ctx context.Context, uq UsageQuery) ([]UsageRow, Answered, error) {
	n, err := normalize(uq, q.opts.Now())
	if err != nil {
		return nil, Answered{}, err
	}
	var out []UsageRow
	read, err := q.retainedRead(ctx, n, func(n normalized) (err error) {
		out, _, err = q.usageRows(ctx, n, q.opts.MaxRows, false)
		return err
	})
	if err != nil {
		return nil, Answered{}, err
	}
	if uq.Reprice != nil {
		if err := q.reprice(ctx, read, out, uq.Reprice, uq.MapModel); err != nil {
			return nil, Answered{}, err
		}
	}
	return out, answered(n.from, n.to, read.from, read.to), nil
}

// usageRows reads the groups of n, ordered by n.order (descending) then by
// group. Without top it fails when there are more than limit groups; with
// top it returns the first limit groups and, second, the totals of every
// group (GROUP BY … WITH TOTALS: one query, so the groups and the totals
// see the same data).
//
// A query that groups and filters by provider and model only, over a range
// holding at least one whole hour, reads the per-model summaries (a
// shorter one reads few rows anyway, and the check would cost more than it
// saves), its whole weeks of days from the weekly summary and its last day
// and week whole when the range ends now (toEndOfDay, toWeeks), while a
// second query checks them against the rollups over the same range
// (verifySummaries). When today whole holds more than the range (calls
// stamped after now), the summaries are read again with the range's own
// segments; when they still disagree, or reading them fails, the rollups
// answer and the Logger says why.
func (q *Querier) usageRows(ctx context.Context, n normalized, limit int, top bool) ([]UsageRow, UsageRow, error) {
	segs, err := plan(n.from, n.to, n.g)
	if err != nil {
		return nil, UsageRow{Group: map[Dim]string{}}, err
	}
	if q.opts.NoSummaries || !summarizable(n) || !coarse(segs) {
		return q.readUsage(ctx, n, segs, limit, top, false)
	}
	planned, whole := toEndOfDay(segs, q.opts.Now())
	out, total, v, err := q.trySummaries(ctx, n, segs, toWeeks(planned, whole), limit, top)
	if err == nil && v.why != "" && whole {
		// Today (and this week) whole held more than the range (calls
		// stamped after now): the range's own segments, checked again.
		out, total, v, err = q.trySummaries(ctx, n, segs, toWeeks(segs, false), limit, top)
	}
	switch {
	case ctx.Err() != nil:
		return nil, total, ctx.Err()
	case err == nil && v.ok:
		return out, total, nil
	case warehouse.Unavailable(err) || warehouse.PoolExhausted(err) ||
		err == nil && (warehouse.Unavailable(v.err) || warehouse.PoolExhausted(v.err)):
		// ClickHouse down (or every connection busy): the rollups would
		// fail the same way, and the caller reports the outage once; not a
		// fault of the summaries, so no warning and no fallback counted.
		if err == nil {
			err = v.err
		}
		return nil, total, err
	case migrating(err) || err == nil && migrating(v.err):
		// No such table or database. Not migrated at all, the rollups'
		// read fails too and its error says so, without a warning before
		// it; only the summaries missing, it is the fallback it always was.
		out, total, rerr := q.readUsage(ctx, n, segs, limit, top, false)
		if rerr != nil {
			return out, total, rerr
		}
		if err == nil {
			err = v.err
		}
		q.opts.Logger.Warn("cannot read the per-model summaries; answering from the rollups", "range", rangeString(n.from, n.to), "err", err)
		q.fallbacks.Add(1)
		return out, total, nil
	case err != nil:
		q.opts.Logger.Warn("cannot read the per-model summaries; answering from the rollups", "range", rangeString(n.from, n.to), "err", err)
	case v.err != nil:
		q.opts.Logger.Warn("cannot check the per-model summaries; answering from the rollups", "range", rangeString(n.from, n.to), "err", v.err)
	default:
		q.opts.Logger.Warn("the per-model summaries disagree with the rollups; answering from the rollups (docs/operations.md, \"Per-model summaries\")",
			"range", rangeString(n.from, n.to), "difference", v.why)
	}
	q.fallbacks.Add(1)
	return q.readUsage(ctx, n, segs, limit, top, false)
}

// trySummaries reads planned from the summaries while it checks them
// against the rollups' exact segments (verifySummaries), the two queries
// side by side; err is the read's.
func (q *Querier) trySummaries(ctx context.Context, n normalized, exact, planned []segment, limit int, top bool) ([]UsageRow, UsageRow, summaryVerdict, error) {
	vctx, cancel := context.WithCancel(ctx)
	defer cancel()
	verdict := make(chan summaryVerdict, 1)
	go func() { verdict <- q.verifySummaries(vctx, n, exact, planned) }()
	out, total, err := q.readUsage(ctx, n, planned, limit, top, true)
	if err != nil {
		cancel()
	}
	return out, total, <-verdict, err
}

// readUsage is usageRows reading segs from the rollups, or from their
// per-model summaries with summary.
func (q *Querier) readUsage(ctx context.Context, n normalized, segs []segment, limit int, top, summary bool) ([]UsageRow, UsageRow, error) {
	total := UsageRow{Group: map[Dim]string{}}
	sqlLimit := limit + 1
	if top {
		sqlLimit = limit
	}
	query, args := usageSQL(q.w.Database(), n, segs, sqlLimit, top, summary)
	rows, err := q.w.Conn().Query(ctx, query, args...)
	if err != nil {
		return nil, total, fmt.Errorf("cannot query usage in [%s, %s): %w", n.from.Format(time.RFC3339), n.to.Format(time.RFC3339), err)
	}
	defer rows.Close()
	dest := func(s *scanned, keys []string) []any {
		dst := make([]any, 0, len(keys)+32)
		for i := range keys {
			dst = append(dst, &keys[i])
		}
		return append(dst, s.dest()...)
	}
	out := []UsageRow{}
	for rows.Next() {
		if len(out) == limit {
			return nil, total, fmt.Errorf("%w: usage query has more than %d groups: group by fewer dimensions or filter", ErrTooManyGroups, limit)
		}
		var s scanned
		keys := make([]string, len(n.by))
		if err := rows.Scan(dest(&s, keys)...); err != nil {
			return nil, total, fmt.Errorf("cannot read usage row: %w", err)
		}
		if s.rows == 0 {
			continue // totals over no rows
		}
		s.noDists, s.noTTFT = n.noDists, n.noTTFT
		r, err := s.row()
		if err != nil {
			return nil, total, fmt.Errorf("group %s: %w", groupString(n.by, keys), err)
		}
		r.Group = make(map[Dim]string, len(keys))
		for i, d := range n.by {
			r.Group[d] = keys[i]
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, total, fmt.Errorf("cannot read usage rows: %w", err)
	}
	if top && len(n.by) > 0 {
		var s scanned
		keys := make([]string, len(n.by))
		if err := rows.Totals(dest(&s, keys)...); err != nil {
			return nil, total, fmt.Errorf("cannot read usage totals: %w", err)
		}
		if s.rows > 0 {
			s.noDists, s.noTTFT = n.noDists, n.noTTFT
			if total, err = s.row(); err != nil {
				return nil, total, fmt.Errorf("totals: %w", err)
			}
			total.Group = map[Dim]string{}
		}
	} else if top && len(out) == 1 {
		total = out[0]
	}
	return out, total, nil
}

// maxRepriceGroups bounds the finer groups a what-if query reads.
const maxRepriceGroups = 1_000_000

// priceDims are the dimensions that decide a call's rates.
var priceDims = []Dim{DimTenant, DimProvider, DimModel, DimServiceTier, DimContextBand}

// reprice fills the Reprice of out, the groups of n: it reads the usage by
// n's dimensions and the price dimensions, for each period in which every
// entry of cat has one price, and prices each finer group's sums.
func (q *Querier) reprice(ctx context.Context, n normalized, out []UsageRow, cat *pricing.Catalog, mapModel map[string]string) error {
	for from, to := range mapModel {
		if len(providersOf(cat, to)) == 0 {
			return fmt.Errorf("cannot map model %q to %q: catalog %s has no entry named %q (exact model names only)", from, to, cat.Name(), to)
		}
	}
	groups := make(map[string]*UsageRow, len(out))
	for i := range out {
		out[i].Reprice = &Repriced{}
		groups[groupKey(n.by, out[i].Group)] = &out[i]
	}
	fine := n
	fine.by = nil
	for _, d := range allDims {
		if slices.Contains(n.by, d) || slices.Contains(priceDims, d) {
			fine.by = append(fine.by, d)
		}
	}
	bounds := append(append([]time.Time{n.from}, cat.PriceChanges(n.from, n.to)...), n.to)
	for i := 0; i+1 < len(bounds); i++ {
		fine.from, fine.to = bounds[i], bounds[i+1]
		if i > 0 && !fine.from.Truncate(time.Minute).Equal(fine.from) {
			return fmt.Errorf("cannot reprice: catalog %s changes a price at %s, inside a minute, and the rollups' finest bucket is a minute",
				cat.Name(), fine.from.Format(time.RFC3339))
		}
		segs, err := plan(fine.from, fine.to, fine.g)
		if err != nil {
			return fmt.Errorf("cannot reprice across the price change at %s: %w", fine.from.Format(time.RFC3339), err)
		}
		query, args := usageSQL(q.w.Database(), fine, segs, maxRepriceGroups+1, false, false)
		if err := q.repricePeriod(ctx, query, args, fine, n.by, groups, cat, mapModel); err != nil {
			return err
		}
	}
	// Every call must have been read again. A price change inside an
	// hour is read from that hour's minute rows; once retention has
	// dropped them, its calls would silently be left out. (Calls landing
	// between the queries only add: a range ending now reads more.)
	for i := range out {
		g := &out[i]
		if g.Reprice.requests >= g.Requests {
			continue
		}
		var inside []string
		for _, c := range bounds[1 : len(bounds)-1] {
			if !c.Truncate(time.Hour).Equal(c) {
				inside = append(inside, c.UTC().Format(time.RFC3339))
			}
		}
		where := "in its price periods"
		if len(inside) > 0 {
			where = "around the price change(s) inside an hour at " + strings.Join(inside, ", ")
		}
		return fmt.Errorf("cannot reprice group %s exactly: %d of its %d calls are not stored at minute resolution %s (retention drops minute rows after --keep-minutes); re-price a range that leaves those hours out, or a catalog whose prices change on whole hours",
			groupString(n.by, groupValues(n.by, g.Group)), g.Requests-g.Reprice.requests, g.Requests, where)
	}
	return nil
}

// groupValues are g's values in the order of by.
func groupValues(by []Dim, g map[Dim]string) []string {
	out := make([]string, len(by))
	for i, d := range by {
		out[i] = g[d]
	}
	return out
}

func (q *Querier) repricePeriod(ctx context.Context, query string, args []any, fine normalized, by []Dim,
	groups map[string]*UsageRow, cat *pricing.Catalog, mapModel map[string]string) error {
	rows, err := q.w.Conn().Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("cannot query usage to reprice in [%s, %s): %w", fine.from.Format(time.RFC3339), fine.to.Format(time.RFC3339), err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		if seen++; seen > maxRepriceGroups {
			return fmt.Errorf("cannot reprice: more than %d tenant, provider, model, service tier and context band groups; narrow the range or filter", maxRepriceGroups)
		}
		var s scanned
		keys := make([]string, len(fine.by))
		dest := make([]any, 0, len(keys)+32)
		for i := range keys {
			dest = append(dest, &keys[i])
		}
		if err := rows.Scan(append(dest, s.dest()...)...); err != nil {
			return fmt.Errorf("cannot read usage row: %w", err)
		}
		if s.rows == 0 {
			continue
		}
		if err := s.m.Done(); err != nil {
			return err
		}
		val := make(map[Dim]string, len(keys))
		for i, d := range fine.by {
			val[d] = keys[i]
		}
		g := groups[groupKey(by, val)]
		if g == nil {
			continue // a group that appeared since the first query
		}
		band, err := strconv.ParseUint(val[DimContextBand], 10, 32)
		if err != nil {
			return fmt.Errorf("cannot read context_band %q: %w", val[DimContextBand], err)
		}
		r := &s.m.Rollup
		provider, model := val[DimProvider], val[DimModel]
		if to, ok := mapModel[model]; ok {
			p := providerOf(cat, provider, to)
			if p == "" {
				return fmt.Errorf("cannot map the calls of %s %q to model %q: catalog %s has it for several providers (%s), none of them %q",
					provider, model, to, cat.Name(), strings.Join(providersOf(cat, to), ", "), provider)
			}
			provider, model = p, to
		}
		cost, ok, err := cat.CostOfSums(pricing.SumsKey{
			Tenant: val[DimTenant], Provider: provider, Model: model,
			ServiceTier: val[DimServiceTier], ContextBand: uint32(band), At: fine.from,
		}, pricing.Sums{
			Requests: r.Requests, InputTokens: r.InputTokens, CachedInputTokens: r.CachedInputTokens,
			CacheWriteTokens: r.CacheWriteTokens, CacheWrite1hTokens: r.CacheWrite1hTokens,
			OutputTokens: r.OutputTokens, ReasoningTokens: r.ReasoningTokens, GPUMicros: r.GPUMicros,
		})
		if err != nil {
			return fmt.Errorf("cannot reprice with %s: %w", cat.Name(), err)
		}
		g.Reprice.requests += r.Requests
		if ok {
			g.Reprice.CostUSD = g.Reprice.CostUSD.Add(cost)
		} else {
			g.Reprice.UnpricedRequests += r.Requests
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read usage rows: %w", err)
	}
	return nil
}

// providerOf is the provider whose entry prices model in cat: prefer
// (the call's provider), else the only provider with an exact entry for
// model; "" when none or several do.
func providerOf(cat *pricing.Catalog, prefer, model string) string {
	if prefer != "" {
		if e := cat.Lookup(prefer, model); e != nil && e.Model == model {
			return prefer
		}
	}
	if ps := providersOf(cat, model); len(ps) == 1 {
		return ps[0]
	}
	return ""
}

// providersOf lists the providers with an exact entry for model.
func providersOf(cat *pricing.Catalog, model string) []string {
	var out []string
	for _, e := range cat.Entries() {
		if e.Model == model && !slices.Contains(out, e.Provider) {
			out = append(out, e.Provider)
		}
	}
	return out
}

// groupKey identifies a group by the values of by.
func groupKey(by []Dim, val map[Dim]string) string {
	var b strings.Builder
	for _, d := range by {
		b.WriteString(val[d])
		b.WriteByte(0)
	}
	return b.String()
}

// Totals returns the usage of every call in [from, to) as one row (zero
// when nothing matched), reading the tables as GranularityAuto does.
func (q *Querier) Totals(ctx context.Context, from, to time.Time) (UsageRow, error) {
	rows, err := q.Usage(ctx, UsageQuery{From: from, To: to})
	if err != nil || len(rows) == 0 {
		return UsageRow{Group: map[Dim]string{}}, err
	}
	return rows[0], nil
}

// groupString is "tenant=acme model=gpt-4o" for error messages.
func groupString(by []Dim, keys []string) string {
	if len(by) == 0 {
		return "totals"
	}
	parts := make([]string, len(by))
	for i, d := range by {
		parts[i] = fmt.Sprintf("%s=%q", d, keys[i])
	}
	return strings.Join(parts, " ")
}

// scanned is one result row as ClickHouse returns it: the number of
// rollup rows merged (count(), or sum(_rows) of a two-stage merge), then
// warehouse.MergeSelect's measures.
type scanned struct {
	rows uint64
	m    warehouse.Merged
	// noDists: the query left the histograms out (MergeSelectNoHist); the
	// row's Latency and TTFT stay empty.
	noDists bool
	// noTTFT: the query left the TTFT histogram out (mergeSelect); the
	// row's TTFT stays empty.
	noTTFT bool
}

func (s *scanned) dest() []any { return append([]any{&s.rows}, s.m.Dest()...) }

func (s *scanned) row() (UsageRow, error) {
	if err := s.m.Done(); err != nil {
		return UsageRow{}, err
	}
	r := &s.m.Rollup
	if s.noDists {
		r.Latency, r.TTFT = warehouse.Dist{}, warehouse.Dist{}
	}
	if s.noTTFT {
		r.TTFT = warehouse.Dist{}
	}
	lat, err := percentiles(r.Latency)
	if err != nil {
		return UsageRow{}, fmt.Errorf("latency: %w", err)
	}
	ttft, err := percentiles(r.TTFT)
	if err != nil {
		return UsageRow{}, fmt.Errorf("ttft: %w", err)
	}
	return UsageRow{
		Requests:           r.Requests,
		Errors:             r.Errors,
		InputTokens:        r.InputTokens,
		CachedInputTokens:  r.CachedInputTokens,
		CacheWriteTokens:   r.CacheWriteTokens,
		CacheWrite1hTokens: r.CacheWrite1hTokens,
		OutputTokens:       r.OutputTokens,
		ReasoningTokens:    r.ReasoningTokens,
		UnpricedRequests:   r.UnpricedRequests,
		GPUMicros:          r.GPUMicros,
		GPUMs:              float64(r.GPUMicros) / 1000,
		CostUSD:            r.Cost,
		Latency:            lat,
		TTFT:               ttft,
	}, nil
}

// percentiles evaluates a merged duration. Min and max carry the sentinels
// +Inf and 0 from rows without samples, so they are trusted only when the
// count is positive; a histogram that disagrees with the count is reported.
func percentiles(d warehouse.Dist) (Percentiles, error) {
	if d.Count == 0 {
		return Percentiles{}, nil
	}
	h, err := sketch.FromArrays(d.HistIdx, d.HistCnt)
	if err != nil {
		return Percentiles{}, err
	}
	if h.Count() != d.Count {
		return Percentiles{}, fmt.Errorf("histogram holds %d samples but the count is %d", h.Count(), d.Count)
	}
	p := Percentiles{Count: d.Count, Min: d.MinMs, Max: d.MaxMs, hist: h, sumMicros: d.SumMicros}
	p.fromHistogram()
	return p, nil
}

// fromHistogram sets the mean from the sum and the quantiles from the
// histogram.
func (p *Percentiles) fromHistogram() {
	h := p.hist
	p.Avg = float64(p.sumMicros) / float64(p.Count) / 1000
	p.P50, _ = h.Quantile(0.50)
	p.P90, _ = h.Quantile(0.90)
	p.P95, _ = h.Quantile(0.95)
	p.P99, _ = h.Quantile(0.99)
	p.P999, _ = h.Quantile(0.999)
}
