package warehouse

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/pipelines/sketch"
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

// colFn reads one input column from rollup rows: one row's value (for a
// row-wise insert) or the whole column of a batch in ClickHouse's Native
// format, which InsertRollups hands to the driver at once (native.go).
type colFn struct {
	value  func(r *Rollup) any
	native nativeFn
}

// col makes the colFn of the value f reads from a row.
func col[T any](f func(r *Rollup) T) colFn {
	return colFn{value: func(r *Rollup) any { return f(r) }, native: nativeOf(f)}
}

// keyColumn is a plain column of both the input and the state tables: the
// bucket start, a dimension or the Kafka position of the row.
type keyColumn struct {
	Column
	colFn
}

// keyColumns are the key columns in table order. Every one is in the sort
// key of the state tables (see Table.SortKey).
var keyColumns = []keyColumn{
	{Column{"ts", "DateTime('UTC')"}, col(func(r *Rollup) time.Time { return r.TS.UTC() })},
	{Column{"tenant", "String"}, col(func(r *Rollup) string { return r.Tenant })},
	{Column{"application", "String"}, col(func(r *Rollup) string { return r.Application })},
	{Column{"provider", "String"}, col(func(r *Rollup) string { return r.Provider })},
	{Column{"model", "String"}, col(func(r *Rollup) string { return r.Model })},
	{Column{"error_type", "String"}, col(func(r *Rollup) string { return r.ErrorType })},
	{Column{"service_tier", "String"}, col(func(r *Rollup) string { return r.ServiceTier })},
	{Column{"context_band", "UInt32"}, col(func(r *Rollup) uint32 { return r.ContextBand })},
	{Column{"src_topic", "String"}, col(func(r *Rollup) string { return r.SrcTopic })},
	{Column{"src_partition", "Int32"}, col(func(r *Rollup) int32 { return r.SrcPartition })},
}

// sortDims is the part of every state table's ORDER BY after its time
// prefix: the dimensions, so that one series' consecutive buckets sit
// together and compress; src_topic and src_partition, so that merges never
// mix Kafka partitions (the landing marks are maxMerge(src_offset) per
// partition); ts; then service_tier and context_band, which migration 0004
// appended (constant within almost every series, their place costs no
// compression).
const sortDims = "tenant, application, provider, model, error_type, src_topic, src_partition, ts, service_tier, context_band"

// keyTimeFunc is the function of ts that leads t's sort key (migration
// 0007): the hour for usage_1m, the UTC day for usage_1h, none for
// usage_1d. A query of a few minutes or hours then reads the granules of
// those hours or days only, not every series' rows of the month; within a
// bucket one series' rows still sit together and compress.
func (t Table) keyTimeFunc() string {
	switch t {
	case Minute:
		return "toStartOfHour"
	case Hour:
		return "toDate"
	}
	return ""
}

// SortKey is t's ORDER BY: the time bucket (keyTimeFunc), then sortDims.
func (t Table) SortKey() string {
	if f := t.keyTimeFunc(); f != "" {
		return f + "(ts), " + sortDims
	}
	return sortDims
}

// TimeRange is the condition selecting ts in [from, to) of t, with the `?`
// parameters TimeRangeArgs gives. It also bounds the sort key's time
// bucket, so that ClickHouse 18.16, which does not carry a range on ts over
// to toStartOfHour(ts), skips by the sort key.
func (t Table) TimeRange() string {
	r := "ts >= toDateTime(?, 'UTC') AND ts < toDateTime(?, 'UTC')"
	if f := t.keyTimeFunc(); f != "" {
		r += " AND " + f + "(ts) >= " + f + "(toDateTime(?, 'UTC')) AND " + f + "(ts) <= " + f + "(toDateTime(?, 'UTC'))"
	}
	return r
}

// TimeRangeArgs are TimeRange's parameters for [from, to).
// Bounds outside what a DateTime holds are clamped to it: ClickHouse wraps
// an out-of-range toDateTime(n) around (18.16 turns 1960 into 2096) instead
// of refusing it, and no row lies outside anyway.
func (t Table) TimeRangeArgs(args []any, from, to time.Time) []any {
	f, e := dateTimeSeconds(from), dateTimeSeconds(to)
	args = append(args, f, e)
	if t.keyTimeFunc() != "" {
		args = append(args, f, e)
	}
	return args
}

// dateTimeSeconds is t in unix seconds clamped to the DateTimes ClickHouse
// computes with: from 1970-01-01 to maxDateTime.
func dateTimeSeconds(t time.Time) int64 {
	return min(max(t.Unix(), 0), maxDateTime)
}

