package analytics

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/costpipe/costpipe/warehouse"
)

// mergeSelect is the select list merging a group's measures for n: every
// histogram (warehouse.MergeSelect), none (UsageQuery.NoLatency:
// warehouse.MergeSelectNoHist) or the latency one only (UsageQuery.NoTTFT).
// All three scan into the same destinations (scanned.dest).
func (n normalized) mergeSelect() string {
	switch {
	case n.noDists:
		return warehouse.MergeSelectNoHist()
	case n.noTTFT:
		return mergeSelectNoTTFT()
	}
	return warehouse.MergeSelect()
}

// twoStage is mergeSelect as the select lists of a query over a union
// (warehouse.TwoStageSelect): each branch merged first (partial) or read as
// its rows (rows), then the outer merge (final).
func (n normalized) twoStage() (partial, rows, final string) {
	return warehouse.TwoStageSelect(func(name string) bool {
		return !n.noDists && (!n.noTTFT || !strings.HasPrefix(name, "ttft"))
	})
}

// mergeSelectNoTTFT is warehouse.MergeSelect with the expressions of the
// TTFT histogram taken from warehouse.MergeSelectNoHist (empty arrays):
// the two lists hold the same columns in the same order, and differ only
// in the histograms. Should they ever not line up, it is MergeSelect (both
// histograms: slower, as correct).
var mergeSelectNoTTFT = sync.OnceValue(func() string {
	all, none := splitSelect(warehouse.MergeSelect()), splitSelect(warehouse.MergeSelectNoHist())
	if len(all) != len(none) {
		return warehouse.MergeSelect()
	}
	for i := range all {
		if all[i] != none[i] && strings.Contains(all[i], "ttft_hist") {
			all[i] = none[i]
		}
	}
	return strings.Join(all, ", ")
})

// splitSelect splits a select list at its top-level commas (not those
// within parentheses or quotes).
func splitSelect(s string) []string {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '`' || c == '"':
			quote = c
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// sumsKept are the measures a sums-only select reads (StepOptions.SumsOnly).
var sumsKept = []string{"requests", "errors", "unpriced_requests", "cost_usd"}

// sumsOnly rewrites the select list sel (a mergeSelect) to read the
// measures of sumsKept, the latency durations when sel merges the latency
// histogram, and the histograms it merges: every other sum, minimum and
// maximum is a constant 0, in the type Merged scans.
func sumsOnly(sel string) string {
	exprs := splitSelect(sel)
	hist := strings.Contains(sel, "latency_histMap")
	for i, e := range exprs {
		name := strings.TrimSuffix(e[strings.LastIndexByte(e, '(')+1:], ")")
		name = strings.TrimRight(name, ")")
		switch {
		case slices.Contains(sumsKept, name), hist && strings.HasPrefix(name, "latency_"):
		case strings.HasPrefix(e, "sumMerge("):
			exprs[i] = "toUInt64(0)"
		case strings.HasPrefix(e, "minMerge("), strings.HasPrefix(e, "maxMerge("):
			exprs[i] = "toFloat64(0)"
		}
	}
	return strings.Join(exprs, ", ")
}

// tailSelect rewrites the select list sel (a mergeSelect with the latency
// histogram) to merge only the latency buckets above index j
// (StepOptions.TailMs); untail completes what it reads.
func tailSelect(sel string, j int16) string {
	exprs := splitSelect(sel)
	keep := fmt.Sprintf("arrayFilter((c, i) -> i > %d, `latency_histMap.cnt`, `latency_histMap.idx`)", j)
	tail := fmt.Sprintf("sumMap(arrayFilter(i -> i > %d, `latency_histMap.idx`), %s)", j, warehouse.WidenCounts(keep))
	// The merged latency histogram, wherever the select list reads it.
	whole := warehouse.HistSumMap("latency_hist")
	for i, e := range exprs {
		exprs[i] = strings.ReplaceAll(e, whole, tail)
	}
	return strings.Join(exprs, ", ")
}

// untail turns the latency tail read with tailSelect (the buckets above
// index j) into a histogram holding the calls at or below it in bucket j.
func untail(d *warehouse.Dist, j int16) error {
	var tail uint64
	for _, c := range d.HistCnt {
		tail += c
	}
	if tail > d.Count {
		return fmt.Errorf("latency histogram holds %d samples above bucket %d but the count is %d", tail, j, d.Count)
	}
	if below := d.Count - tail; below > 0 {
		d.HistIdx = append([]int16{j}, d.HistIdx...)
		d.HistCnt = append([]uint64{below}, d.HistCnt...)
	}
	return nil
}
