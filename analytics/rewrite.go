package analytics

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/warehouse"
)

// RepriceTopic is the src_topic of the correction rows RewriteCosts lands:
// never a Kafka topic, so the aggregators' landing marks never see them.
const RepriceTopic = "costpipe.reprice"

// RewriteQuery asks to correct the stored cost of a range after a catalog
// correction.
type RewriteQuery struct {
	// From and To bound the range; both must be whole UTC days.
	From, To time.Time
	// Where keeps only matching rows, as in UsageQuery.
	Where map[Dim][]string
	// Catalog is the corrected catalog.
	Catalog *pricing.Catalog
	// DryRun computes the corrections without landing them.
	DryRun bool
	// Land receives the correction rows; nil lands them through the
	// Querier's Warehouse, a single server's tables. On a cluster, whose
	// costpipe database holds Distributed tables that take no inserts of
	// costpipe's, it is the database's warehouse.Sharded.
	Land RollupInserter
	// Progress, when set, is called as the work goes: every
	// rewriteProgressRows groups read and when a table is read, then after
	// each block of corrections landed.
	Progress func(RewriteProgress)
}

// RewriteProgress says how far a RewriteCosts call is.
type RewriteProgress struct {
	// Table is the table being read or the last one landed into.
	Table warehouse.Table
	// Read are Table's groups read so far; TableRead is set once all are.
	Read      int
	TableRead bool
	// Landed and Blocks count the blocks of corrections (one per table
	// and month) landed so far and in all; zero while reading.
	Landed, Blocks int
}

// rewriteProgressRows is how many groups RewriteCosts reads between two
// calls of RewriteQuery.Progress.
const rewriteProgressRows = 100_000

func (rq *RewriteQuery) progress(p RewriteProgress) {
	if rq.Progress != nil {
		rq.Progress(p)
	}
}

// RollupInserter lands rollup rows: a warehouse.Warehouse or, on a
// cluster, a warehouse.Sharded (whose one insert takes the rows of one
// shard: correction rows all have src_partition 0).
type RollupInserter interface {
	InsertRollups(ctx context.Context, t warehouse.Table, rows []warehouse.Rollup) error
}

// replicaSyncer is a RollupInserter whose reads may go to several
// replicas (warehouse.Sharded): RewriteCosts syncs them before reading.
type replicaSyncer interface {
	SyncReplicas(ctx context.Context) error
}

// RewriteResult says what RewriteCosts did, per rollup table.
type RewriteResult struct {
	Tables []RewriteTable
}

// RewriteTable is the outcome for one rollup table.
type RewriteTable struct {
	Table warehouse.Table
	// Groups is the number of (bucket, dimensions) groups read;
	// Corrected those whose cost changed (one correction row each).
	Groups, Corrected int
	// Unpriced counts the calls the catalog has no price for: their
	// stored cost is kept (a correction never invents a zero).
	Unpriced uint64
	// NowPriced counts the calls that were unpriced at ingest and that
	// the catalog prices: their correction rows also take them off
	// unpriced_requests.
	NowPriced uint64
	// Months are the months holding correction rows, in order.
	Months []warehouse.Month
	// Before and After are the range's total cost in the table before and
	// after the correction.
	Before, After pricing.Pico
}