// maxDateTime is 2106-02-06T00:00:00Z, the end of the last day whose
// DateTimes toDate and toStartOfHour take correctly on 18.16 (a DateTime
// holds up to 2106-02-07T06:28:15Z, but both wrap to 1970 on its last day).
const maxDateTime = 4294857600

// measure is one column of the state tables, fed from one column of the
// input table, or a histogram: two columns of the input table, a Nested
// "…Map" of the state tables (bucket indices idx, counts cnt) that
// SummingMergeTree sums by bucket, merged in queries with sumMap.
type measure struct {
	name string
	// fn is the aggregate function: sum, min, max (aggregate states) or
	// sumMap (a histogram, plain arrays).
	fn string
	// inputs are its columns in the input table, in insert order.
	inputs []Column
	// narrow is, for histograms, the type of the counts in the states of
	// usage_1m and usage_1h ("UInt32"); usage_1d keeps the input's UInt64.
	narrow string
	// mark is set for src_offset, the exactly-once column that is not usage.
	mark bool
	// cols read its input columns, one per input.
	cols []colFn
	// dest appends the scan destinations of the merged value(s).
	dest func(s *Merged, dst []any) []any
}

func u64(name string, field func(r *Rollup) *uint64) measure {
	return measure{name: name, fn: "sum", inputs: []Column{{name, "UInt64"}},
		cols: []colFn{col(func(r *Rollup) uint64 { return *field(r) })},
		dest: func(s *Merged, dst []any) []any { return append(dst, field(&s.Rollup)) }}
}

// dist is the two measures of a duration: its exact sum and its histogram.
// hist is the duration's place in Merged.hists.
func dist(prefix string, hist int, d func(r *Rollup) *Dist) []measure {
	return []measure{
		{name: prefix + "_sum_us", fn: "sum", inputs: []Column{{prefix + "_sum_us", "UInt64"}},
			cols: []colFn{col(func(r *Rollup) uint64 { return d(r).SumMicros })},
			dest: func(s *Merged, dst []any) []any { return append(dst, &d(&s.Rollup).SumMicros) }},
		{name: prefix + "_hist", fn: "sumMap", narrow: "UInt32",
			inputs: []Column{{prefix + "_hist_idx", "Array(Int16)"}, {prefix + "_hist_cnt", "Array(UInt64)"}},
			cols: []colFn{
				col(func(r *Rollup) []int16 { return nonNil16(d(r).HistIdx) }),
				col(func(r *Rollup) []uint64 { return nonNil64(d(r).HistCnt) }),
			},
			dest: func(s *Merged, dst []any) []any {
				return append(dst, &d(&s.Rollup).Count, &s.hists[hist].idx, &s.hists[hist].cnt)
			}},
	}
}

// derivedColumn is a column of the state tables that nothing stores: an
// ALIAS computed from a histogram when read (migration 0008). The count of
// a duration is its histogram's total, exactly; its minimum and maximum are
// the values of the lowest and highest non-empty buckets (sketch.Value),
// within sketch.Alpha like every quantile. They keep the names and types of
// the states 0001 to 0007 stored, so SQL written against those (sumMerge,
// minMerge, maxMerge) still reads them; costpipe's own queries derive the
// three from the merged histogram instead (Merged.Done), which is cheaper.
type derivedColumn struct {
	Column
	// Alias is the ALIAS expression.
	Alias string
}

// bucketValueSQL is sketch.Value of bucket index i in SQL, to the last few
// ulps (Go computes the exact float64 nearest).
func bucketValueSQL(i string) string {
	return fmt.Sprintf("if(%s = %d, 0., 0.99 * pow(101 / 99, %s))", i, sketch.ZeroIndex, i)
}

// derivedColumns are the ALIAS columns, after the stored ones in table
// order (0008 adds them at the end).
var derivedColumns = func() []derivedColumn {
	var out []derivedColumn
	for _, p := range []string{"latency", "ttft"} {
		idx, cnt := p+"_histMap.idx", p+"_histMap.cnt"
		out = append(out,
			derivedColumn{Column{p + "_count", "AggregateFunction(sum, UInt64)"}, "arrayReduce('sumState', " + WidenCounts(cnt) + ")"},
			derivedColumn{Column{p + "_min_ms", "AggregateFunction(min, Float64)"}, "arrayReduce('minState', arrayMap(i -> " + bucketValueSQL("i") + ", " + idx + "))"},
			derivedColumn{Column{p + "_max_ms", "AggregateFunction(max, Float64)"}, "arrayReduce('maxState', arrayMap(i -> " + bucketValueSQL("i") + ", " + idx + "))"},
		)
	}
	return out
}()

