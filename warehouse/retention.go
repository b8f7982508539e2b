package warehouse

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// ClockMargin is how much older than their --max-event-age the aggregators
// may still land an event: they read the landing marks of the months from
// max-event-age plus this margin ago (pipelines/usage, marksSince), so that a
// wall clock stepping back does not make them accept an event older than the
// marks they read. Retention keeps minutes at least that long.
const ClockMargin = 24 * time.Hour

// RetentionOptions configure Retention.
type RetentionOptions struct {
	// KeepMinutes is how long usage_1m keeps a month: its partition is
	// dropped once the whole month is older than this. Default 35 days.
	KeepMinutes time.Duration
	// KeepHours is the same for usage_1h and its per-model summary
	// usage_model_1h. Default 400 days. usage_1d and the day and week
	// summaries are kept forever.
	KeepHours time.Duration
	// MaxEventAge is the largest --max-event-age of any aggregator group
	// landing into the database (default 7 days), a backfill group's
	// included: KeepMinutes must be at least MaxEventAge plus ClockMargin,
	// or a late event could land into a month already dropped, without its
	// landing mark.
	MaxEventAge time.Duration
	// DryRun lists what would be dropped and drops nothing. Default false.
	DryRun bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultRetentionOptions returns RetentionOptions with every default filled in.
func DefaultRetentionOptions() RetentionOptions {
	return RetentionOptions{KeepMinutes: 35 * 24 * time.Hour, KeepHours: 400 * 24 * time.Hour,
		MaxEventAge: 7 * 24 * time.Hour, Now: time.Now}
}

// Validate reports the first option that cannot work.
func (o RetentionOptions) Validate() error {
	switch {
	case o.Now == nil:
		return errors.New("retention clock Now must be set")
	case o.MaxEventAge <= 0:
		return fmt.Errorf("max event age must be > 0, got %s", o.MaxEventAge)
	case o.KeepMinutes < o.MaxEventAge+ClockMargin:
		return fmt.Errorf("cannot keep minutes for %s: the aggregators land events up to their max event age %s old, "+
			"and a day more when a clock steps back, so a late event could land into a dropped month without its landing mark; "+
			"keep minutes at least %s (max event age + 1 day), and give the largest --max-event-age of any aggregator group, a backfill's included",
			days(o.KeepMinutes), days(o.MaxEventAge), days(o.MaxEventAge+ClockMargin))
	case o.KeepHours < o.KeepMinutes:
		return fmt.Errorf("cannot keep hours for %s, less than minutes (%s): queries read whole hours from usage_1h", days(o.KeepHours), days(o.KeepMinutes))
	}
	return nil
}

// days is d in days when it is a whole number of them ("8d"), else d.
func days(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// Partition is one month partition of a rollup table, or of its per-model
// summary, that Retention found expired.
type Partition struct {
	// Table is the rollup whose retention applies: Minute or Hour.
	Table Table
	// Summary is true for a month of Table's per-model summary
	// (Table.ModelName(), usage_model_1h) rather than of the rollup.
	Summary bool
	// Database holds the table: the costpipe database, or on a cluster
	// its shard-local database (LocalDatabase), where the data is and
	// the drop happens on every shard.
	Database string
	Month    Month
	// End is the first instant after the month (UTC): every row is older.
	End   time.Time
	Rows  uint64 // on every shard together
	Bytes uint64 // on disk, on every shard together
	// Dropped is true once ALTER TABLE … DROP PARTITION succeeded (false
	// in a dry run).
	Dropped bool
	// Err is why the drop failed; nil when it succeeded, was not tried
	// (a dry run) or was left out because ctx ended.
	Err error
}

// Name is the name of the partition's table: usage_1m, usage_1h or
// usage_model_1h.
func (p Partition) Name() string {
	if p.Summary {
		return p.Table.ModelName()
	}
	return p.Table.Name()
}

// RetentionError is Retention's error when some drops failed: the others
// were still tried.
type RetentionError struct {
	// Failed are the partitions whose drop failed, each with its Err.
	Failed []Partition
}

// Error names every partition that could not be dropped, and why, a line
// each (Reason).
func (e *RetentionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cannot drop %d partition(s):", len(e.Failed))
	for _, p := range e.Failed {
		fmt.Fprintf(&b, "\n  %s.%s partition %d: %s", p.Database, p.Name(), p.Month, p.Reason())
	}
	return b.String()
}

// Unwrap returns the failed drops' errors.
func (e *RetentionError) Unwrap() []error {
	out := make([]error, len(e.Failed))
	for i, p := range e.Failed {
		out[i] = p.Err
	}
	return out
}

// tableSizeExceedsMaxDropSize is ClickHouse's TABLE_SIZE_EXCEEDS_MAX_DROP_SIZE_LIMIT:
// a partition larger than the server's max_partition_size_to_drop.
const tableSizeExceedsMaxDropSize = 359

// DropSizeLimited reports whether err (or one of the errors it wraps) is a
// server refusing to drop a partition larger than its
// max_partition_size_to_drop (50 GB by default). To proceed, raise the
// limit (0 lifts it) in the server's config, or create its
// force_drop_table flag file (DropFlagFile; it allows one drop), then run
// retention again.
func DropSizeLimited(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && ex.Code == tableSizeExceedsMaxDropSize {
		return true
	}
	// ON CLUSTER forwards a member's exception in the text of its own.
	return err != nil && strings.Contains(err.Error(), "_size_to_drop")
}

// The parts of the server's refusal to drop a large partition, on 18.16
// and current releases: "Size (3.63 KB) is greater than
// max_[table/partition]_size_to_drop (1.00 B)" and "File
// '/var/lib/clickhouse/flags/force_drop_table' intended to force DROP".
var (
	dropSizeRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`Size \(([^)]*)\) is greater than max_\[table/partition\]_size_to_drop \(([^)]*)\)`)
	})
	dropFlagRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`'([^']*force_drop_table)'`) })
)

