package warehouse

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Per-model summaries (migrations 0009 and 0010; docs/design.md, "Two-stage
// merges, and per-model summaries"). usage_model_1h, usage_model_1d and
// usage_model_1w hold the rollups' measures per bucket, provider and model
// only: no tenant, application, error type, tier, band or Kafka partition.
// A month of days is about 1,100 rows instead of 27,000, so a question that
// groups and filters by provider and model only (`query usage --by model`)
// merges a twentieth of the histogram entries; its whole weeks are a
// seventh of that again (usage_model_1w: usage_1d's days per ISO week).
//
// Each is fed by a materialized view on its rollup's input table (the
// weekly one on usage_1d's), so every insert (the aggregator's, reprice's
// corrections) reaches all of them. The views are parts written one after
// the other, not one transaction: a server that dies between them, or a
// view that fails after another committed, leaves a summary that disagrees
// with its rollup. Readers therefore use a summary only after checking it
// (analytics.Querier compares the requests and cost of the range in both);
// the rollups, which carry the landing marks, stay the truth.

// SummaryTables are the buckets that have a per-model summary: hours and
// days, each from its rollup, and weeks, from the days (Week). usage_1m has
// none: a range reads at most two hours of minutes (its ragged ends), which
// its own rows answer quickly, while a summary of minutes would add half as
// much again to the rollups' storage.
var SummaryTables = [...]Table{Hour, Day, Week}

// HasSummary reports whether t is one of SummaryTables.
func (t Table) HasSummary() bool { return slices.Contains(SummaryTables[:], t) }

// ModelName is t's per-model summary table, e.g. "usage_model_1h".
func (t Table) ModelName() string { return "usage_model_" + strings.TrimPrefix(t.Name(), "usage_") }

// SummaryName is the table a per-model question reads for t: its summary,
// or t itself when it has none.
func (t Table) SummaryName() string {
	if t.HasSummary() {
		return t.ModelName()
	}
	return t.Name()
}

// ModelMVName is the materialized view from the input table of t's Rollup
// to ModelName.
func (t Table) ModelMVName() string { return t.ModelName() + "_mv" + inputVersion }

// modelKeys are the key columns the summaries keep, in table order.
var modelKeys = []string{"ts", "provider", "model"}

// ModelDims are the dimensions a summary can be grouped and filtered by.
func ModelDims() []string { return append([]string(nil), modelKeys[1:]...) }

// ModelSortKey is the ORDER BY of t's summary: the time bucket that leads
// t's own sort key, then provider, model and ts.
func (t Table) ModelSortKey() string {
	k := strings.Join(ModelDims(), ", ") + ", ts"
	if f := t.keyTimeFunc(); f != "" {
		return f + "(ts), " + k
	}
	return k
}

// modelMeasures are the measures a summary holds: all but the landing mark.
func modelMeasures() []measure {
	var out []measure
	for _, m := range measures {
		if !m.mark {
			out = append(out, m)
		}
	}
	return out
}

// ModelColumns returns the columns of t's summary as DESCRIBE TABLE reports
// them: ts, provider, model, then the measures' states, with histogram
// counts of UInt64 in every table (a bucket summed over every tenant of a
// busy model must not wrap).
func ModelColumns(t Table) []Column {
	var out []Column
	for _, name := range modelKeys {
		for _, k := range keyColumns {
			if k.Name == name {
				out = append(out, k.Column)
			}
		}
	}
	for _, m := range modelMeasures() {
		if m.hist() {
			out = append(out, Column{m.name + "Map.idx", "Array(Int16)"}, Column{m.name + "Map.cnt", "Array(UInt64)"})
			continue
		}
		out = append(out, m.stateColumns(t)...)
	}
	return out
}

// ModelMVSelect is the SELECT of t's summary view from its rollup's input
// table in database db: each inserted block merged per bucket, provider and
// model.
func ModelMVSelect(db string, t Table) string {
	return modelSelect(db+"."+t.Rollup().InputName(), t, "Map.", func(m measure) (state, idx, cnt string) {
		if m.hist() {
			return "", m.inputs[0].Name, m.inputs[1].Name
		}
		return m.fn + "State(" + m.inputs[0].Name + ")", "", ""
	})
}

// ModelFillSelect is the SELECT filling t's summary from its rollup in
// database db (migrations 0009 and 0010 run it once, before the views
// exist).
func ModelFillSelect(db string, t Table) string { return modelFill(db, t, "") }

// modelFill is ModelFillSelect of the rollup rows matching where (none: "").
func modelFill(db string, t Table, where string) string {
	from := db + "." + t.Rollup().Name()
	if where != "" {
		from += "\nWHERE " + where
	}
	return modelSelect(from, t, "_", func(m measure) (state, idx, cnt string) {
		if m.hist() {
			return "", m.name + "Map.idx", WidenCounts(m.name + "Map.cnt")
		}
		return m.fn + "MergeState(" + m.name + ")", "", ""
	})
}

// modelSelect groups from by t's summary keys; expr gives a measure's
// state expression, or a histogram's index and count arrays to sumMap. A
// histogram's merged arrays are named name+sep+"idx" and name+sep+"cnt":
// the view needs the summary's names ("Map."); the fill, whose INSERT
// lists the columns, must not alias its source's columns ("_"). The week
// summary's ts is the Monday of its rows' days (weekStart).
func modelSelect(from string, t Table, sep string, expr func(m measure) (state, idx, cnt string)) string {
	var b strings.Builder
	keys := strings.Join(modelKeys, ", ")
	if t == Week {
		keys = strings.Replace(keys, "ts", weekStart+" AS ts", 1)
	}
	b.WriteString("SELECT " + keys)
	for _, m := range modelMeasures() {
		state, idx, cnt := expr(m)
		if m.hist() {
			sm := "sumMap(" + idx + ", " + cnt + ")"
			b.WriteString(",\n    " + sm + ".1 AS `" + m.name + sep + "idx`, " + sm + ".2 AS `" + m.name + sep + "cnt`")
			continue
		}
		b.WriteString(",\n    " + state + " AS " + m.name)
	}
	b.WriteString("\nFROM " + from + "\nGROUP BY " + strings.Join(modelKeys, ", "))
	return b.String()
}

// weekStart is the Monday 00:00 UTC of the week holding ts, a DateTime('UTC')
// (toMonday takes the column's time zone, UTC, whatever the server's).
const weekStart = "toDateTime(toMonday(ts), 'UTC')"

// partitionOf is the expression of the summary partition (YYYYMM) that a
// row of t's rollup with time ts belongs to: its own month, or for the
// weekly summary the month of its week's Monday (the days of a week that
// begins in one month and ends in the next are one row, in the first).
// In the fill's WHERE (modelFill) ts names the SELECT's alias, the week's
// Monday, when it is the weekly one: the same month, for the Monday of a
// Monday is itself. A bound on the days themselves would have to be
// written against the rollup in a subquery.
func (t Table) partitionOf() string {
	if t == Week {
		return "toYYYYMM(" + weekStart + ")"
	}
	return "toYYYYMM(ts)"
}

// Rebuilt is one month of one summary that RebuildSummaries refilled.
type Rebuilt struct {
	Table Table
	Month Month
	// Shard is the shard's number on a cluster (1, 2, …), 0 on a single server.
	Shard int
	// Took is how long the drop and the fill took.
	Took time.Duration
}

// RebuildSummaries refills the per-model summaries from their rollups,
// month by month: each month partition of a summary is dropped and filled
// again from the same month of its rollup (the weekly summary's from the
// days of the weeks that begin in that month), as migrations 0009 and 0010
// filled them.
// On a cluster it runs on one replica of every shard (every member must be
// up). progress, when not nil, is called after each month.
//
// Inserts landing in a month while it is rebuilt can be missed by the
// summary (they reach it through its view, into the partition the rebuild
// then drops) or counted twice: stop the aggregators first, or rebuild
// when they are quiet and rerun if readers still report a difference.
// Past months that receive no inserts are rebuilt exactly either way (a
// weekly partition takes inserts until its last week ends, up to six days
// into the next month).
func (w *Warehouse) RebuildSummaries(ctx context.Context, progress func(Rebuilt)) ([]Rebuilt, error) {
	cluster, err := w.ClusterOf(ctx)
	if err != nil {
		return nil, err
	}
	// Connections that wait as long as a fill takes (ctx still bounds it):
	// to the server itself, or to one replica of every shard.
	opts, _, err := parseDSN(w.dsn)
	if err != nil {
		return nil, err
	}
	addrs, db := opts.Addr[:1], w.database
	if cluster != "" {
		topo, err := w.Topology(ctx, cluster)
		if err != nil {
			return nil, err
		}
		addrs, db = nil, LocalDatabase(w.database)
		for _, shard := range topo.Shards {
			addrs = append(addrs, shard[0])
		}
	}
	o := DefaultOptions()
	o.DSN, o.TLS, o.MaxOpenConns = w.dsn, w.tls, 1
	var targets []*Warehouse
	defer func() {
		for _, t := range targets {
			t.Close()
		}
	}()
	for _, addr := range addrs {
		sw, err := openAtWith(ctx, o, addr, db, migrationReadTimeout)
		if err != nil {
			return nil, fmt.Errorf("cannot rebuild the summaries (every shard needs a replica up): %w", err)
		}
		targets = append(targets, sw)
	}
	var out []Rebuilt
	for i, sw := range targets {
		shard := 0
		if cluster != "" {
			shard = i + 1
			// The fill reads this replica's rollups: first fetch every part
			// its shard's other replicas have (a copy made through another
			// member, the landing of the last minutes).
			if err := sw.syncRollups(ctx, sw.database); err != nil {
				return out, fmt.Errorf("cannot rebuild the summaries of shard %d: %w", shard, err)
			}
		}
		for _, t := range SummaryTables {
			// The rollup's months (for weeks: those of the weeks' Mondays,
			// weekMonths), and any the summary has beyond them.
			var months []Month
			if t == Week {
				months, err = weekMonths(ctx, sw)
			} else {
				months, err = partitionsOf(ctx, sw, sw.database, t.Rollup().Name())
			}
			if err != nil {
				return out, err
			}
			extra, err := partitionsOf(ctx, sw, sw.database, t.ModelName())
			if err != nil {
				return out, err
			}
			months = append(months, extra...)
			slices.Sort(months)
			for _, m := range slices.Compact(months) {
				start := time.Now()
				if err := sw.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION %d", sw.database, t.ModelName(), m)); err != nil {
					return out, fmt.Errorf("cannot empty month %d of %s.%s: %w", m, sw.database, t.ModelName(), err)
				}
				q := "INSERT INTO " + sw.database + "." + t.ModelName() + " (" + columnList(ModelColumns(t)) + ")\n" +
					modelFill(sw.database, t, fmt.Sprintf("%s = %d", t.partitionOf(), m))
				if err := sw.conn.Exec(NoDeduplication(ctx), q); err != nil {
					return out, fmt.Errorf("cannot fill month %d of %s.%s: %w", m, sw.database, t.ModelName(), err)
				}
				r := Rebuilt{Table: t, Month: m, Shard: shard, Took: time.Since(start)}
				out = append(out, r)
				if progress != nil {
					progress(r)
				}
			}
		}
	}
	return out, nil
}