// RewriteCosts re-prices the stored token, GPU and request sums of
// [From, To) with Catalog in every rollup table and lands, for each group
// whose cost differs, a correction row carrying only the difference of
// cost (src_topic RepriceTopic; every other measure zero). Sums over the
// range then equal the re-priced cost in every table and view.
//
// It is idempotent: the difference is computed against the stored cost
// including earlier corrections, so a second run, or a run after an
// interrupted one, lands only what is still missing. Two runs at once
// would each land the difference: a run that writes takes the reprice lock
// (warehouse.LockReprice) and fails with ErrRepriceRunning while another
// holds it. Every table's corrections are computed
// before any lands, so an error in the catalog changes nothing. Calls the
// catalog cannot price keep their stored cost; calls unpriced at ingest
// that it prices are taken off unpriced_requests by the same correction
// row (the sum wraps: the row carries 2^64 − n). A difference within the
// rounding of the stored per-call costs (half a picodollar per call) is
// not a correction. Deploy the corrected catalog to the aggregators first:
// calls landing in the range later are priced by them.
func (q *Querier) RewriteCosts(ctx context.Context, rq RewriteQuery) (RewriteResult, error) {
	var res RewriteResult
	if rq.Catalog == nil {
		return res, fmt.Errorf("reprice needs a catalog")
	}
	for _, t := range []time.Time{rq.From, rq.To} {
		if !t.UTC().Truncate(day).Equal(t) {
			return res, fmt.Errorf("reprice range bounds must be whole UTC days, got %s", t.UTC().Format(time.RFC3339))
		}
	}
	for _, c := range rq.Catalog.PriceChanges(rq.From, rq.To) {
		if !c.UTC().Truncate(day).Equal(c) {
			return res, fmt.Errorf("catalog %s changes a price at %s, inside a day: the daily rollups cannot be re-priced exactly; re-price the days before and after it separately with catalogs that do not change inside them",
				rq.Catalog.Name(), c.UTC().Format(time.RFC3339))
		}
	}
	n, err := normalize(UsageQuery{From: rq.From, To: rq.To, Where: rq.Where}, rq.To)
	if err != nil {
		return res, err
	}
	var land RollupInserter = q.w
	if rq.Land != nil {
		land = rq.Land
	}
	if !rq.DryRun {
		release, err := q.w.LockReprice(ctx)
		if err != nil {
			return res, err
		}
		defer release()
	}
	if s, ok := land.(replicaSyncer); ok && !rq.DryRun {
		if err := s.SyncReplicas(ctx); err != nil {
			return res, fmt.Errorf("cannot reprice on the cluster: %w", err)
		}
	}
	corrections := make([]map[warehouse.Month][]warehouse.Rollup, len(warehouse.Tables))
	for i, t := range warehouse.Tables {
		rt, byMonth, err := q.rewriteTable(ctx, t, n, rq)
		if err != nil {
			return res, fmt.Errorf("%s: %w (nothing was written)", t.Name(), err)
		}
		res.Tables = append(res.Tables, rt)
		corrections[i] = byMonth
	}
	if rq.DryRun {
		return res, nil
	}
	var landed []string
	blocks := 0
	for i := range warehouse.Tables {
		blocks += len(res.Tables[i].Months)
	}
	for i, t := range warehouse.Tables {
		for _, mo := range res.Tables[i].Months {
			// One block per table and month: it lands whole or not at
			// all, and a rerun corrects what is still missing.
			// Without deduplication: a correction identical to an earlier
			// run's (reprice, revert, reprice again) must land too.
			if err := land.InsertRollups(warehouse.NoDeduplication(ctx), t, corrections[i][mo]); err != nil {
				done := "nothing was written"
				if len(landed) > 0 {
					done = "landed before it: " + strings.Join(landed, ", ")
				}
				return res, fmt.Errorf("cannot land %d correction rows in %s for %d (%s; run reprice again to land the rest): %w",
					len(corrections[i][mo]), t.Name(), mo, done, err)
			}
			landed = append(landed, fmt.Sprintf("%s %d", t.Name(), mo))
			rq.progress(RewriteProgress{Table: t, Read: res.Tables[i].Groups, TableRead: true, Landed: len(landed), Blocks: blocks})
		}
	}
	return res, nil
}

// rewriteKeys are the columns a correction row shares with the rows it
// corrects.
const rewriteKeys = "ts, tenant, application, provider, model, error_type, service_tier, context_band"