// DropFlagFile is the force_drop_table flag file a size-limit refusal in
// err, or in an error it wraps, names (on the server's disk); "" when none
// does.
func DropFlagFile(err error) string {
	if err == nil {
		return ""
	}
	if m := dropFlagRE().FindStringSubmatch(err.Error()); m != nil {
		return m[1]
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return DropFlagFile(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if f := DropFlagFile(e); f != "" {
				return f
			}
		}
	}
	return ""
}

// Reason is why the partition's drop failed, in one line: for a partition
// the server refused for its size, its size and the limit.
func (p Partition) Reason() string {
	if p.Err == nil {
		return ""
	}
	if DropSizeLimited(p.Err) {
		if m := dropSizeRE().FindStringSubmatch(p.Err.Error()); m != nil {
			return "refused by the server: " + m[1] + " is more than its max_partition_size_to_drop, " + m[2]
		}
		return "refused by the server: larger than its max_partition_size_to_drop"
	}
	line, _, _ := strings.Cut(p.Err.Error(), "\n")
	return line
}

// retentionTables are the tables Retention drops from, in order: a month of
// the summary of hours goes before the same month of its rollup (a summary
// lacking a month its rollup has is noticed by readers and not used).
var retentionTables = []struct {
	t       Table
	summary bool
}{{Minute, false}, {Hour, true}, {Hour, false}}

// Retention drops the month partitions of usage_1m older than KeepMinutes
// and those of usage_1h and of its per-model summary usage_model_1h older
// than KeepHours (a month goes when its last second is older than the
// limit; usage_1d and the day and week summaries are never touched), with
// ALTER TABLE … DROP PARTITION, which 18.16 and current servers run alike.
// Each table's expired months come from its own partitions, so a summary
// month its rollup no longer has goes too. It returns the expired
// partitions of usage_1m, usage_model_1h and usage_1h, in that order and
// by month, with the database that holds them (a cluster's shard-local
// one). Every drop is tried, a failed one too: it is marked with its Err,
// and the error is then a *RetentionError naming each (DropSizeLimited
// says whether the server refused one for its size). Nothing is dropped
// when the partitions cannot be listed.
func (w *Warehouse) Retention(ctx context.Context, o RetentionOptions) ([]Partition, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	now := o.Now().UTC()
	// On a cluster, the shard-local tables of every shard (one replica of
	// each answers for system.parts through the cluster table function), and
	// the drop ON CLUSTER.
	cluster, err := w.ClusterOf(ctx)
	if err != nil {
		return nil, err
	}
	db, parts, on := w.database, "system.parts", ""
	if cluster != "" {
		topo, err := w.Topology(ctx, cluster)
		if err != nil {
			return nil, err
		}
		if err := w.checkMembers(ctx, cluster, topo, "apply retention"); err != nil {
			return nil, err
		}
		db, parts, on = LocalDatabase(w.database), "cluster('"+cluster+"', system.parts)", " ON CLUSTER `"+cluster+"`"
	}
	expired, err := w.expired(ctx, db, parts, now, o)
	if err != nil {
		return nil, err
	}
	var failed []Partition
	for i := range expired {
		p := &expired[i]
		if o.DryRun || ctx.Err() != nil {
			continue
		}
		if err := w.exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s%s DROP PARTITION %d", db, p.Name(), on, p.Month)); err != nil {
			if ctx.Err() != nil {
				break // cut short: not a failure of the partition
			}
			p.Err = err
			failed = append(failed, *p)
			continue
		}
		p.Dropped = true
	}
	if err := ctx.Err(); err != nil && !o.DryRun {
		return expired, fmt.Errorf("retention cut short, partitions not marked dropped were left: %w", err)
	}
	if len(failed) > 0 {
		return expired, &RetentionError{Failed: failed}
	}
	return expired, nil
}