// weekMonths lists the partitions of usage_model_1w that the days of w's
// usage_1d fill: the months of their weeks' Mondays.
func weekMonths(ctx context.Context, w *Warehouse) ([]Month, error) {
	rows, err := w.conn.Query(ctx, "SELECT DISTINCT toUInt32("+Week.partitionOf()+") AS m FROM "+w.database+"."+Day.Name()+" ORDER BY m")
	if err != nil {
		return nil, fmt.Errorf("cannot list the weeks of %s.%s: %w", w.database, Day.Name(), err)
	}
	defer rows.Close()
	var out []Month
	for rows.Next() {
		var m uint32
		if err := rows.Scan(&m); err != nil {
			return nil, fmt.Errorf("cannot list the weeks of %s.%s: %w", w.database, Day.Name(), err)
		}
		out = append(out, Month(m))
	}
	return out, rows.Err()
}

// partitionsOf lists the month partitions of db.table on w's server, in
// order.
func partitionsOf(ctx context.Context, w *Warehouse, db, table string) ([]Month, error) {
	rows, err := w.conn.Query(ctx, "SELECT DISTINCT partition FROM system.parts WHERE database = ? AND table = ? AND active ORDER BY partition", db, table)
	if err != nil {
		return nil, fmt.Errorf("cannot list the partitions of %s.%s: %w", db, table, err)
	}
	defer rows.Close()
	var out []Month
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("cannot list the partitions of %s.%s: %w", db, table, err)
		}
		var m int
		if _, err := fmt.Sscanf(p, "%d", &m); err != nil || m < 197001 || m%100 < 1 || m%100 > 12 {
			return nil, fmt.Errorf("%s.%s has partition %q, not a month YYYYMM", db, table, p)
		}
		out = append(out, Month(m))
	}
	return out, rows.Err()
}

// columnList is "ts, provider, …".
func columnList(cols []Column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}
