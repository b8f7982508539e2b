package warehouse

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// RetentionOptions configure Retention.
type RetentionOptions struct {
	// KeepMinutes is how long usage_1m keeps a month: its partition is
	// dropped once the whole month is older than this. Default 35 days.
	KeepMinutes time.Duration
	// KeepHours is the same for usage_1h. Default 400 days. usage_1d is
	// kept forever.
	KeepHours time.Duration
	// MaxEventAge is the aggregators' --max-event-age (default 7 days):
	// KeepMinutes and KeepHours must not be shorter, or a late event could
	// land into a month already dropped, without its landing mark.
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
	case o.KeepMinutes < o.MaxEventAge:
		return fmt.Errorf("cannot keep minutes for %s: shorter than the aggregators' max event age %s, "+
			"a late event could land into a dropped month", o.KeepMinutes, o.MaxEventAge)
	case o.KeepHours < o.KeepMinutes:
		return fmt.Errorf("cannot keep hours for %s, less than minutes (%s): queries read whole hours from usage_1h", o.KeepHours, o.KeepMinutes)
	}
	return nil
}

// Partition is one month partition of a rollup table that Retention found
// expired.
type Partition struct {
	Table Table
	Month Month
	// End is the first instant after the month (UTC): every row is older.
	End   time.Time
	Rows  uint64
	Bytes uint64
	// Dropped is true once ALTER TABLE … DROP PARTITION succeeded (false
	// in a dry run).
	Dropped bool
}

// Retention drops the month partitions of usage_1m older than KeepMinutes
// and of usage_1h older than KeepHours (a month goes when its last second
// is older than the limit; usage_1d is never touched), and the same months
// of usage_model_1h (the per-model summary of hours), with ALTER TABLE …
// DROP PARTITION, which 18.16 and current servers run alike. It returns the
// expired partitions in table and month order, marked Dropped as they go;
// on error, those before the failing one are dropped.
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
	var out []Partition
	for _, c := range []struct {
		t    Table
		keep time.Duration
	}{{Minute, o.KeepMinutes}, {Hour, o.KeepHours}} {
		horizon := now.Add(-c.keep)
		rows, err := w.conn.Query(ctx, "SELECT partition, sum(rows), sum(bytes_on_disk) FROM "+parts+" WHERE active AND database = ? AND table = ? GROUP BY partition ORDER BY partition",
			db, c.t.Name())
		if err != nil {
			return out, fmt.Errorf("cannot list the partitions of %s.%s: %w", db, c.t.Name(), err)
		}
		var expired []Partition
		for rows.Next() {
			var (
				id          string
				nrows, size uint64
			)
			if err := rows.Scan(&id, &nrows, &size); err != nil {
				rows.Close()
				return out, fmt.Errorf("cannot list the partitions of %s.%s: %w", db, c.t.Name(), err)
			}
			m, err := strconv.Atoi(id)
			if err != nil || m < 197001 || m%100 < 1 || m%100 > 12 {
				rows.Close()
				return out, fmt.Errorf("%s.%s has partition %q, not a month YYYYMM", db, c.t.Name(), id)
			}
			end := time.Date(m/100, time.Month(m%100)+1, 1, 0, 0, 0, 0, time.UTC)
			if !end.After(horizon) {
				expired = append(expired, Partition{Table: c.t, Month: Month(m), End: end, Rows: nrows, Bytes: size})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return out, fmt.Errorf("cannot list the partitions of %s.%s: %w", db, c.t.Name(), err)
		}
		for _, p := range expired {
			if !o.DryRun {
				// The summary's month first: a summary that lacks a month
				// its rollup still has is noticed by readers and not used;
				// the opposite would be too, but reads older than the
				// rollups' retention are not expected at all.
				names := []string{c.t.Name()}
				if c.t.HasSummary() {
					names = []string{c.t.ModelName(), c.t.Name()}
				}
				for _, name := range names {
					if err := w.exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s%s DROP PARTITION %d", db, name, on, p.Month)); err != nil {
						return out, fmt.Errorf("cannot drop partition %d of %s.%s: %w", p.Month, db, name, err)
					}
				}
				p.Dropped = true
			}
			out = append(out, p)
		}
	}
	return out, nil
}
