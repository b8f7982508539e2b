package warehouse

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
)

// Describe returns the columns of db.table as DESCRIBE TABLE reports them.
func (w *Warehouse) Describe(ctx context.Context, table string) ([]Column, error) {
	rows, err := w.conn.Query(ctx, "DESCRIBE TABLE "+w.database+"."+table)
	if err != nil {
		return nil, fmt.Errorf("cannot describe %s.%s: %w", w.database, table, err)
	}
	defer rows.Close()
	var out []Column
	n := len(rows.Columns()) // name, type, default_type, default_expression, … (more on newer servers)
	for rows.Next() {
		vals := make([]any, n)
		strs := make([]string, n)
		for i := range vals {
			vals[i] = &strs[i]
		}
		if err := rows.Scan(vals...); err != nil {
			return nil, fmt.Errorf("cannot describe %s.%s: %w", w.database, table, err)
		}
		out = append(out, Column{Name: strs[0], Type: strs[1]})
	}
	return out, rows.Err()
}

// CheckSchema compares the rollup tables, their per-model summaries, their
// input tables and views with the columns declared in columns.go and
// summaries.go (TableColumns, ModelColumns, InputColumns) and
// reports the first difference: a server whose tables were changed by hand,
// or a binary newer than the database's migrations.
func (w *Warehouse) CheckSchema(ctx context.Context) error {
	return w.checkTables(ctx, true)
}

// checkTables is CheckSchema, of the rollup and summary tables only
// without withInputs (a cluster's Distributed tables have no input tables).
func (w *Warehouse) checkTables(ctx context.Context, withInputs bool) error {
	type check struct {
		table string
		want  []Column
	}
	var checks []check
	for _, t := range Tables {
		checks = append(checks, check{t.Name(), TableColumns(t)})
		if withInputs {
			checks = append(checks, check{t.InputName(), InputColumns()}, check{t.MVName(), StoredColumns(t)})
		}
	}
	for _, t := range SummaryTables {
		checks = append(checks, check{t.ModelName(), ModelColumns(t)})
		if withInputs {
			checks = append(checks, check{t.ModelMVName(), ModelColumns(t)})
		}
	}
	for _, c := range checks {
		got, err := w.Describe(ctx, c.table)
		if err != nil {
			return err
		}
		if err := diffColumns(got, c.want); err != nil {
			fix := "run costpipe migrate"
			if newest, known := w.newerMigration(ctx); newest > known {
				fix = fmt.Sprintf("the database has migrations this costpipe does not know, up to %04d where it knows up to %04d: "+
					"run the costpipe version that applied them", newest, known)
			}
			return fmt.Errorf("%s.%s does not have the columns this costpipe expects (%s): %w", w.database, c.table, fix, err)
		}
	}
	return nil
}

// diffColumns describes the first difference between got and want.
func diffColumns(got, want []Column) error {
	for i := 0; i < max(len(got), len(want)); i++ {
		switch {
		case i >= len(got):
			return fmt.Errorf("column %d %s %s is missing", i+1, want[i].Name, want[i].Type)
		case i >= len(want):
			return fmt.Errorf("unexpected column %d %s %s", i+1, got[i].Name, got[i].Type)
		case got[i].Name != want[i].Name || normType(got[i].Type) != normType(want[i].Type):
			return fmt.Errorf("column %d is %s %s, want %s %s", i+1, got[i].Name, got[i].Type, want[i].Name, want[i].Type)
		}
	}
	return nil
}

// aggVersion is the state version newer servers may print,
// "AggregateFunction(1, sumMap, …)".
var aggVersion = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`AggregateFunction\(\d+,`) })

// normType removes what servers print differently in type names: spaces
// ("Decimal(38, 12)") and aggregate state versions.
func normType(t string) string {
	return aggVersion().ReplaceAllString(strings.ReplaceAll(t, " ", ""), "AggregateFunction(")
}

// newerMigration returns the newest migration version the database
// records and the newest this binary embeds (0, 0 when either cannot be
// read): a database migrated by a newer costpipe has the first above the
// second.
func (w *Warehouse) newerMigration(ctx context.Context) (newest, known int) {
	applied, err := w.applied(ctx)
	if err != nil {
		return 0, 0
	}
	_, known, err = migrationsUpTo(math.MaxInt)
	if err != nil {
		return 0, 0
	}
	for v := range applied {
		newest = max(newest, v)
	}
	return newest, known
}
