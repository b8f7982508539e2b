package warehouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

// Table is one rollup granularity.
type Table uint8

// The rollup tables. Each is fed through its own Null input table and
// materialized view (see schemas/clickhouse/0003_compact_rollups.sql,
// 0004_service_tiers.sql and 0007_fast_rollups.sql).
const (
	Minute Table = 1 << iota // usage_1m
	Hour                     // usage_1h
	Day                      // usage_1d
	// Week is not a rollup: nothing lands into a usage_1w. It names the
	// per-model summary usage_model_1w (migration 0010), usage_1d's days
	// summed per ISO week (from Monday 00:00 UTC), which a question of
	// whole weeks of days reads instead of seven rows per model
	// (summaries.go). Its Rollup is Day.
	Week

	// AllTables is the mask of every rollup table.
	AllTables = Minute | Hour | Day
)

// Tables lists the rollup tables in landing order.
var Tables = [...]Table{Minute, Hour, Day}

// Name is the table's name, e.g. "usage_1m".
func (t Table) Name() string {
	switch t {
	case Minute:
		return "usage_1m"
	case Hour:
		return "usage_1h"
	case Day:
		return "usage_1d"
	case Week:
		return "usage_1w" // no such table: the stem of ModelName; its rows are Rollup's
	}
	return fmt.Sprintf("table(%d)", uint8(t))
}

// Rollup is the rollup table t's rows come from: t itself, or Day for
// Week.
func (t Table) Rollup() Table {
	if t == Week {
		return Day
	}
	return t
}

// InputName is the table the aggregator inserts into, e.g.
// "usage_1m_input_v10". Its name carries the schema version that last changed
// what an insert means or the tables behind it, so an aggregator built for
// an older schema cannot land into a newer one: its inserts fail and its offsets stay uncommitted.
func (t Table) InputName() string { return t.Name() + "_input" + inputVersion }

// MVName is the materialized view from InputName to Name.
func (t Table) MVName() string { return t.Name() + "_mv" + inputVersion }

// inputVersion is the suffix of the input tables and views: the schema
// version that last changed them (0009 added the per-model summaries'
// views, 0010 the weekly summary's; summaries.go).
const inputVersion = "_v10"

// Truncate returns the start of t's bucket containing ts, in UTC: the
// minute, the hour, the UTC day or the ISO week's Monday (UTC). The server
// computes the same buckets: ts columns are DateTime('UTC').
func (t Table) Truncate(ts time.Time) time.Time {
	switch t {
	case Hour:
		return ts.UTC().Truncate(time.Hour)
	case Day, Week:
		y, m, d := ts.UTC().Date()
		day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		if t == Week {
			day = day.AddDate(0, 0, -(int(day.Weekday())+6)%7) // back to Monday
		}
		return day
	}
	return ts.UTC().Truncate(time.Minute)
}

// Month is a ClickHouse partition of the rollup tables: toYYYYMM(ts) of a
// DateTime('UTC') column, i.e. the UTC month, whatever the server's time zone.
type Month int32

// MonthOf returns the partition of ts (its UTC month).
func MonthOf(ts time.Time) Month {
	y, m, _ := ts.UTC().Date()
	return Month(y*100 + int(m))
}

// Dist is the latency or TTFT part of a rollup row.
type Dist struct {
	Count     uint64
	SumMicros uint64
	// MinMs and MaxMs are read, not landed: Merged.Done derives them from
	// the merged histogram (the tables store neither since 0008).
	MinMs   float64 // +Inf when Count == 0
	MaxMs   float64 // 0 when Count == 0
	HistIdx []int16 // sketch bucket indices, sorted
	HistCnt []uint64
}

// Rollup is one row of a rollup table: the partial sums of one key in one
// time bucket, landed by the flush that ended at SrcOffset of SrcPartition.
type Rollup struct {
	TS           time.Time // bucket start, UTC
	Tenant       string
	Application  string
	Provider     string
	Model        string
	ErrorType    string
	ServiceTier  string // the call's service tier, normalized ("" standard)
	ContextBand  uint32 // pricing.ContextBand of the calls' input tokens
	SrcTopic     string
	SrcPartition int32
	SrcOffset    int64

	Requests           uint64
	Errors             uint64
	InputTokens        uint64
	CachedInputTokens  uint64
	CacheWriteTokens   uint64
	CacheWrite1hTokens uint64
	OutputTokens       uint64
	ReasoningTokens    uint64
	GPUMicros          uint64
	UnpricedRequests   uint64
	Cost               pricing.Pico
	Latency            Dist
	TTFT               Dist
}

