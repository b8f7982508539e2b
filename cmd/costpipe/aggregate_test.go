package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/costpipe/costpipe/warehouse"
)

// Options that cannot work together are refused before anything connects,
// with the flags named.
func TestAggregateRefusesTimeoutsThatOutlastTheRebalance(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--insert-timeout", "45s"}, "--insert-timeout 45s + --flush-timeout-on-rebalance 20s must be below --rebalance-timeout 1m0s"},
		{[]string{"--insert-timeout", "0s"}, "invalid --insert-timeout 0s: want at least 1s"},
		{[]string{"--flush-timeout-on-rebalance", "70s"}, "flush timeout on rebalance 1m10s must be > 0 and below the rebalance timeout 1m0s"},
		{[]string{"--dlq-spool", ""}, "empty DLQ spool directory"},
	} {
		r := run(t, "", nil, append([]string{"--brokers", "127.0.0.1:1", "--clickhouse", "clickhouse://127.0.0.1:1/x", "aggregate"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("aggregate %v: exit %d, stderr %q; want exit 2 naming %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// TestLogMigrations: migrations applied at start are logged, and creating
// the tables from nothing is a warning (a typo in the DSN's database
// landed everything in a new database without a word).
func TestLogMigrations(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	logMigrations(log, "nodb", []warehouse.MigrationResult{{Version: 1, Name: "0001_a", Applied: true}, {Version: 2, Name: "0002_b", Applied: true}})
	logMigrations(log, "costpipe", []warehouse.MigrationResult{{Version: 1, Name: "0001_a"}, {Version: 2, Name: "0002_b", Applied: true}})
	logMigrations(log, "costpipe", []warehouse.MigrationResult{{Version: 1, Name: "0001_a"}})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `level=WARN msg="created the costpipe tables in a database that had none`) ||
		!strings.Contains(lines[0], "database=nodb migrations=2") ||
		!strings.Contains(lines[1], `level=INFO msg="applied migrations" database=costpipe migrations=0002_b`) {
		t.Errorf("log:\n%s", buf.String())
	}
}
