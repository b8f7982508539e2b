package render

import (
	"strconv"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
)

// SeriesReport is what Series renders: the answer of analytics.Series.
type SeriesReport struct {
	// Scope gives By and Where; the range is Result's (whole steps).
	Scope  Scope
	Result analytics.SeriesResult
}

// MaxPivotGroups is the number of groups the table format of a series
// shows as columns; the others are summed in OTHER.
const MaxPivotGroups = 8

// sparkWidth is the widest sparkline of a series' TREND line.
const sparkWidth = 24

// Series is the series report. Machine formats get one row per group and
// step: the dimensions, ts (the start of the step) and the metric's value
// (cost_usd exact, or a count), zero for a step without usage. The table
// format shows one line per step and a column per group (the largest
// MaxPivotGroups, then OTHER and TOTAL), with TOTAL and TREND (a
// sparkline per column) lines under them.
func Series(r SeriesReport) *Table {
	by, res := r.Scope.By, &r.Result
	metric := metricColumn(res.Metric)
	scope := r.Scope
	scope.From, scope.To = res.From, res.To
	t := &Table{Empty: "no usage in " + scope.rangeText() + scope.whereText()}
	t.Columns = append(dimColumns(by), Column{Name: "ts", Head: "STEP", Kind: KindTime}, metric)
	value := func(s *analytics.GroupSeries, i int) Value {
		if s.Cost != nil {
			return Money(s.Cost[i])
		}
		return Uint(uint64(s.Values[i]))
	}
	// One row per group and step, all cut from one array: a series can
	// hold millions of values (BenchmarkSeries).
	width, n := len(t.Columns), len(res.Series)*len(res.Steps)
	var cells []Value
	if n > 0 {
		cells, t.Rows = make([]Value, n*width), make([][]Value, 0, n)
	}
	for g := range res.Series {
		s := &res.Series[g]
		dims := dimValues(by, s.Group)
		for i, ts := range res.Steps {
			row := cells[:width:width]
			cells = cells[width:]
			copy(row, dims)
			row[width-2], row[width-1] = Time(ts), value(s, i)
			t.Rows = append(t.Rows, row)
		}
	}
	if len(res.Series) > 0 {
		t.View = seriesPivot(scope, res, metric)
	}
	return t
}

// pivotColumn is one column of the pivot: exact per-step sums.
type pivotColumn struct {
	label  string
	cost   []pricing.Pico
	counts []uint64
}

func (c *pivotColumn) add(s *analytics.GroupSeries) {
	for i, v := range s.Values {
		if s.Cost != nil {
			c.cost[i] = c.cost[i].Add(s.Cost[i])
		} else {
			c.counts[i] += uint64(v)
		}
	}
}

func (c *pivotColumn) value(i int) Value {
	if c.cost != nil {
		return Money(c.cost[i])
	}
	return Uint(c.counts[i])
}

// sum is the column's total.
func (c *pivotColumn) sum() Value {
	var p pricing.Pico
	var u uint64
	for i := range max(len(c.cost), len(c.counts)) {
		if c.cost != nil {
			p = p.Add(c.cost[i])
		} else {
			u += c.counts[i]
		}
	}
	if c.cost != nil {
		return Money(p)
	}
	return Uint(u)
}

// floats are the column's values as floats, for a sparkline.
func (c *pivotColumn) floats() []float64 {
	out := make([]float64, max(len(c.cost), len(c.counts)))
	for i := range out {
		if c.cost != nil {
			out[i] = c.cost[i].Float64()
		} else {
			out[i] = float64(c.counts[i])
		}
	}
	return out
}

