package main

import (
	"strings"
	"testing"
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
