package main

import (
	"strings"
	"testing"
)

// The group membership flags are checked before anything connects, with
// the bad value quoted; each has its environment variable.
func TestAggregateRefusesBadGroupFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"--instance-id", "pod 0"}, `--instance-id "pod 0" must be at most 249 characters of ASCII letters, digits`},
		{[]string{"COSTPIPE_INSTANCE_ID=a/b"}, nil, `--instance-id "a/b"`},
		{nil, []string{"--heartbeat-interval", "20s"}, "--heartbeat-interval 20s must be between 100ms and a third of --session-timeout 45s"},
		{[]string{"COSTPIPE_GROUP_LAG_INTERVAL=1ms"}, nil, "--group-lag-interval 1ms is below 100ms"},
		{nil, []string{"--stall-timeout", "10s"}, "--stall-timeout 10s must exceed --flush-interval 5s plus --group-lag-interval 15s"},
	} {
		r := run(t, "", tc.env, append([]string{"--brokers", "127.0.0.1:1", "--clickhouse", "clickhouse://127.0.0.1:1/x", "aggregate"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("aggregate %v (env %v): exit %d, stderr %q; want exit 2 naming %q", tc.args, tc.env, r.code, r.stderr, tc.want)
		}
	}
}
