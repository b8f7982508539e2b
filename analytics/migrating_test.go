package analytics

import (
	"fmt"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// The error CI saw when alerts run started beside an aggregator creating
// the tables ("cannot read the schema version of database …: code: 60,
// message: Table ….usage_1d_input doesn't exist"): a migration in
// progress, to wait for, not a failure.
func TestMigratingErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&clickhouse.Exception{Code: 60, Message: "Table test_bd86.usage_1d_input doesn't exist."}, true},
		{fmt.Errorf("reading: %w", &clickhouse.Exception{Code: 60}), true},
		{&clickhouse.Exception{Code: 81, Message: "Database test_x doesn't exist"}, true},
		{&clickhouse.Exception{Code: 241, Message: "Memory limit exceeded"}, false},
		{fmt.Errorf("dial tcp: connection refused"), false},
	} {
		if got := migrating(tc.err); got != tc.want {
			t.Errorf("migrating(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
