package warehouse

import (
	"fmt"
	"math"
	"strings"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

// This file is the one list of the rollup columns. The insert column list,
// the values appended per row, the materialized views' SELECT, the
// expressions that merge the states back and the values tests scan are all
// generated from keyColumns and measures; the DDL of the migrations is
// checked against it (TestSchemaMatchesColumns runs DESCRIBE TABLE on a real
// server). A new measure is one entry here plus a migration.

// Column is a column name and its ClickHouse type.
type Column struct {
	Name string
	Type string
}

// keyColumn is a plain column of both the input and the state tables: the
// bucket start, a dimension or the Kafka position of the row.
type keyColumn struct {
	Column
	get func(r *Rollup) any
}

// keyColumns are the key columns in table order. Every one is in the sort
// key of the state tables (see SortKey).
var keyColumns = []keyColumn{
	{Column{"ts", "DateTime('UTC')"}, func(r *Rollup) any { return r.TS.UTC() }},
	{Column{"tenant", "String"}, func(r *Rollup) any { return r.Tenant }},
	{Column{"application", "String"}, func(r *Rollup) any { return r.Application }},
	{Column{"provider", "String"}, func(r *Rollup) any { return r.Provider }},
	{Column{"model", "String"}, func(r *Rollup) any { return r.Model }},
	{Column{"error_type", "String"}, func(r *Rollup) any { return r.ErrorType }},
	{Column{"service_tier", "String"}, func(r *Rollup) any { return r.ServiceTier }},
	{Column{"context_band", "UInt32"}, func(r *Rollup) any { return r.ContextBand }},
	{Column{"src_topic", "String"}, func(r *Rollup) any { return r.SrcTopic }},
	{Column{"src_partition", "Int32"}, func(r *Rollup) any { return r.SrcPartition }},
}

// SortKey is the ORDER BY of the state tables: the dimensions first, so that
// one series' consecutive buckets sit together and compress; src_topic and
// src_partition so that merges never mix Kafka partitions (the landing marks
// are maxMerge(src_offset) per partition); ts; then service_tier and
// context_band, which migration 0004 added (ClickHouse can only append new
// columns to a sort key). They are constant within almost every series, so
// their place costs no compression.
const SortKey = "tenant, application, provider, model, error_type, src_topic, src_partition, ts, service_tier, context_band"

// measure is one aggregate-state column of the state tables, fed from one
// or two (histograms) columns of the input table.
type measure struct {
	name string
	// fn is the aggregate function: sum, min, max or sumMap.
	fn string
	// inputs are its columns in the input table, in insert order.
	inputs []Column
	// narrow is, for histograms, the type of the counts in the states of
	// usage_1m and usage_1h ("UInt32"); usage_1d keeps the input's UInt64.
	narrow string
	// mark is set for src_offset, the exactly-once column that is not usage.
	mark bool
	// values appends the row's input values.
	values func(r *Rollup, dst []any) []any
	// dest appends the scan destinations of the merged value(s).
	dest func(s *Merged, dst []any) []any
}

func u64(name string, field func(r *Rollup) *uint64) measure {
	return measure{name: name, fn: "sum", inputs: []Column{{name, "UInt64"}},
		values: func(r *Rollup, dst []any) []any { return append(dst, *field(r)) },
		dest:   func(s *Merged, dst []any) []any { return append(dst, field(&s.Rollup)) }}
}

func dist(prefix string, d func(r *Rollup) *Dist) []measure {
	return []measure{
		{name: prefix + "_count", fn: "sum", inputs: []Column{{prefix + "_count", "UInt64"}},
			values: func(r *Rollup, dst []any) []any { return append(dst, d(r).Count) },
			dest:   func(s *Merged, dst []any) []any { return append(dst, &d(&s.Rollup).Count) }},
		{name: prefix + "_sum_us", fn: "sum", inputs: []Column{{prefix + "_sum_us", "UInt64"}},
			values: func(r *Rollup, dst []any) []any { return append(dst, d(r).SumMicros) },
			dest:   func(s *Merged, dst []any) []any { return append(dst, &d(&s.Rollup).SumMicros) }},
		{name: prefix + "_min_ms", fn: "min", inputs: []Column{{prefix + "_min_ms", "Float64"}},
			values: func(r *Rollup, dst []any) []any { return append(dst, minMs(*d(r))) },
			dest:   func(s *Merged, dst []any) []any { return append(dst, &d(&s.Rollup).MinMs) }},
		{name: prefix + "_max_ms", fn: "max", inputs: []Column{{prefix + "_max_ms", "Float64"}},
			values: func(r *Rollup, dst []any) []any { return append(dst, d(r).MaxMs) },
			dest:   func(s *Merged, dst []any) []any { return append(dst, &d(&s.Rollup).MaxMs) }},
		{name: prefix + "_hist", fn: "sumMap", narrow: "UInt32",
			inputs: []Column{{prefix + "_hist_idx", "Array(Int16)"}, {prefix + "_hist_cnt", "Array(UInt64)"}},
			values: func(r *Rollup, dst []any) []any {
				return append(dst, nonNil16(d(r).HistIdx), nonNil64(d(r).HistCnt))
			},
			dest: func(s *Merged, dst []any) []any { return append(dst, &d(&s.Rollup).HistIdx, &d(&s.Rollup).HistCnt) }},
	}
}

// measures are the aggregate-state columns in table order.
var measures = func() []measure {
	ms := []measure{
		{name: "src_offset", fn: "max", inputs: []Column{{"src_offset", "Int64"}}, mark: true,
			values: func(r *Rollup, dst []any) []any { return append(dst, r.SrcOffset) },
			dest:   func(s *Merged, dst []any) []any { return append(dst, &s.SrcOffset) }},
		u64("requests", func(r *Rollup) *uint64 { return &r.Requests }),
		u64("errors", func(r *Rollup) *uint64 { return &r.Errors }),
		u64("input_tokens", func(r *Rollup) *uint64 { return &r.InputTokens }),
		u64("cached_input_tokens", func(r *Rollup) *uint64 { return &r.CachedInputTokens }),
		u64("cache_write_tokens", func(r *Rollup) *uint64 { return &r.CacheWriteTokens }),
		u64("cache_write_1h_tokens", func(r *Rollup) *uint64 { return &r.CacheWrite1hTokens }),
		u64("output_tokens", func(r *Rollup) *uint64 { return &r.OutputTokens }),
		u64("reasoning_tokens", func(r *Rollup) *uint64 { return &r.ReasoningTokens }),
		u64("gpu_us", func(r *Rollup) *uint64 { return &r.GPUMicros }),
		u64("unpriced_requests", func(r *Rollup) *uint64 { return &r.UnpricedRequests }),
		{name: "cost_usd", fn: "sum", inputs: []Column{{"cost_usd", "Decimal(38, 12)"}},
			values: func(r *Rollup, dst []any) []any { return append(dst, r.Cost.Decimal()) },
			dest:   func(s *Merged, dst []any) []any { return append(dst, &s.cost) }},
	}
	ms = append(ms, dist("latency", func(r *Rollup) *Dist { return &r.Latency })...)
	return append(ms, dist("ttft", func(r *Rollup) *Dist { return &r.TTFT })...)
}()

// stateType is m's column type in table t.
func (m measure) stateType(t Table) string {
	args := make([]string, len(m.inputs))
	for i, in := range m.inputs {
		args[i] = in.Type
	}
	if m.narrow != "" && t != Day {
		args[len(args)-1] = "Array(" + m.narrow + ")"
	}
	return "AggregateFunction(" + m.fn + ", " + strings.Join(args, ", ") + ")"
}

// stateExpr is the materialized view's expression turning one input row
// into m's state (a projection: arrayReduce over a one-element array).
func (m measure) stateExpr(t Table) string {
	args := make([]string, len(m.inputs))
	for i, in := range m.inputs {
		args[i] = "[" + in.Name + "]"
	}
	if m.narrow != "" && t != Day {
		last := m.inputs[len(m.inputs)-1].Name
		args[len(args)-1] = "[arrayMap(x -> to" + m.narrow + "(x), " + last + ")]"
	}
	return "arrayReduce('" + m.fn + "State', " + strings.Join(args, ", ") + ") AS " + m.name
}

// mergeExprs are the expressions reading m's states merged over a group, as
// Merged scans them. Histogram counts are read as UInt64 whatever the state
// width; the decimal cost as text (exact).
func (m measure) mergeExprs() []string {
	merge := m.fn + "Merge(" + m.name + ")"
	switch {
	case m.fn == "sumMap":
		return []string{merge + ".1", "arrayMap(x -> toUInt64(x), " + merge + ".2)"}
	case m.name == "cost_usd":
		return []string{"toString(" + merge + ")"}
	}
	return []string{merge}
}

// TableColumns returns the columns of the state table t (usage_1m, …) as
// DESCRIBE TABLE reports them.
func TableColumns(t Table) []Column {
	out := make([]Column, 0, len(keyColumns)+len(measures))
	for _, k := range keyColumns {
		out = append(out, k.Column)
	}
	for _, m := range measures {
		out = append(out, Column{m.name, m.stateType(t)})
	}
	return out
}

// InputColumns returns the columns of t's input table (the aggregator's
// INSERT target), in insert order. They are the same for every table.
func InputColumns() []Column {
	out := make([]Column, 0, len(keyColumns)+len(measures)+2)
	for _, k := range keyColumns {
		out = append(out, k.Column)
	}
	for _, m := range measures {
		out = append(out, m.inputs...)
	}
	return out
}

// insertColumns is the column list of the INSERT, "ts, tenant, …".
var insertColumns = func() string {
	cols := InputColumns()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}()

// appendValues appends the insert values of r, in InputColumns order.
func appendValues(r *Rollup, dst []any) []any {
	for _, k := range keyColumns {
		dst = append(dst, k.get(r))
	}
	for _, m := range measures {
		dst = m.values(r, dst)
	}
	return dst
}

// checkWidths reports a histogram count that does not fit the states of t:
// ClickHouse would wrap it silently.
func checkWidths(t Table, r *Rollup) error {
	if t == Day {
		return nil
	}
	for _, d := range [...]struct {
		name string
		cnt  []uint64
	}{{"latency", r.Latency.HistCnt}, {"ttft", r.TTFT.HistCnt}} {
		for _, c := range d.cnt {
			if c > math.MaxUint32 {
				return fmt.Errorf("%s histogram bucket of %s at %s holds %d samples, more than the %s states can (UInt32)",
					d.name, r.Tenant, r.TS.UTC().Format("2006-01-02T15:04Z"), c, t.Name())
			}
		}
	}
	return nil
}

// MVSelect is the SELECT of t's materialized view from its input table in
// database db: the key columns as they are, each measure turned into its
// state.
func MVSelect(db string, t Table) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, k := range keyColumns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k.Name)
	}
	for _, m := range measures {
		b.WriteString(",\n    " + m.stateExpr(t))
	}
	b.WriteString("\nFROM " + db + "." + t.InputName())
	return b.String()
}