// measures are the aggregate-state columns in table order.
var measures = func() []measure {
	ms := []measure{
		{name: "src_offset", fn: "max", inputs: []Column{{"src_offset", "Int64"}}, mark: true,
			cols: []colFn{col(func(r *Rollup) int64 { return r.SrcOffset })},
			dest: func(s *Merged, dst []any) []any { return append(dst, &s.SrcOffset) }},
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
			cols: []colFn{{
				value:  func(r *Rollup) any { return r.Cost.Decimal() },
				native: nativeOf(func(r *Rollup) pricing.Pico { return r.Cost }),
			}},
			dest: func(s *Merged, dst []any) []any { return append(dst, &s.cost) }},
	}
	ms = append(ms, dist("latency", 0, func(r *Rollup) *Dist { return &r.Latency })...)
	return append(ms, dist("ttft", 1, func(r *Rollup) *Dist { return &r.TTFT })...)
}()

// hist reports whether m is a histogram (a Nested map of plain arrays).
func (m measure) hist() bool { return m.fn == "sumMap" }

// cntType is the element type of a histogram's counts in table t.
func (m measure) cntType(t Table) string {
	if m.narrow != "" && t != Day && t != Week {
		return m.narrow
	}
	return "UInt64"
}

// stateColumns are m's columns in the state table t: one aggregate state,
// or a histogram's idx and cnt arrays (name + "Map.idx", name + "Map.cnt").
func (m measure) stateColumns(t Table) []Column {
	if m.hist() {
		return []Column{{m.name + "Map.idx", "Array(Int16)"}, {m.name + "Map.cnt", "Array(" + m.cntType(t) + ")"}}
	}
	args := make([]string, len(m.inputs))
	for i, in := range m.inputs {
		args[i] = in.Type
	}
	return []Column{{m.name, "AggregateFunction(" + m.fn + ", " + strings.Join(args, ", ") + ")"}}
}

// stateExpr is the materialized view's expression turning one input row
// into m's state (a projection: arrayReduce over a one-element array), or
// for a histogram its two arrays, the counts narrowed to the table's width.
func (m measure) stateExpr(t Table) string {
	if m.hist() {
		idx, cnt := m.inputs[0].Name, m.inputs[1].Name
		if m.cntType(t) != "UInt64" {
			cnt = "arrayMap(x -> to" + m.cntType(t) + "(x), " + cnt + ")"
		}
		return idx + " AS `" + m.name + "Map.idx`, " + cnt + " AS `" + m.name + "Map.cnt`"
	}
	args := make([]string, len(m.inputs))
	for i, in := range m.inputs {
		args[i] = "[" + in.Name + "]"
	}
	return "arrayReduce('" + m.fn + "State', " + strings.Join(args, ", ") + ") AS " + m.name
}

// mergeExprs are the expressions reading m's states merged over a group, as
// Merged scans them. Histogram counts are summed as UInt64 whatever their
// width in the table, and both arrays are read as text (histText); the
// decimal cost is read as text (exact).
func (m measure) mergeExprs() []string {
	if m.hist() {
		merge := HistSumMap(m.name)
		return []string{m.countExpr(), histText(merge + ".1"), histText(merge + ".2")}
	}
	merge, _ := MergeExpr(m.name)
	if m.name == "cost_usd" {
		return []string{"toString(" + merge + ")"}
	}
	return []string{merge}
}

// HistSumMap is the expression merging the histogram measure named name
// ("latency_hist") over a group, the one spelling every query uses (a
// rewrite such as analytics' latency tail finds it by it): its counts
// summed as UInt64 whatever their width in the table (UInt32 in usage_1m
// and usage_1h, where sumMap would keep UInt32 and wrap).
func HistSumMap(name string) string {
	return "sumMap(" + name + "Map.idx, " + WidenCounts(name+"Map.cnt") + ")"
}

// WidenCounts is the array of histogram counts cnt as Array(UInt64).
// (CAST instead of the lambda measured the same on 18.16: 49.1 against
// 49.8 ms median of a 30-day query by model, 40 runs each.)
func WidenCounts(cnt string) string { return "arrayMap(x -> toUInt64(x), " + cnt + ")" }

// MergeExpr is the expression merging the states of the measure named name
// over a group, "sumMerge(requests)", in the measure's own type (the
// decimal cost as Decimal, not as text). It fails for a name that is not a
// stored measure or is a histogram (merged by MergeSelect).
func MergeExpr(name string) (string, error) {
	for _, m := range measures {
		if m.name == name && !m.hist() {
			return m.fn + "Merge(" + m.name + ")", nil
		}
	}
	return "", fmt.Errorf("no rollup measure %q to merge", name)
}

