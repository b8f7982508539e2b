package main

import (
	"strings"
	"testing"
)

func TestQueryGrowthForecastUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"growth", "--metric", "dollars"}, `invalid --metric: unknown metric "dollars"`},
		{[]string{"growth", "--tz", "Mars/Olympus"}, `invalid --tz "Mars/Olympus"`},
		{[]string{"growth", "--tz", "Local"}, `want an IANA zone name`},
		{[]string{"growth", "--format", "xml"}, `invalid --format "xml"`},
		{[]string{"growth", "--by", "region"}, `invalid --by dimension "region"`},
		{[]string{"growth", "--at", "yesterday"}, `invalid --at`},
		{[]string{"growth", "extra"}, `query growth takes no arguments, got "extra"`},
		{[]string{"forecast", "--period", "year"}, `invalid --period: unknown period "year"`},
		{[]string{"forecast", "--budget", "-5"}, `invalid --budget -5`},
		{[]string{"forecast", "--horizon", "400"}, `invalid --horizon 400`},
		{[]string{"forecast", "--horizon", "7", "--period", "week"}, `mutually exclusive`},
		{[]string{"forecast", "--horizon", "169h"}, `invalid --horizon 169h: want 1h to 168h`},
		{[]string{"forecast", "--horizon", "2w"}, `invalid --horizon 2w: want N days`},
		{[]string{"forecast", "--horizon", "24h", "--budget", "10"}, `--budget applies to a calendar period`},
	} {
		r := run(t, "", nil, append([]string{"--clickhouse", "clickhouse://127.0.0.1:1/none", "query"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
