// Package analytics is costpipe's one query layer over the ClickHouse
// rollups (usage_1m, usage_1h, usage_1d): `costpipe query`, the alert
// evaluator and any HTTP API read usage through it, so every number a user
// sees is computed one way (ARCHITECTURE.md §4).
//
// Usage answers "what happened in [From, To)", grouped by any of the rollup
// dimensions and filtered by their values. It reads each part of the range
// from the coarsest table that covers it exactly (whole days from usage_1d,
// whole hours from usage_1h, the ragged edges from usage_1m) and merges the
// aggregate states in one SQL query, so the result equals summing usage_1m
// over the whole range. Money stays exact (pricing.Pico); latency and TTFT
// percentiles come from histograms merged in SQL (sumMap) and evaluated
// in Go with pipelines/sketch: percentiles are never averaged.
//
// Top ranks the groups by a metric in the same query (ORDER BY … LIMIT N
// WITH TOTALS), with each group's share of the total. Series and Daily
// read one value per step or calendar day per group from the one table
// whose rows are the steps, filling steps without usage with zero.
//
// A *Querier is safe for concurrent use; it holds no state besides its
// options and the warehouse connection pool it borrows.
package analytics

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/costpipe/costpipe/warehouse"
)

// Options configure a Querier.
type Options struct {
	// Now is the clock: a UsageQuery with a zero To ends at Now().
	// Default time.Now.
	Now func() time.Time
	// MaxRows bounds the number of groups one Usage call returns; a query
	// producing more fails and asks for fewer dimensions or a filter, so a
	// careless --by never buffers an unbounded result. Default 100000.
	MaxRows int
	// NoSummaries reads the rollups even where the per-model summaries
	// could answer (usage grouped and filtered by provider and model only).
	// Default false.
	NoSummaries bool
	// Logger receives a warning whenever the summaries could not be used
	// (they disagree with the rollups, or cannot be read). Default
	// slog.Default().
	Logger *slog.Logger
}

// DefaultOptions returns Options with every default filled in.
func DefaultOptions() Options {
	return Options{Now: time.Now, MaxRows: 100000, Logger: slog.Default()}
}

// Validate reports the first option that cannot work.
func (o Options) Validate() error {
	if o.Now == nil {
		return fmt.Errorf("analytics clock Now must be set")
	}
	if o.MaxRows <= 0 {
		return fmt.Errorf("analytics max rows must be > 0, got %d", o.MaxRows)
	}
	return nil
}

// Querier runs usage queries against the rollups of one costpipe database.
type Querier struct {
	w    *warehouse.Warehouse
	opts Options
	// fallbacks counts the queries the summaries could have answered and
	// the rollups did (SummaryFallbacks).
	fallbacks atomic.Uint64
}

// SummaryFallbacks returns how many queries since New were answered from
// the rollups because the per-model summaries disagreed with them or
// could not be read.
func (q *Querier) SummaryFallbacks() uint64 { return q.fallbacks.Load() }

// New returns a Querier reading the rollups of w's database. Zero fields of
// opts take their defaults (DefaultOptions); New panics when the options
// still fail Validate (a negative MaxRows), a programming error. w stays
// owned by the caller and must outlive the Querier.
func New(w *warehouse.Warehouse, opts Options) *Querier {
	def := DefaultOptions()
	if opts.Now == nil {
		opts.Now = def.Now
	}
	if opts.MaxRows == 0 {
		opts.MaxRows = def.MaxRows
	}
	if opts.Logger == nil {
		opts.Logger = def.Logger
	}
	if err := opts.Validate(); err != nil {
		panic("analytics.New: " + err.Error())
	}
	return &Querier{w: w, opts: opts}
}