// MeasureColumns are the state columns of the usage measures (src_offset
// excluded), in order: what a query over several tables selects before
// merging them with MergeSelect.
func MeasureColumns() []string {
	var out []string
	for _, m := range measures {
		if !m.mark {
			out = append(out, m.name)
		}
	}
	return out
}

// UnionColumns are MeasureColumns of table t in the state types of
// usage_1d, so that a UNION ALL of several tables has one type per column:
// the UInt32 histogram states of usage_1m and usage_1h are re-stated with
// UInt64 counts (row by row; merging afterwards gives the same result).
func UnionColumns(t Table) []string {
	var out []string
	for _, m := range measures {
		switch {
		case m.mark:
		case m.narrow != "" && t != Day:
			f := "finalizeAggregation(" + m.name + ")"
			out = append(out, "arrayReduce('"+m.fn+"State', ["+f+".1], [arrayMap(x -> toUInt64(x), "+f+".2)]) AS "+m.name)
		default:
			out = append(out, m.name)
		}
	}
	return out
}

// MergeSelect is the select list merging the usage measures' states over a
// group, "sumMerge(requests), …", in the order Merged.Dest scans them.
func MergeSelect() string {
	var out []string
	for _, m := range measures {
		if !m.mark {
			out = append(out, m.mergeExprs()...)
		}
	}
	return strings.Join(out, ", ")
}

// Merged receives the measures of a group read with MergeSelect: the merged
// sums, minima, maxima and histograms land in the fields of Rollup (its key
// fields and SrcOffset stay zero). Call Done after Scan.
type Merged struct {
	Rollup
	cost string
}

// Dest returns the scan destinations of MergeSelect's expressions.
func (s *Merged) Dest() []any {
	dst := make([]any, 0, len(measures)+2)
	for _, m := range measures {
		if !m.mark {
			dst = m.dest(s, dst)
		}
	}
	return dst
}

// Done converts what Scan wrote that needs converting (the cost).
func (s *Merged) Done() error {
	c, err := pricing.ParsePico(s.cost)
	if err != nil {
		return fmt.Errorf("cannot read merged cost %q: %w", s.cost, err)
	}
	s.Cost = c
	return nil
}