// expired lists the partitions of retentionTables in db (read from parts:
// system.parts, or a cluster's) that are older than their table's limit.
func (w *Warehouse) expired(ctx context.Context, db, parts string, now time.Time, o RetentionOptions) ([]Partition, error) {
	names := make([]string, len(retentionTables))
	for i, rt := range retentionTables {
		names[i] = "'" + Partition{Table: rt.t, Summary: rt.summary}.Name() + "'"
	}
	rows, err := w.conn.Query(ctx, "SELECT table, partition, sum(rows), sum(bytes_on_disk) FROM "+parts+
		" WHERE active AND database = ? AND table IN ("+strings.Join(names, ", ")+") GROUP BY table, partition ORDER BY table, partition", db)
	if err != nil {
		return nil, fmt.Errorf("cannot list the partitions of %s: %w", db, err)
	}
	defer rows.Close()
	found := map[string][]Partition{}
	for rows.Next() {
		var (
			table, id   string
			nrows, size uint64
		)
		if err := rows.Scan(&table, &id, &nrows, &size); err != nil {
			return nil, fmt.Errorf("cannot list the partitions of %s: %w", db, err)
		}
		m, err := strconv.Atoi(id)
		if err != nil || m < 197001 || m%100 < 1 || m%100 > 12 {
			return nil, fmt.Errorf("%s.%s has partition %q, not a month YYYYMM", db, table, id)
		}
		end := time.Date(m/100, time.Month(m%100)+1, 1, 0, 0, 0, 0, time.UTC)
		found[table] = append(found[table], Partition{Database: db, Month: Month(m), End: end, Rows: nrows, Bytes: size})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list the partitions of %s: %w", db, err)
	}
	var out []Partition
	for _, rt := range retentionTables {
		keep := o.KeepHours
		if rt.t == Minute {
			keep = o.KeepMinutes
		}
		horizon := now.Add(-keep)
		for _, p := range found[Partition{Table: rt.t, Summary: rt.summary}.Name()] { // by month: YYYYMM sorts as text
			if !p.End.After(horizon) {
				p.Table, p.Summary = rt.t, rt.summary
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// TableSize is the size of one table's active parts.
type TableSize struct {
	Database, Table string
	Rows, Bytes     uint64
}

// UpgradeCopies lists the copies of the rollups that upgrades kept and that
// still hold data: usage_1m_v1 … usage_1d_v1 (migration 0003) and
// usage_1m_v4 … usage_1d_v4 (0007), renamed before their data was copied
// into the new tables, to be dropped by hand once the upgrade is verified.
// Retention never drops them. On a cluster it looks in the database and
// its shard-local one on the member it is connected to.
func (w *Warehouse) UpgradeCopies(ctx context.Context) ([]TableSize, error) {
	rows, err := w.conn.Query(ctx, "SELECT database, table, sum(rows), sum(bytes_on_disk) FROM system.parts"+
		" WHERE active AND database IN (?, ?) AND match(table, '^usage_1[mhd]_v[0-9]+$') GROUP BY database, table ORDER BY database, table",
		w.database, LocalDatabase(w.database))
	if err != nil {
		return nil, fmt.Errorf("cannot list the upgrade copies of the rollups in %s: %w", w.database, err)
	}
	defer rows.Close()
	var out []TableSize
	for rows.Next() {
		var s TableSize
		if err := rows.Scan(&s.Database, &s.Table, &s.Rows, &s.Bytes); err != nil {
			return nil, fmt.Errorf("cannot list the upgrade copies of the rollups in %s: %w", w.database, err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