// countExpr merges a histogram's total over a group: the number of
// samples, what the stored count column held before 0008.
func (m measure) countExpr() string {
	return "sum(arraySum(" + m.name + "Map.cnt))"
}

// TableColumns returns the columns of the state table t (usage_1m, …) as
// DESCRIBE TABLE reports them: StoredColumns, then the ALIAS columns.
func TableColumns(t Table) []Column {
	out := StoredColumns(t)
	for _, d := range derivedColumns {
		out = append(out, d.Column)
	}
	return out
}

// StoredColumns returns the columns of the state table t that hold data:
// the key columns and the measures' states, as t's materialized view
// produces them.
func StoredColumns(t Table) []Column {
	out := make([]Column, 0, len(keyColumns)+len(measures)+len(derivedColumns))
	for _, k := range keyColumns {
		out = append(out, k.Column)
	}
	for _, m := range measures {
		out = append(out, m.stateColumns(t)...)
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

// inputColumns is InputColumns, computed once for the insert path.
var inputColumns = InputColumns()

// insertColumns is the column list of the INSERT, "ts, tenant, …".
var insertColumns = func() string {
	names := make([]string, len(inputColumns))
	for i, c := range inputColumns {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}()

// appendValues appends the insert values of r, in InputColumns order.
func appendValues(r *Rollup, dst []any) []any {
	for _, k := range keyColumns {
		dst = append(dst, k.value(r))
	}
	for _, m := range measures {
		for _, c := range m.cols {
			dst = append(dst, c.value(r))
		}
	}
	return dst
}

// nativeColumns are the Native encoders of the insert columns, in
// InputColumns order.
var nativeColumns = func() []nativeFn {
	out := make([]nativeFn, 0, len(keyColumns)+len(measures)+2)
	for _, k := range keyColumns {
		out = append(out, k.native)
	}
	for _, m := range measures {
		for _, c := range m.cols {
			out = append(out, c.native)
		}
	}
	return out
}()

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

// TwoStageSelect is a merge in two stages for a query over a UNION ALL of
// several tables (the minute, hour and day pieces of a range): partial is
// the select list of each branch, merging its rows per group into one
// (aggregate states, histogram arrays summed by sumMap, counts as UInt64
// in every table); final is the select list of the outer query, merging
// the branches' partial rows in the order Merged.Dest scans them, as
// MergeSelect does. hist reports whether the histogram measure named name
// ("latency_hist", "ttft_hist") is merged; the others are read as empty
// arrays (MergeSelectNoHist), their counts kept.
//
// rows is the one-stage alternative to partial: each row of a branch as it
// is stored (its states, its histogram with the counts widened to UInt64,
// its count of observations), under the names and types partial gives its
// merged rows, so that final merges a union of rows exactly as it merges a
// union of partial groups. A branch of rows that are already few per group
// (the per-model summaries) is cheaper read this way: its own merge would
// be a second aggregation that shrinks little (docs/design.md, "One merge
// for the summaries").
//
// Merging each branch first keeps the union small: the outer query merges
// a few rows per group instead of every rollup row, and no branch copies
// its histogram arrays to widen their counts.
func TwoStageSelect(hist func(name string) bool) (partial, rows, final string) {
	var p, r, f []string
	for _, m := range measures {
		switch {
		case m.mark:
		case m.hist():
			n, mm := m.name+"_n", m.name+"_m"
			p = append(p, m.countExpr()+" AS "+n)
			r = append(r, "arraySum("+m.name+"Map.cnt) AS "+n)
			f = append(f, "sum("+n+")")
			if hist(m.name) {
				p = append(p, HistSumMap(m.name)+" AS "+mm)
				r = append(r, "("+m.name+"Map.idx, "+WidenCounts(m.name+"Map.cnt")+") AS "+mm)
				merge := "sumMap(" + mm + ".1, " + mm + ".2)"
				f = append(f, histText(merge+".1"), histText(merge+".2"))
			} else {
				f = append(f, noHist, noHist)
			}
		default:
			// The partial state keeps the column's name, so that the final
			// list and any ORDER BY read it as MergeExpr spells it.
			p = append(p, m.fn+"MergeState("+m.name+") AS "+m.name)
			r = append(r, m.name)
			f = append(f, m.mergeExprs()...)
		}
	}
	return strings.Join(p, ", "), strings.Join(r, ", "), strings.Join(f, ", ")
}

// MergeSelect is the select list merging the usage measures' states over a
// group, "sumMerge(requests), …", in the order Merged.Dest scans them.
func MergeSelect() string { return mergeSelect(true) }

// MergeSelectNoHist is MergeSelect with empty arrays in place of the
// merged histograms: the same columns for Merged.Dest, without the
// histogram merge that costs most of a long range's query. The counts and
// sums of the durations are merged as usual; their minima and maxima,
// which come from the histograms, are left unknown.
func MergeSelectNoHist() string { return mergeSelect(false) }

func mergeSelect(hists bool) string {
	var out []string
	for _, m := range measures {
		switch {
		case m.mark:
		case m.hist() && !hists:
			out = append(out, m.countExpr(), noHist, noHist)
		default:
			out = append(out, m.mergeExprs()...)
		}
	}
	return strings.Join(out, ", ")
}

// Merged receives the measures of a group read with MergeSelect: the merged
// sums, counts and histograms land in the fields of Rollup (its key fields
// and SrcOffset stay zero), and Done derives each duration's minimum and
// maximum from its histogram. Call Done after Scan.
type Merged struct {
	Rollup
	cost string
	// hists are the latency and TTFT histograms as read (histText), turned
	// into Latency's and TTFT's HistIdx and HistCnt by ReadHists.
	hists     [2]struct{ idx, cnt string }
	histsRead bool
}

// histText reads the integer array expr as its decimal values joined by
// commas, "3,17,204": clickhouse-go scans an array into a Go slice one
// element at a time through reflection, boxing each value (about 300 ns an
// element, 20 ms of a 30-day usage query by model), while a string is one
// copy and parseInts reads it in a few ns per value.
func histText(expr string) string {
	return "arrayStringConcat(arrayMap(x -> toString(x), " + expr + "), ',')"
}

// noHist is histText of an empty histogram (not read).
const noHist = "''"

// parseHist reads a histogram read as histText into d's HistIdx and
// HistCnt (empty, not nil, when it holds nothing).
func parseHist(d *Dist, idx, cnt string) error {
	n := 0
	if idx != "" {
		n = strings.Count(idx, ",") + 1
	}
	d.HistIdx, d.HistCnt = make([]int16, 0, n), make([]uint64, 0, n)
	if idx != "" {
		for f := range strings.SplitSeq(idx, ",") {
			v, err := strconv.ParseInt(f, 10, 16)
			if err != nil {
				return fmt.Errorf("cannot read histogram bucket %q: %w", f, err)
			}
			d.HistIdx = append(d.HistIdx, int16(v))
		}
	}
	if cnt != "" {
		for f := range strings.SplitSeq(cnt, ",") {
			v, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return fmt.Errorf("cannot read histogram count %q: %w", f, err)
			}
			d.HistCnt = append(d.HistCnt, v)
		}
	}
	if len(d.HistIdx) != len(d.HistCnt) {
		return fmt.Errorf("histogram of %d buckets and %d counts", len(d.HistIdx), len(d.HistCnt))
	}
	return nil
}

// Dest returns the scan destinations of MergeSelect's expressions.
func (s *Merged) Dest() []any {
	s.histsRead = false
	dst := make([]any, 0, len(measures)+2)
	for _, m := range measures {
		if !m.mark {
			dst = m.dest(s, dst)
		}
	}
	return dst
}

// ReadHists fills the durations' HistIdx and HistCnt from what Scan read;
// Done calls it, and a caller that changes the histograms before Done
// calls it first. It reads them once per Scan.
func (s *Merged) ReadHists() error {
	if s.histsRead {
		return nil
	}
	for i, d := range []*Dist{&s.Latency, &s.TTFT} {
		if err := parseHist(d, s.hists[i].idx, s.hists[i].cnt); err != nil {
			return err
		}
	}
	s.histsRead = true
	return nil
}

// Done converts what Scan wrote that needs converting (the cost, the
// histograms' text: ReadHists) and sets the durations' MinMs and MaxMs: the values of the lowest and highest
// buckets of the merged histogram (sumMap returns them in index order), or
// +Inf and 0 when it was not read or holds nothing.
func (s *Merged) Done() error {
	c, err := pricing.ParsePico(s.cost)
	if err != nil {
		return fmt.Errorf("cannot read merged cost %q: %w", s.cost, err)
	}
	s.Cost = c
	if err := s.ReadHists(); err != nil {
		return err
	}
	for _, d := range []*Dist{&s.Latency, &s.TTFT} {
		d.MinMs, d.MaxMs = math.Inf(1), 0
		if n := len(d.HistIdx); n > 0 {
			d.MinMs, d.MaxMs = sketch.Value(d.HistIdx[0]), sketch.Value(d.HistIdx[n-1])
		}
	}
	return nil
}
