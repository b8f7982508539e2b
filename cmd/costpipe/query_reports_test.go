package main

import (
	"encoding/csv"
	"encoding/json"
	"github.com/costpipe/costpipe/pipelines/sketch"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
)

// decodeJSON decodes an array of objects, numbers as json.Number.
func decodeJSON(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("not a JSON array of objects: %v\n%s", err, s)
	}
	return out
}

func num(t *testing.T, v any) float64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	f, err := n.Float64()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestQueryLatency: per model a latency and a ttft row with count, mean,
// min, max (exact) and p50 … p99.9 (within 1%); nulls where no call
// reported the duration; the table lines them up with a TOTAL.
func TestQueryLatency(t *testing.T) {
	t.Parallel()
	dsn := queryDB(t)
	args := []string{"--clickhouse", dsn, "query", "latency", "--from", "2026-01-15", "--to", "2026-01-16", "--by", "model"}
	r := run(t, "", nil, append(args, "--format", "json")...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	got := decodeJSON(t, r.stdout)
	if len(got) != 6 {
		t.Fatalf("%d rows, want a latency and a ttft row for each of 3 models:\n%s", len(got), r.stdout)
	}
	rows := map[string]map[string]any{}
	for _, o := range got {
		rows[o["model"].(string)+"/"+o["measure"].(string)] = o
	}
	// gpt-4o: latencies 100, 200, 3000 ms; TTFT 50 ms.
	lat := rows["gpt-4o/latency"]
	if lat == nil || num(t, lat["count"]) != 3 || num(t, lat["mean_ms"]) != 1100 || num(t, lat["min_ms"]) != sketch.Value(sketch.Index(100)) || num(t, lat["max_ms"]) != sketch.Value(sketch.Index(3000)) {
		t.Fatalf("gpt-4o latency = %v", lat)
	}
	for k, want := range map[string]float64{"p50_ms": 200, "p90_ms": 3000, "p95_ms": 3000, "p99_ms": 3000, "p999_ms": 3000} {
		if v := num(t, lat[k]); math.Abs(v-want) > 0.01*want {
			t.Errorf("gpt-4o latency %s = %v, want %v within 1%%", k, v, want)
		}
	}
	if ttft := rows["gpt-4o/ttft"]; num(t, ttft["count"]) != 1 || math.Abs(num(t, ttft["p999_ms"])-50) > 0.5 {
		t.Errorf("gpt-4o ttft = %v", ttft)
	}
	if none := rows["llama-local/latency"]; none == nil || num(t, none["count"]) != 0 || none["p999_ms"] != nil || none["mean_ms"] != nil {
		t.Errorf("llama-local reported no latency: %v, want count 0 and nulls", none)
	}

	r = run(t, "", nil, append(args, "--format", "csv")...)
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil || len(recs) != 7 || strings.Join(recs[0], ",") != "model,measure,count,mean_ms,min_ms,max_ms,p50_ms,p90_ms,p95_ms,p99_ms,p999_ms" {
		t.Fatalf("csv (%v):\n%s", err, r.stdout)
	}

	r = run(t, "", nil, args...)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if r.code != 0 || len(lines) != 12 || !strings.HasPrefix(lines[0], "latency and time to first token in [2026-01-15T00:00:00Z, 2026-01-16T00:00:00Z) by model") {
		t.Fatalf("table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if h := strings.Fields(lines[1]); strings.Join(h, " ") != "MODEL MEASURE COUNT MEAN MS MIN MS MAX MS P50 MS P90 MS P95 MS P99 MS P99.9 MS" {
		t.Errorf("header %q", lines[1])
	}
	for _, l := range lines[1:10] { // header, 6 rows, rule, TOTAL: right-aligned numbers end together
		if len(l) != len(lines[1]) {
			t.Errorf("not aligned:\n%s", r.stdout)
			break
		}
	}
	// max: the histogram's bucket of 3,000 ms, 3,011.57 (within 1%).
	if f := strings.Fields(lines[9]); f[0] != "TOTAL" || f[1] != "latency" || f[2] != "4" || f[5] != "3,012" {
		t.Errorf("TOTAL line %q", lines[9])
	}
	if f := strings.Fields(lines[10]); f[0] != "ttft" || f[1] != "1" {
		t.Errorf("TOTAL ttft line %q", lines[10])
	}
}

// TestQueryTop: groups ranked by the metric, exact cost, shares of the
// total summing to at most 100%, the rest in the table's OTHER line.
func TestQueryTop(t *testing.T) {
	t.Parallel()
	dsn := queryDB(t)
	base := []string{"--clickhouse", dsn, "query", "top", "--from", "2026-01-15", "--to", "2026-01-16"}

	// Requests by model: gpt-4o 3, then the tie claude-sonnet / llama-local
	// (1 each) by name; -n 2 leaves llama-local in the rest.
	r := run(t, "", nil, append(base, "--by", "model", "--metric", "requests", "-n", "2", "--format", "json")...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	got := decodeJSON(t, r.stdout)
	if len(got) != 2 || got[0]["model"] != "gpt-4o" || got[1]["model"] != "claude-sonnet" ||
		num(t, got[0]["requests"]) != 3 || num(t, got[0]["share"]) != 0.6 || num(t, got[1]["rank"]) != 2 ||
		num(t, got[1]["share"]) != 0.2 || math.Abs(num(t, got[1]["cumulative_share"])-0.8) > 1e-12 {
		t.Fatalf("top 2 models by requests:\n%s", r.stdout)
	}

	// Cost by tenant, every group: exact decimals; shares sum to ≤ 100%.
	r = run(t, "", nil, append(base, "--by", "tenant", "--format", "json")...)
	got = decodeJSON(t, r.stdout)
	sum := 0.0
	for _, o := range got {
		sum += num(t, o["share"])
	}
	if len(got) != 2 || got[0]["tenant"] != "o'hare" || got[0]["cost_usd"] != "1.500000000000" || got[1]["cost_usd"] != "0.000123456789" ||
		sum > 1+1e-12 || sum < 1-1e-12 {
		t.Errorf("top tenants by cost (shares sum to %v):\n%s", sum, r.stdout)
	}
	if s := num(t, got[0]["share"]); s != 1.5/1.500123456789 {
		t.Errorf("o'hare share %v, want %v", s, 1.5/1.500123456789)
	}

	r = run(t, "", nil, append(base, "--by", "model", "--metric", "requests", "-n", "2")...)
	want := "top model by requests in [2026-01-15T00:00:00Z, 2026-01-16T00:00:00Z)\n" +
		"#  MODEL          REQUESTS   SHARE  CUMULATIVE\n" +
		"1  gpt-4o                3   60.0%       60.0%\n" +
		"2  claude-sonnet         1   20.0%       80.0%\n" +
		"-  -------------  --------  ------  ----------\n" +
		"   OTHER                 1   20.0%\n" +
		"   TOTAL                 5  100.0%\n" +
		"the top 2 groups hold 80.0% of the total\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("table: exit %d\n%s\nwant\n%s%s", r.code, r.stdout, want, r.stderr)
	}

	r = run(t, "", nil, append(base, "--by", "tenant", "--format", "arrow")...)
	rd, err := ipc.NewReader(strings.NewReader(r.stdout))
	if err != nil {
		t.Fatalf("not an Arrow stream: %v (%s)", err, r.stderr)
	}
	defer rd.Release()
	if !rd.Next() || rd.Record().Schema().Field(2).Name != "cost_usd" ||
		rd.Record().Column(2).(*array.Decimal128).Value(1).ToString(12) != "0.000123456789" {
		t.Errorf("arrow: %v", rd.Err())
	}

	r = run(t, "", nil, append(base, "--by", "tenant", "--format", "csv", "--where", "tenant=nobody")...)
	if r.code != 0 || r.stdout != "rank,tenant,cost_usd,share,cumulative_share,unpriced_requests\n" {
		t.Errorf("no match: exit %d %q", r.code, r.stdout)
	}
}

// TestQuerySeries: a value per step, the steps without usage filled with
// zero; the range widened to whole steps; exact cost.
func TestQuerySeries(t *testing.T) {
	t.Parallel()
	dsn := queryDB(t)
	base := []string{"--clickhouse", dsn, "query", "series"}

	// Hours 08:00 … 11:00 by tenant: only 10:00 has usage.
	r := run(t, "", nil, append(base, "--from", "2026-01-15T08:30:00Z", "--to", "2026-01-15T11:10:00Z", "--by", "tenant", "--format", "json")...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	got := decodeJSON(t, r.stdout)
	if len(got) != 8 {
		t.Fatalf("%d rows, want 2 tenants × 4 hours:\n%s", len(got), r.stdout)
	}
	for i, want := range []struct{ tenant, ts, cost string }{
		{"o'hare", "2026-01-15T08:00:00Z", "0.000000000000"}, {"o'hare", "2026-01-15T09:00:00Z", "0.000000000000"},
		{"o'hare", "2026-01-15T10:00:00Z", "1.500000000000"}, {"o'hare", "2026-01-15T11:00:00Z", "0.000000000000"},
		{"acme", "2026-01-15T08:00:00Z", "0.000000000000"}, {"acme", "2026-01-15T09:00:00Z", "0.000000000000"},
		{"acme", "2026-01-15T10:00:00Z", "0.000123456789"}, {"acme", "2026-01-15T11:00:00Z", "0.000000000000"},
	} {
		if o := got[i]; o["tenant"] != want.tenant || o["ts"] != want.ts || o["cost_usd"] != want.cost {
			t.Errorf("row %d = %v, want %+v", i, o, want)
		}
	}

	// Minutes, requests, no groups: the empty minutes are there with 0.
	r = run(t, "", nil, append(base, "--from", "2026-01-15T10:40:00Z", "--to", "2026-01-15T10:44:00Z", "--step", "1m", "--metric", "requests", "--format", "csv")...)
	want := "ts,requests\n2026-01-15T10:40:00Z,0\n2026-01-15T10:41:00Z,0\n2026-01-15T10:42:00Z,5\n2026-01-15T10:43:00Z,0\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("minutes: exit %d\n%s\nwant\n%s%s", r.code, r.stdout, want, r.stderr)
	}

	// Days, tokens by model: a line per day, a column per model, TOTAL and TREND.
	r = run(t, "", nil, append(base, "--from", "2026-01-14", "--to", "2026-01-16", "--step", "1d", "--by", "model", "--metric", "tokens")...)
	want = "tokens per day in [2026-01-14T00:00:00Z, 2026-01-16T00:00:00Z) by model\n" +
		"DAY (UTC)   gpt-4o  claude-sonnet  llama-local  TOTAL\n" +
		"2026-01-14       0              0            0      0\n" +
		"2026-01-15   1,300             30            0  1,330\n" +
		"----------  ------  -------------  -----------  -----\n" +
		"TOTAL        1,300             30            0  1,330\n" +
		"TREND            █              █                   █\n" // a mark per day, the empty day blank
	if r.code != 0 || r.stdout != want {
		t.Errorf("days: exit %d\n%s\nwant\n%s%s", r.code, r.stdout, want, r.stderr)
	}

	r = run(t, "", nil, append(base, "--from", "2026-01-15T10:00:00Z", "--to", "2026-01-15T11:00:00Z", "--format", "arrow")...)
	rd, err := ipc.NewReader(strings.NewReader(r.stdout))
	if err != nil {
		t.Fatalf("not an Arrow stream: %v (%s)", err, r.stderr)
	}
	defer rd.Release()
	if !rd.Next() || rd.Record().Schema().String() != "schema:\n  fields: 2\n    - ts: type=timestamp[s, tz=UTC]\n    - cost_usd: type=decimal(38, 12)" ||
		rd.Record().Column(1).(*array.Decimal128).Value(0).ToString(12) != "1.500123456789" {
		t.Errorf("arrow: %v %v", rd.Err(), rd.Schema())
	}

	// A range without usage: every step there, with 0 (the help's promise),
	// in the table and in CSV.
	r = run(t, "", nil, append(base, "--from", "2025-01-01", "--to", "2025-01-02")...)
	if r.code != 0 || !strings.Contains(r.stdout, "2025-01-01 23:00") || !strings.Contains(r.stdout, "TOTAL") || strings.Count(r.stdout, "0.00") != 25 {
		t.Errorf("empty: exit %d %q", r.code, r.stdout)
	}
	r = run(t, "", nil, append(base, "--from", "2025-01-01", "--to", "2025-01-02", "--format", "csv")...)
	if r.code != 0 || strings.Count(r.stdout, "\n") != 25 || !strings.Contains(r.stdout, "2025-01-01T23:00:00Z,0") {
		t.Errorf("empty, csv: exit %d %q", r.code, r.stdout)
	}
}

// TestQueryGrowthArrow: growth and forecast have an Arrow format too, the
// daily values as a list.
func TestQueryGrowthArrow(t *testing.T) {
	t.Parallel()
	dsn := queryDB(t)
	r := run(t, "", nil, "--clickhouse", dsn, "query", "growth", "--at", "2026-01-16", "--by", "tenant", "--format", "arrow")
	rd, err := ipc.NewReader(strings.NewReader(r.stdout))
	if err != nil {
		t.Fatalf("growth: not an Arrow stream: %v (%s)", err, r.stderr)
	}
	defer rd.Release()
	if !rd.Next() || rd.Record().NumRows() != 2 {
		t.Fatalf("growth arrow: %v", rd.Err())
	}
	rec := rd.Record()
	daily := rec.Column(rec.Schema().FieldIndices("daily")[0]).(*array.List)
	if start, end := daily.ValueOffsets(0); end-start != 28 {
		t.Errorf("daily of o'hare has %d values, want 28", end-start)
	}
	r = run(t, "", nil, "--clickhouse", dsn, "query", "forecast", "--at", "2026-01-16T12:00:00Z", "--by", "tenant", "--history", "7", "--format", "arrow")
	rd2, err := ipc.NewReader(strings.NewReader(r.stdout))
	if err != nil {
		t.Fatalf("forecast: not an Arrow stream: %v (%s)", err, r.stderr)
	}
	defer rd2.Release()
	if !rd2.Next() || rd2.Record().Column(rd2.Schema().FieldIndices("to_date")[0]).(*array.Decimal128).Value(0).ToString(12) != "1.500000000000" {
		t.Errorf("forecast arrow: %v %v", rd2.Err(), rd2.Schema())
	}
}

// TestQueryReportsBadFlags needs no server: flags are checked first.
func TestQueryReportsBadFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"latency", "--format", "xml"}, `invalid --format "xml": want table, json, csv or arrow`},
		{[]string{"latency", "stray"}, `query latency takes no arguments, got "stray"`},
		{[]string{"top", "stray"}, `query top takes no arguments, got "stray"`},
		{[]string{"series", "stray"}, `query series takes no arguments, got "stray"`},
		{[]string{"forecast", "stray"}, `query forecast takes no arguments, got "stray"`},
		{[]string{"latency", "--by", "region"}, `invalid --by dimension "region"`},
		{[]string{"top"}, "query top needs --by"},
		{[]string{"top", "--by", "tenant", "-n", "0"}, "invalid --limit 0: want 1 to 100000"},
		{[]string{"top", "--by", "tenant", "--metric", "latency"}, `invalid --metric: unknown metric "latency"`},
		{[]string{"top", "--by", "tenant", "--from", "2026-01-02", "--to", "2026-01-01"}, "empty range"},
		{[]string{"series", "--step", "5m"}, `invalid --step: unknown step "5m": want 1m, 1h or 1d`},
		{[]string{"series", "--where", "tenant"}, `invalid --where "tenant"`},
		{[]string{"series", "--nope"}, "flag provided but not defined: --nope (see costpipe query series --help)"},
		{[]string{"growth", "--format", "parquet"}, `invalid --format "parquet": want table, json, csv or arrow`},
	} {
		r := run(t, "", nil, append([]string{"--clickhouse", "clickhouse://127.0.0.1:1/none", "query"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	// Too many steps is a usage error too, found by the query layer.
	dsn := queryDB(t)
	r := run(t, "", nil, "--clickhouse", dsn, "query", "series", "--since", "8d", "--step", "1m")
	if r.code != 2 || !strings.Contains(r.stderr, "a series has at most 10000 steps, not 11520 of 1m") {
		t.Errorf("8 days of minutes: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestQueryReportsHelp(t *testing.T) {
	t.Parallel()
	r := run(t, "", nil, "query", "--help")
	for _, c := range []string{"usage", "latency", "top", "series", "growth", "forecast"} {
		if !strings.Contains(r.stdout, "   "+c+" ") {
			t.Errorf("query --help lacks %s:\n%s", c, r.stdout)
		}
	}
	for _, c := range []string{"latency", "top", "series"} {
		r := run(t, "", nil, "query", c, "--help")
		if r.code != 0 || !regexp.MustCompile(`Examples:\n\s+costpipe query `+c+` --`).MatchString(r.stdout) ||
			!strings.Contains(r.stdout, "--clickhouse") || !strings.Contains(r.stdout, "--format FORMAT") {
			t.Errorf("query %s --help: exit %d\n%s", c, r.code, r.stdout)
		}
	}
}

// TestQueryLatencyStep: --step gives what the API's latency?step= gives:
// one row per step, group and measure, the step's start in ts, each
// step's percentiles those of a query over that step alone. A bad step or
// too many steps is a usage error worded as query series' and the API's,
// found before connecting.
func TestQueryLatencyStep(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--step", "5m"}, `invalid --step: unknown step "5m": want 1m, 1h or 1d`},
		{[]string{"--since", "9d", "--step", "1h"}, "invalid --step: more than 200 steps of latency: use a larger step or a shorter range"},
	} {
		r := run(t, "", nil, append([]string{"--clickhouse", "clickhouse://127.0.0.1:1/none", "query", "latency"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	dsn := queryDB(t)
	base := []string{"--clickhouse", dsn, "query", "latency", "--by", "model"}
	r := run(t, "", nil, append(base, "--from", "2026-01-15T09:00:00Z", "--to", "2026-01-15T12:00:00Z", "--step", "1h", "--format", "json")...)
	if r.code != 0 {
		t.Fatalf("--step 1h: exit %d: %s", r.code, r.stderr)
	}
	steps := decodeJSON(t, r.stdout)
	whole := decodeJSON(t, run(t, "", nil, append(base, "--from", "2026-01-15T10:00:00Z", "--to", "2026-01-15T11:00:00Z", "--format", "json")...).stdout)
	if len(steps) != 6 || len(whole) != 6 {
		t.Fatalf("%d rows per step, %d for the hour of usage; want 6 (only 10:00 has usage):\n%s", len(steps), len(whole), r.stdout)
	}
	for i, s := range steps {
		ts := s["ts"]
		delete(s, "ts")
		if ts != "2026-01-15T10:00:00Z" || !reflect.DeepEqual(s, whole[i]) {
			t.Errorf("row %d: ts %v %v, want 2026-01-15T10:00:00Z %v", i, ts, s, whole[i])
		}
	}
	r = run(t, "", nil, append(base, "--from", "2026-01-15T10:40:00Z", "--to", "2026-01-15T10:45:00Z", "--step", "1m", "--format", "csv")...)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 7 || lines[0] != "ts,model,measure,count,mean_ms,min_ms,max_ms,p50_ms,p90_ms,p95_ms,p99_ms,p999_ms" ||
		!strings.Contains(r.stdout, "\n2026-01-15T10:42:00Z,gpt-4o,latency,3,1100,") || strings.Count(r.stdout, "\n2026-01-15T10:42:00Z,") != 6 {
		t.Errorf("--step 1m, csv: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, append(base, "--from", "2026-01-15T09:00:00Z", "--to", "2026-01-15T12:00:00Z", "--step", "1h")...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "latency and time to first token per hour in [2026-01-15T09:00:00Z, 2026-01-15T12:00:00Z) by model\n") ||
		!strings.Contains(r.stdout, "2026-01-15 10:00  gpt-4o") {
		t.Errorf("--step 1h, table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestQueryTrendJSON: through the command, the USD amounts of a cost
// forecast are exact decimal strings in JSON, as cost_usd is; growth on
// fresh data (no complete day before --at) says so in a note in JSON and
// CSV, as the table does in a line.
func TestQueryTrendJSON(t *testing.T) {
	t.Parallel()
	dsn := queryDB(t)
	r := run(t, "", nil, "--clickhouse", dsn, "query", "forecast", "--at", "2026-01-16T12:00:00Z", "--history", "7", "--by", "tenant", "--format", "json")
	fc := decodeJSON(t, r.stdout)
	if r.code != 0 || len(fc) != 2 {
		t.Fatalf("forecast: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, o := range fc {
		for _, k := range []string{"to_date", "forecast_p10", "forecast_p50", "forecast_p90"} {
			if s, ok := o[k].(string); o[k] != nil && (!ok || !regexp.MustCompile(`^[0-9]+\.[0-9]{12}$`).MatchString(s)) {
				t.Errorf("forecast %v: %s = %#v, want a decimal string", o["tenant"], k, o[k])
			}
		}
		if _, ok := o["backtest_origins"].(json.Number); !ok {
			t.Errorf("forecast %v: backtest_origins = %#v, want a number", o["tenant"], o["backtest_origins"])
		}
	}
	if fc[0]["tenant"] != "o'hare" || fc[0]["to_date"] != "1.500000000000" || fc[1]["to_date"] != "0.000123456789" {
		t.Errorf("forecast:\n%s", r.stdout)
	}

	fresh := []string{"--clickhouse", dsn, "query", "growth", "--at", "2026-01-15T12:00:00Z", "--by", "tenant"}
	r = run(t, "", nil, fresh...)
	if r.code != 0 || r.stdout != "no cost in the growth window\n" {
		t.Errorf("growth on fresh data, table: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, append(fresh, "--format", "json")...)
	g := append(decodeJSON(t, r.stdout), nil)
	if note, _ := g[0]["note"].(string); r.code != 0 || len(g) != 2 || g[0]["tenant"] != nil || g[0]["last_7d"] != nil ||
		!strings.HasPrefix(note, "no cost in the 28-day window") {
		t.Errorf("growth on fresh data, json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, "", nil, append(fresh, "--format", "csv")...)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); r.code != 0 || len(lines) != 2 || !strings.Contains(lines[1], ",no cost in the 28-day window") {
		t.Errorf("growth on fresh data, csv: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
