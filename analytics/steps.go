package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/costpipe/costpipe/warehouse"
)

// MaxStepRows bounds the rows (steps × groups) one UsageSteps call returns.
const MaxStepRows = 2_000_000

// StepRow is the usage of one group in one step.
type StepRow struct {
	// Start is the step's start (UTC).
	Start time.Time
	UsageRow
}

// UsageSteps returns the usage of every group of uq.By in each step of
// [uq.From, uq.To) that has usage: step is an hour (read from usage_1h) or
// a day (usage_1d, UTC days); the bounds are rounded out to whole steps.
// It is one query over one table, each row what Usage would return for
// that step and group: a replay (the alert backtest) reads a range once
// instead of asking Usage at every step. It fails beyond MaxStepRows rows.
func (q *Querier) UsageSteps(ctx context.Context, uq UsageQuery, step time.Duration) ([]StepRow, error) {
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
	n, err := normalize(UsageQuery{From: from, To: to, By: uq.By, Where: uq.Where}, to)
	if err != nil {
		return nil, err
	}
	query, args := bucketSQL(q.w.Database(), table, n, "toUInt32(ts)", "count(), "+warehouse.MergeSelect())
	rows, err := q.w.Conn().Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot query usage per %s in [%s, %s): %w", stepName(step), from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	defer rows.Close()
	var out []StepRow
	for rows.Next() {
		if len(out) == MaxStepRows {
			return nil, fmt.Errorf("usage per %s in [%s, %s) has more than %d rows: shorten the range or group by fewer dimensions",
				stepName(step), from.Format(time.RFC3339), to.Format(time.RFC3339), MaxStepRows)
		}
		keys := make([]string, len(n.by))
		var bucket uint32
		var s scanned
		dest := make([]any, 0, len(keys)+40)
		for i := range keys {
			dest = append(dest, &keys[i])
		}
		dest = append(dest, &bucket)
		if err := rows.Scan(append(dest, s.dest()...)...); err != nil {
			return nil, fmt.Errorf("cannot read usage step row: %w", err)
		}
		if s.rows == 0 {
			continue
		}
		r, err := s.row()
		if err != nil {
			return nil, fmt.Errorf("group %s at %s: %w", groupString(n.by, keys), time.Unix(int64(bucket), 0).UTC().Format(time.RFC3339), err)
		}
		r.Group = make(map[Dim]string, len(keys))
		for i, d := range n.by {
			r.Group[d] = keys[i]
		}
		out = append(out, StepRow{Start: time.Unix(int64(bucket), 0).UTC(), UsageRow: r})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read usage step rows: %w", err)
	}
	return out, nil
}
