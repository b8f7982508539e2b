// Package clickhouse holds costpipe's ClickHouse DDL as versioned migrations,
// embedded into the binary. Files are named NNNN_description.sql and applied in
// version order by warehouse.Migrate; {database} in a file is replaced by the
// target database. A migration, once released, is never edited: add a new one.
//
// The SQL must run on ClickHouse 18.16 (tested in CI) and on current releases:
// no DateTime64, Map, SimpleAggregateFunction, TTL or CODEC.
//
// Every statement must be safe to run again (IF [NOT] EXISTS, or a step that
// redoes its work from scratch): a migration interrupted halfway is run again
// from its first statement. A statement that cannot be repeated, such as a
// RENAME, is guarded by a comment line right before it naming a query,
//
//	-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_1m_v1'
//
// and runs only when that query's first value (a UInt8) is 1.
package clickhouse

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

//go:embed *.sql
var files embed.FS

// Migration is one versioned DDL file.
type Migration struct {
	Version int    // from the file name prefix, e.g. 1 for 0001_usage_rollups.sql
	Name    string // file name without the .sql suffix
	SQL     string // raw file content, {database} not yet replaced
}

// Statement is one statement of a migration.
type Statement struct {
	SQL string
	// OnlyIf is a query returning one UInt8: run the statement only when it
	// is 1. Empty for unguarded statements.
	OnlyIf string
}

// guardPrefix starts a comment line guarding the next statement.
const guardPrefix = "-- costpipe:only-if "

// Steps returns the migration's statements for database db, split on
// semicolons that end a line, with comment-only lines removed and guards
// attached to the statement they precede.
func (m Migration) Steps(db string) []Statement {
	var out []Statement
	var cur strings.Builder
	guard := ""
	for _, line := range strings.Split(strings.ReplaceAll(m.SQL, "{database}", db), "\n") {
		trimmed := strings.TrimSpace(line)
		if g, ok := strings.CutPrefix(trimmed, guardPrefix); ok {
			guard = strings.TrimSpace(g)
			continue
		}
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			stmt := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")
			out = append(out, Statement{SQL: stmt, OnlyIf: guard})
			cur.Reset()
			guard = ""
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, Statement{SQL: s, OnlyIf: guard})
	}
	return out
}

// Statements returns the SQL of Steps.
func (m Migration) Statements(db string) []string {
	steps := m.Steps(db)
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.SQL
	}
	return out
}

// Migrations returns every embedded migration in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("cannot list embedded migrations: %w", err)
	}
	var ms []Migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		prefix, _, ok := strings.Cut(name, "_")
		if !ok {
			return nil, fmt.Errorf("migration file %q: want NNNN_description.sql", name)
		}
		v, err := strconv.Atoi(prefix)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %q: cannot parse version %q", name, prefix)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migration files %q and %q share version %d", other, name, v)
		}
		seen[v] = name
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("cannot read migration %q: %w", name, err)
		}
		ms = append(ms, Migration{Version: v, Name: strings.TrimSuffix(name, ".sql"), SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}
