package clickhouse

import (
	"strings"
	"testing"
)

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
			for _, banned := range []string{"DateTime64", "Map(", "SimpleAggregateFunction", " TTL "} {
				if strings.Contains(s, banned) {
					t.Errorf("migration %q uses %s, which ClickHouse 18.16 lacks", m.Name, banned)
				}
			}
		}
	}
	// 0001 creates three granularities with input, view and table each.
	if got := len(ms[0].Statements("db")); got != 9 {
		t.Errorf("0001 has %d statements, want 9", got)
	}
}