func (q *Querier) rewriteTable(ctx context.Context, t warehouse.Table, n normalized, rq RewriteQuery) (RewriteTable, map[warehouse.Month][]warehouse.Rollup, error) {
	rt := RewriteTable{Table: t}
	var sb strings.Builder
	sb.WriteString("SELECT toUInt32(ts), tenant, application, provider, model, error_type, service_tier, toString(context_band), " +
		// Without the histograms: a correction carries sums only, and their
		// merge was most of the read's time and memory.
		warehouse.MergeSelectNoHist() + "\nFROM " + q.w.Database() + "." + t.Name() + "\nWHERE ")
	args := appendWhere(&sb, nil, t, n.from, n.to, n.where)
	sb.WriteString("\nGROUP BY " + rewriteKeys)
	rows, err := q.w.Conn().Query(ctx, sb.String(), args...)
	if err != nil {
		return rt, nil, fmt.Errorf("cannot read the rows to re-price: %w", err)
	}
	byMonth := map[warehouse.Month][]warehouse.Rollup{}
	for rows.Next() {
		var (
			ts                                                  uint32
			tenant, app, provider, model, errType, tier, bandTx string
			m                                                   warehouse.Merged
		)
		if err := rows.Scan(append([]any{&ts, &tenant, &app, &provider, &model, &errType, &tier, &bandTx}, m.Dest()...)...); err != nil {
			rows.Close()
			return rt, nil, fmt.Errorf("cannot read a row to re-price: %w", err)
		}
		if err := m.Done(); err != nil {
			rows.Close()
			return rt, nil, err
		}
		band, err := strconv.ParseUint(bandTx, 10, 32)
		if err != nil {
			rows.Close()
			return rt, nil, fmt.Errorf("cannot read context_band %q: %w", bandTx, err)
		}
		rt.Groups++
		if rt.Groups%rewriteProgressRows == 0 {
			rq.progress(RewriteProgress{Table: t, Read: rt.Groups})
		}
		r := &m.Rollup
		at := time.Unix(int64(ts), 0).UTC()
		rt.Before = rt.Before.Add(r.Cost)
		cost, ok, err := rq.Catalog.CostOfSums(pricing.SumsKey{Tenant: tenant, Provider: provider, Model: model,
			ServiceTier: tier, ContextBand: uint32(band), At: at}, pricing.Sums{
			Requests: r.Requests, InputTokens: r.InputTokens, CachedInputTokens: r.CachedInputTokens,
			CacheWriteTokens: r.CacheWriteTokens, CacheWrite1hTokens: r.CacheWrite1hTokens,
			OutputTokens: r.OutputTokens, ReasoningTokens: r.ReasoningTokens, GPUMicros: r.GPUMicros})
		if err != nil {
			rows.Close()
			return rt, nil, err
		}
		if !ok {
			rt.Unpriced += r.Requests
			rt.After = rt.After.Add(r.Cost)
			continue
		}
		delta := cost.Sub(r.Cost)
		fix := !withinRounding(delta, r.Requests)
		if !fix {
			delta = pricing.Pico{} // the stored per-call costs' rounding, not a price change
		}
		if !fix && r.UnpricedRequests == 0 {
			rt.After = rt.After.Add(r.Cost)
			continue
		}
		rt.After = rt.After.Add(r.Cost.Add(delta))
		rt.Corrected++
		rt.NowPriced += r.UnpricedRequests
		c := warehouse.Rollup{TS: at, Tenant: tenant, Application: app, Provider: provider, Model: model,
			ErrorType: errType, ServiceTier: tier, ContextBand: uint32(band), SrcTopic: RepriceTopic, Cost: delta,
			UnpricedRequests: -r.UnpricedRequests, // sums wrap: takes the group's count to 0
			Latency:          warehouse.Dist{MinMs: math.Inf(1)}, TTFT: warehouse.Dist{MinMs: math.Inf(1)}}
		mo := warehouse.MonthOf(at)
		if byMonth[mo] == nil {
			rt.Months = append(rt.Months, mo)
		}
		byMonth[mo] = append(byMonth[mo], c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rt, nil, fmt.Errorf("cannot read the rows to re-price: %w", err)
	}
	slices.Sort(rt.Months)
	rq.progress(RewriteProgress{Table: t, Read: rt.Groups, TableRead: true})
	return rt, byMonth, nil
}

// withinRounding reports whether a difference of cost over requests calls
// is no more than the rounding of their stored costs: each call's cost was
// rounded to the picodollar (half even) when it was priced, the group's
// re-priced cost once, so the two may differ by half a picodollar a call
// with the same prices.
func withinRounding(delta pricing.Pico, requests uint64) bool {
	if delta.Sign() < 0 {
		delta = delta.Neg()
	}
	return delta.Add(delta).Cmp(pricing.FromPicos(int64(min(requests, math.MaxInt64)))) <= 0
}