// seriesPivot is the table format's view of a series: a line per step.
func seriesPivot(scope Scope, res *analytics.SeriesResult, metric Column) *Table {
	steps := len(res.Steps)
	newCol := func(label string) *pivotColumn {
		c := &pivotColumn{label: label}
		if res.Metric == analytics.MetricCost {
			c.cost = make([]pricing.Pico, steps)
		} else {
			c.counts = make([]uint64, steps)
		}
		return c
	}
	var cols []*pivotColumn
	total := newCol("TOTAL")
	var other *pivotColumn
	for g := range res.Series {
		s := &res.Series[g]
		total.add(s)
		if g < MaxPivotGroups {
			label := groupLabel(scope.By, s.Group)
			if len(scope.By) == 0 {
				label = metric.head() // the one series: the totals
			}
			c := newCol(label)
			c.add(s)
			cols = append(cols, c)
			continue
		}
		if other == nil {
			other = newCol("OTHER")
		}
		other.add(s)
	}
	if other != nil {
		cols = append(cols, other)
	}
	if len(res.Series) > 1 {
		cols = append(cols, total)
	}

	unit := "per " + map[time.Duration]string{time.Minute: "minute", time.Hour: "hour", 24 * time.Hour: "day"}[res.Step]
	what := string(res.Metric)
	if res.Metric == analytics.MetricCost {
		what = "cost (USD)"
	}
	v := &Table{Title: what + " " + unit + " in " + scope.rangeText() + scope.byText() + scope.whereText()}
	stepCol := Column{Name: "step", Head: "STEP (UTC)", Kind: KindTime}
	if res.Step == 24*time.Hour {
		stepCol = Column{Name: "day", Head: "DAY (UTC)", Kind: KindDate}
	}
	v.Columns = []Column{stepCol}
	for _, c := range cols {
		v.Columns = append(v.Columns, Column{Name: c.label, Head: c.label, Kind: metric.Kind, Unit: metric.Unit})
	}
	for i, ts := range res.Steps {
		row := []Value{Time(ts)}
		if stepCol.Kind == KindDate {
			row[0] = Date(ts)
		}
		for _, c := range cols {
			row = append(row, c.value(i))
		}
		v.Rows = append(v.Rows, row)
	}
	sums, trend := []Value{Text("TOTAL")}, []Value{Text("TREND")}
	for _, c := range cols {
		sums = append(sums, c.sum())
		trend = append(trend, Floats(Downsample(c.floats(), sparkWidth)))
	}
	v.Footer = [][]Value{sums, trend}
	if other != nil {
		n := len(res.Series) - MaxPivotGroups
		v.Notes = append(v.Notes, "OTHER sums "+strconv.Itoa(n)+" more groups; --format csv, json or arrow lists every group")
	}
	if n := openSteps(res); n > 0 {
		v.Notes = append(v.Notes, openNote(res, n, stepCol.Kind))
	}
	if n := unpricedNote(res.UnpricedRequests); n != "" {
		v.Notes = append(v.Notes, n)
	}
	if steps > sparkWidth {
		v.Notes = append(v.Notes, "TREND: one mark per "+strconv.Itoa((steps+sparkWidth-1)/sparkWidth)+" steps (their mean)")
	}
	return v
}

// openSteps is the number of steps at the end of res that had not ended
// at res.AsOf (0 when AsOf is unknown).
func openSteps(res *analytics.SeriesResult) int {
	if res.AsOf.IsZero() {
		return 0
	}
	n := 0
	for n < len(res.Steps) && res.Steps[len(res.Steps)-1-n].Add(res.Step).After(res.AsOf) {
		n++
	}
	return n
}

// openNote says which of the last n steps had not ended when the series
// was read, so that a last step that looks low is not read as a fall.
func openNote(res *analytics.SeriesResult, n int, kind Kind) string {
	name := func(ts time.Time) string {
		if kind == KindDate {
			return ts.Format(time.DateOnly)
		}
		return ts.Format("2006-01-02 15:04")
	}
	at := res.AsOf.Format("2006-01-02 15:04:05") + " UTC"
	first := res.Steps[len(res.Steps)-n]
	switch {
	case !first.After(res.AsOf) && n == 1:
		return "the last step (" + name(first) + ") had not ended at " + at + ": its value is so far"
	case !first.After(res.AsOf):
		return "the steps from " + name(first) + " on had not ended at " + at + ": their values are so far"
	}
	return "the steps from " + name(first) + " on had not begun at " + at
}
