package clickhouse

import (
	"regexp"
	"strings"
	"testing"
)

// banned are what ClickHouse 18.16 lacks (Map as a type, not arrayMap).
var banned = regexp.MustCompile(`DateTime64|(^|[^A-Za-z])Map\(|SimpleAggregateFunction| TTL |CODEC\(`)

func TestMigrationsParse(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Version != 1 {
		t.Fatalf("want migrations starting at version 1, got %+v", ms)
	}
	for i, m := range ms {
		if m.Version != i+1 {
			t.Errorf("migration %q: version %d, want %d (no gaps)", m.Name, m.Version, i+1)
		}
		stmts := m.Statements("costpipe_x")
		if len(stmts) == 0 {
			t.Errorf("migration %q has no statements", m.Name)
		}
		for _, s := range stmts {
			if strings.Contains(s, "{database}") {
				t.Errorf("migration %q: placeholder left in %q", m.Name, s)
			}
			if strings.HasSuffix(s, ";") {
				t.Errorf("migration %q: statement keeps its semicolon: %q", m.Name, s)
			}
			if b := banned.FindString(s); b != "" {
				t.Errorf("migration %q uses %s, which ClickHouse 18.16 lacks", m.Name, b)
			}
		}
	}
	// 0001 creates three granularities with input, view and table each.
	if got := len(ms[0].Statements("db")); got != 9 {
		t.Errorf("0001 has %d statements, want 9", got)
	}
}

func TestStepsGuards(t *testing.T) {
	m := Migration{SQL: `-- a comment
DROP TABLE IF EXISTS {database}.a;
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'b_v1'
RENAME TABLE {database}.b
    TO {database}.b_v1;
SELECT 1`}
	got := m.Steps("db")
	want := []Statement{
		{SQL: "DROP TABLE IF EXISTS db.a"},
		{SQL: "RENAME TABLE db.b\n    TO db.b_v1", OnlyIf: "SELECT count() = 0 FROM system.tables WHERE database = 'db' AND name = 'b_v1'"},
		{SQL: "SELECT 1"},
	}
	if len(got) != len(want) {
		t.Fatalf("Steps = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if !banned.MatchString("x Map(String, UInt64)") || banned.MatchString("arrayMap(x -> x, a)") {
		t.Error("banned does not tell the Map type from arrayMap")
	}
}
