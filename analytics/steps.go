package analytics

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/costpipe/costpipe/pipelines/sketch"
	"github.com/costpipe/costpipe/warehouse"
)

// MaxStepRows bounds the rows (steps × groups) one UsageSteps call returns.
const MaxStepRows = 2_000_000

// StepRow is the usage of one group in one step.
type StepRow struct {
	// Start is the step's start (UTC).
	Start time.Time
	UsageRow
	// Timed are the calls that reported latency (Latency.Count, also when
	// the query left the histograms out); set by UsageStepsWith.
	Timed uint64
	// Over holds, for each of StepOptions.OverMs, the timed calls slower
	// than it, counted as Percentiles.CountAbove counts them; set by
	// UsageStepsWith.
	Over []uint64
}

// StepOptions refine UsageStepsWith.
type StepOptions struct {
	// OverMs asks each row's calls slower than these bounds (StepRow.Over):
	// ClickHouse sums each stored row's histogram buckets above a bound,
	// which costs a fraction of merging the histograms, so with
	// UsageQuery.NoLatency an SLO's bad calls are read without them.
	OverMs []float64
	// Only, when set, keeps the steps starting at these times.
	Only []time.Time
	// TailMs > 0 merges the latency histograms above TailMs's bucket only
	// (the calls at or below it are counted, not placed), which costs a
	// fraction of merging them whole when few calls are slower. The rows'
	// latency percentiles are then exact where they lie above that bucket
	// and that bucket's value (≥ the exact one, at most TailMs·1.01)
	// where they do not; Count is exact, and so is CountAbove of a bound
	// at or above TailMs. Not with UsageQuery.NoLatency.
	TailMs float64
	// SumsOnly reads the calls, errors, unpriced calls, cost and timed
	// calls (and the latency durations when the latency histogram is
	// read); the rows' other sums are zero. What alert rules read, faster.
	SumsOnly bool
	// Retained reads hour steps through retention (retainedRead): over
	// months whose hour rows `costpipe retention` dropped, the answer is a
	// DroppedError that names them and says to ask for days, not steps
	// that read as no calls. UsageSteps sets it; alert rules' look-back,
	// which reaches before the range asked, reads what is kept.
	Retained bool
}

// UsageSteps returns the usage of every group of uq.By in each step of
// [uq.From, uq.To) that has usage: step is an hour (read from usage_1h) or
// a day (usage_1d, UTC days); the bounds are rounded out to whole steps.
// It is one query over one table, each row what Usage would return for
// that step and group: a replay (the alert backtest) reads a range once
// instead of asking Usage at every step. uq.NoLatency and uq.NoTTFT leave
// histograms out as they do for Usage. It fails beyond MaxStepRows rows,
// and over hour rows retention dropped (StepOptions.Retained).
func (q *Querier) UsageSteps(ctx context.Context, uq UsageQuery, step time.Duration) ([]StepRow, error) {
	return q.UsageStepsWith(ctx, uq, step, StepOptions{Retained: true})
}

// overSelect is the expression of the timed calls slower than ms in a
// group: the calls in histogram buckets above ms's (Percentiles.CountAbove),
// summed over the stored rows without merging their histograms.
func overSelect(ms float64) string {
	return fmt.Sprintf("sum(arraySum(arrayFilter((c, i) -> i > %d, `latency_histMap.cnt`, `latency_histMap.idx`)))", sketch.Index(ms))
}