// InsertRollups lands rows into table t as ONE block. Every row must fall in
// the same month (one ClickHouse partition), so the insert is atomic: it lands
// whole or not at all. It returns an error without sending anything when the
// rows span months.
func (w *Warehouse) InsertRollups(ctx context.Context, t Table, rows []Rollup) error {
	if len(rows) == 0 {
		return nil
	}
	m := MonthOf(rows[0].TS)
	for i := range rows {
		if MonthOf(rows[i].TS) != m {
			return fmt.Errorf("cannot insert into %s: rows span months %d and %d (an insert must touch one partition)",
				t.Name(), m, MonthOf(rows[i].TS))
		}
	}
	for i := range rows {
		if err := checkWidths(t, &rows[i]); err != nil {
			return fmt.Errorf("cannot insert into %s: %w", t.Name(), err)
		}
		if err := checkTime(&rows[i]); err != nil {
			return fmt.Errorf("cannot insert into %s: %w", t.Name(), err)
		}
	}
	b, err := w.conn.PrepareBatch(ctx, "INSERT INTO "+w.database+"."+t.InputName()+" ("+insertColumns+")")
	if err != nil {
		return fmt.Errorf("cannot prepare insert into %s.%s: %w", w.database, t.InputName(), err)
	}
	if err := w.fillColumns(b.Columns(), rows); err != nil {
		b.Abort()
		return fmt.Errorf("cannot build the %s insert: %w", t.Name(), err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot insert %d rows into %s: %w", len(rows), t.Name(), err)
	}
	return nil
}

// fillColumns writes rows into the columns of an insert, column by column:
// each encoded in Native format into w.enc, then decoded by the driver's
// column into one allocation of its exact size (native.go).
func (w *Warehouse) fillColumns(cols []column.Interface, rows []Rollup) error {
	names := inputColumns
	if len(cols) != len(names) {
		return fmt.Errorf("the server expects %d columns, costpipe sends %d", len(cols), len(names))
	}
	w.enc.Lock()
	defer w.enc.Unlock()
	for i, c := range cols {
		// The encoding is the type's: a column of another type would read
		// the bytes as something else, so both must match exactly.
		if c.Name() != names[i].Name || string(c.Type()) != names[i].Type {
			return fmt.Errorf("column %d is %s %s on the server, %s %s in costpipe", i+1, c.Name(), c.Type(), names[i].Name, names[i].Type)
		}
		w.enc.buf = nativeColumns[i].encode(rows, w.enc.buf[:0])
		if err := w.enc.decode(c, len(rows)); err != nil {
			return fmt.Errorf("cannot fill column %s (%s): %w", names[i].Name, names[i].Type, err)
		}
	}
	return nil
}

func nonNil16(s []int16) []int16 {
	if s == nil {
		return []int16{}
	}
	return s
}

func nonNil64(s []uint64) []uint64 {
	if s == nil {
		return []uint64{}
	}
	return s
}

// MarkKey names one high-water mark: a table, a month partition and a Kafka
// partition of one topic.
type MarkKey struct {
	Table     Table
	Month     Month
	Partition int32
}

// LandingMarks returns, for the given Kafka partitions of topic, the highest
// src_offset landed in each (table, month) from month since on (0: every
// month): HWM(T, M, p). A record at offset o of partition p whose event falls
// in month M has landed in T iff o ≤ HWM. Keys absent from the map have
// nothing landed. Reading starts at since so that recovery reads only the
// months an event may still land in (ClickHouse skips older partitions),
// not all history.
func (w *Warehouse) LandingMarks(ctx context.Context, topic string, partitions []int32, since Month) (map[MarkKey]int64, error) {
	out := make(map[MarkKey]int64)
	if len(partitions) == 0 {
		return out, nil
	}
	var parts []string
	for _, p := range partitions {
		parts = append(parts, fmt.Sprint(p))
	}
	in := strings.Join(parts, ",")
	var q strings.Builder
	for i, t := range Tables {
		if i > 0 {
			q.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&q, "SELECT toUInt8(%d) AS t, toYYYYMM(ts) AS m, src_partition, maxMerge(src_offset) AS hwm FROM %s.%s WHERE src_topic = ? AND src_partition IN (%s) AND ts >= toDateTime(?, 'UTC') GROUP BY m, src_partition",
			uint8(t), w.database, t.Name(), in)
	}
	from := "1970-01-01 00:00:00"
	if since > 0 {
		from = time.Date(int(since)/100, time.Month(int(since)%100), 1, 0, 0, 0, 0, time.UTC).Format(time.DateTime)
	}
	args := make([]any, 0, 2*len(Tables))
	for range Tables {
		args = append(args, topic, from)
	}
	rows, err := w.conn.Query(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read landing marks of %q from %s: %w", topic, w.database, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			t   uint8
			m   uint32
			p   int32
			hwm int64
		)
		if err := rows.Scan(&t, &m, &p, &hwm); err != nil {
			return nil, fmt.Errorf("cannot read landing marks: %w", err)
		}
		out[MarkKey{Table: Table(t), Month: Month(m), Partition: p}] = hwm
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read landing marks: %w", err)
	}
	return out, nil
}

// NoDeduplication is ctx with replicated deduplication off for the inserts
// made with it (insert_deduplicate=0); non-replicated tables do not
// deduplicate either way. The aggregator's landing keeps it on: a retried
// batch, whose first insert may still commit after the retry's check found
// it missing, is then dropped as the identical block it is. Inserts that
// must land even when a block is identical to an earlier one use it:
// reprice corrections (reprice, revert, reprice again writes the first
// run's block once more) and the summary fills (after their partition is
// dropped). Its cost: per-model summary blocks from two flushes can be
// identical (they keep no offsets), and the second is then dropped
// (docs/design.md, "Cluster mode").
func NoDeduplication(ctx context.Context) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_deduplicate": 0}))
}