// UsageStepsWith is UsageSteps with the counts over latency bounds and a
// choice of steps (StepOptions).
func (q *Querier) UsageStepsWith(ctx context.Context, uq UsageQuery, step time.Duration, o StepOptions) ([]StepRow, error) {
	for _, ms := range o.OverMs {
		if !(ms > 0) || math.IsInf(ms, 1) {
			return nil, fmt.Errorf("latency bound %v ms: want a finite number > 0", ms)
		}
	}
	var table warehouse.Table
	switch step {
	case time.Hour:
		table = warehouse.Hour
	case day:
		table = warehouse.Day
	default:
		return nil, fmt.Errorf("usage steps of %s: want an hour or a day", step)
	}
	if uq.From.IsZero() || uq.To.IsZero() || !uq.From.Before(uq.To) {
		return nil, fmt.Errorf("usage steps need a range with From before To")
	}
	from, to := uq.From.UTC().Truncate(step), ceil(uq.To.UTC(), step)
	n, err := normalize(UsageQuery{From: from, To: to, By: uq.By, Where: uq.Where, NoLatency: uq.NoLatency, NoTTFT: uq.NoTTFT}, to)
	if err != nil {
		return nil, err
	}
	if o.TailMs != 0 && (!(o.TailMs > 0) || math.IsInf(o.TailMs, 1) || uq.NoLatency) {
		return nil, fmt.Errorf("latency tail above %v ms: want a finite number > 0, and the latency histogram (not NoLatency)", o.TailMs)
	}
	sel := n.mergeSelect()
	if o.TailMs > 0 {
		sel = tailSelect(sel, sketch.Index(o.TailMs))
	}
	if o.SumsOnly {
		sel = sumsOnly(sel)
	}
	value := "count(), " + sel
	for _, ms := range o.OverMs {
		value += ", " + overSelect(ms)
	}
	var out []StepRow
	read := func(n normalized) error {
		out = out[:0]
		query, args := bucketSQL(q.w.Database(), table, n, "toUInt32(ts)", value)
		if o.Only != nil {
			only := make([]string, 0, len(o.Only)+1)
			only = append(only, "0") // IN () is not SQL
			for _, t := range o.Only {
				only = append(only, strconv.FormatInt(t.Unix(), 10))
			}
			const groupBy = "\nGROUP BY "
			if strings.Count(query, groupBy) != 1 {
				return fmt.Errorf("internal error: cannot restrict the steps of %q", query)
			}
			query = strings.Replace(query, groupBy, " AND toUInt32(ts) IN ("+strings.Join(only, ", ")+")"+groupBy, 1)
		}
		rows, err := q.w.Conn().Query(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("cannot query usage per %s in [%s, %s): %w", stepName(step), from.Format(time.RFC3339), to.Format(time.RFC3339), err)
		}
		defer rows.Close()
		for rows.Next() {
			if len(out) == MaxStepRows {
				return fmt.Errorf("usage per %s in [%s, %s) has more than %d rows: shorten the range or group by fewer dimensions",
					stepName(step), from.Format(time.RFC3339), to.Format(time.RFC3339), MaxStepRows)
			}
			keys := make([]string, len(n.by))
			var bucket uint32
			s := scanned{noDists: n.noDists, noTTFT: n.noTTFT}
			over := make([]uint64, len(o.OverMs))
			dest := make([]any, 0, len(keys)+40+len(over))
			for i := range keys {
				dest = append(dest, &keys[i])
			}
			dest = append(dest, &bucket)
			dest = append(dest, s.dest()...)
			for i := range over {
				dest = append(dest, &over[i])
			}
			if err := rows.Scan(dest...); err != nil {
				return fmt.Errorf("cannot read usage step row: %w", err)
			}
			if s.rows == 0 {
				continue
			}
			timed := s.m.Latency.Count // before row, which clears it with NoLatency
			if o.TailMs > 0 {
				if err := s.m.ReadHists(); err != nil {
					return fmt.Errorf("cannot read usage step row: %w", err)
				}
				if err := untail(&s.m.Latency, sketch.Index(o.TailMs)); err != nil {
					return fmt.Errorf("group %s at %s: %w", groupString(n.by, keys), time.Unix(int64(bucket), 0).UTC().Format(time.RFC3339), err)
				}
			}
			r, err := s.row()
			if err != nil {
				return fmt.Errorf("group %s at %s: %w", groupString(n.by, keys), time.Unix(int64(bucket), 0).UTC().Format(time.RFC3339), err)
			}
			r.Group = make(map[Dim]string, len(keys))
			for i, d := range n.by {
				r.Group[d] = keys[i]
			}
			sr := StepRow{Start: time.Unix(int64(bucket), 0).UTC(), UsageRow: r, Timed: timed}
			if len(over) > 0 {
				sr.Over = over
			}
			out = append(out, sr)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("cannot read usage step rows: %w", err)
		}
		return nil
	}
	if table == warehouse.Hour && o.Retained {
		// Retention drops hour rows (--keep-hours): steps over such months
		// would read as no calls, silently. A DroppedError says which and
		// what to ask instead (day steps).
		n.g = GranularityHour
		_, err = q.retainedRead(ctx, n, read)
	} else {
		err = read(n) // day rows are kept
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}
