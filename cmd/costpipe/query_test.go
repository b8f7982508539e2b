package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/pipelines/sketch"
	"github.com/costpipe/costpipe/warehouse"
)

// queryRow is one partial rollup row of the query tests, landed in all
// three tables (bucketed to minute, hour and day).
type queryRow struct {
	tenant, provider, model, errType string
	requests, errors, unpriced       uint64
	input, cached, output, reasoning uint64
	gpuUs                            uint64
	cost                             string
	latency, ttft                    []float64
}

var queryRows = []queryRow{
	{tenant: "acme", provider: "openai", model: "gpt-4o", requests: 2, input: 1000, cached: 200, output: 300, reasoning: 50,
		cost: "0.000123456789", latency: []float64{100, 200}, ttft: []float64{50}},
	{tenant: "acme", provider: "openai", model: "gpt-4o", errType: "timeout", requests: 1, errors: 1, cost: "0",
		latency: []float64{3000}},
	{tenant: "o'hare", provider: "anthropic", model: "claude-sonnet", requests: 1, input: 10, output: 20, cost: "1.5",
		latency: []float64{250}},
	{tenant: "acme", provider: "self-hosted", model: "llama-local", requests: 1, unpriced: 1, gpuUs: 1234567, cost: "0"},
}

var queryTS = time.Date(2026, 1, 15, 10, 42, 0, 0, time.UTC)

// queryDB returns the DSN of a migrated database holding queryRows.
func queryDB(t *testing.T) string {
	t.Helper()
	srv := chtest.Shared(t)
	db := srv.NewDatabase(t)
	ctx := context.Background()
	opts := warehouse.DefaultOptions()
	opts.DSN = srv.DSN(db)
	w, err := warehouse.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	hist := func(vals []float64) (uint64, []int16, []uint64) {
		var h sketch.Histogram
		var sum uint64
		for _, v := range vals {
			h.Add(v)
			sum += uint64(math.Round(v * 1000))
		}
		idx, cnt := h.AppendArrays([]int16{}, []uint64{})
		return sum, idx, cnt
	}
	for _, tb := range []struct {
		table warehouse.Table
		ts    time.Time
	}{{warehouse.Minute, queryTS}, {warehouse.Hour, queryTS.Truncate(time.Hour)}, {warehouse.Day, queryTS.Truncate(24 * time.Hour)}} {
		b, err := w.Conn().PrepareBatch(ctx, "INSERT INTO "+db+"."+tb.table.InputName()+" (ts, tenant, application, provider, model, error_type, "+
			"src_topic, src_partition, src_offset, requests, errors, input_tokens, cached_input_tokens, cache_write_tokens, "+
			"output_tokens, reasoning_tokens, gpu_us, unpriced_requests, cost_usd, "+
			"latency_sum_us, latency_hist_idx, latency_hist_cnt, ttft_sum_us, ttft_hist_idx, ttft_hist_cnt)")
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range queryRows {
			ls, lidx, lcnt := hist(r.latency)
			ts, tidx, tcnt := hist(r.ttft)
			if err := b.Append(tb.ts, r.tenant, "", r.provider, r.model, r.errType, "costpipe.events", int32(i%2), int64(i),
				r.requests, r.errors, r.input, r.cached, uint64(0), r.output, r.reasoning, r.gpuUs, r.unpriced,
				pricing.MustParsePico(r.cost).Decimal(),
				ls, lidx, lcnt, ts, tidx, tcnt); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	return srv.DSN(db)
}

func TestQueryUsageJSON(t *testing.T) {
	t.Parallel()
	dsn := queryDB(t)
	r := run(t, "", nil, "--clickhouse", dsn, "query", "usage", "--from", "2026-01-15", "--to", "2026-01-16",
		"--by", "tenant,model", "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, `{"tenant": "o'hare", "model": "claude-sonnet", "requests": 1, "errors": 0, "input_tokens": 10,`) {
		t.Errorf("first object does not start with the group then the counters in order:\n%s", r.stdout)
	}
	var got []map[string]any
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, r.stdout)
	}
	if len(got) != 3 {
		t.Fatalf("%d objects, want 3:\n%s", len(got), r.stdout)
	}
	// Cost descending: 1.5 (o'hare), 0.000123456789 (acme/gpt-4o), 0 (acme/llama).
	for i, want := range []struct{ tenant, model, cost, requests, errors, gpu string }{
		{"o'hare", "claude-sonnet", "1.500000000000", "1", "0", "0"},
		{"acme", "gpt-4o", "0.000123456789", "3", "1", "0"},
		{"acme", "llama-local", "0.000000000000", "1", "0", "1234.567"},
	} {
		o := got[i]
		if o["tenant"] != want.tenant || o["model"] != want.model || o["cost_usd"] != want.cost ||
			o["requests"] != json.Number(want.requests) || o["errors"] != json.Number(want.errors) || o["gpu_ms"] != json.Number(want.gpu) {
			t.Errorf("object %d = %v, want %+v", i, o, want)
		}
	}
	if got[2]["unpriced_requests"] != json.Number("1") || got[1]["cached_input_tokens"] != json.Number("200") || got[1]["reasoning_tokens"] != json.Number("50") {
		t.Errorf("counters: %v", got)
	}
	lat, ok := got[1]["latency_ms"].(map[string]any)
	if !ok {
		t.Fatalf("acme/gpt-4o lacks latency_ms: %v", got[1])
	}
	num := func(m map[string]any, k string) float64 {
		f, err := m[k].(json.Number).Float64()
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return f
	}
	// Samples 100, 200, 3000 ms: p50 = 200, p90 = p99 = 3000, and min and
	// max the histogram's extreme buckets (all within 1%); the mean exact.
	if num(lat, "count") != 3 || num(lat, "min") != sketch.Value(sketch.Index(100)) || num(lat, "max") != sketch.Value(sketch.Index(3000)) || num(lat, "avg") != 1100 ||
		math.Abs(num(lat, "p50")-200) > 2 || math.Abs(num(lat, "p90")-3000) > 30 || math.Abs(num(lat, "p99")-3000) > 30 {
		t.Errorf("acme/gpt-4o latency_ms = %v", lat)
	}
	if ttft, ok := got[1]["ttft_ms"].(map[string]any); !ok || num(ttft, "count") != 1 || num(ttft, "min") != sketch.Value(sketch.Index(50)) {
		t.Errorf("acme/gpt-4o ttft_ms = %v", got[1]["ttft_ms"])
	}
	if _, ok := got[0]["ttft_ms"]; ok {
		t.Errorf("claude reported no ttft but has ttft_ms: %v", got[0])
	}
	if _, ok := got[2]["latency_ms"]; ok {
		t.Errorf("llama reported no latency but has latency_ms: %v", got[2])
	}

	// Filters: OR within a dimension, a value with a quote.
	for _, tc := range []struct {
		args []string
		n    int
	}{
		{[]string{"--where", "tenant=o'hare"}, 1},
		{[]string{"--where", "model=gpt-4o", "--where", "model=llama-local"}, 2},
		{[]string{"--where", "model=gpt-4o", "--where", "tenant=o'hare"}, 0},
	} {
		args := append([]string{"--clickhouse", dsn, "query", "usage", "--to", "2026-01-16", "--since", "2d", "--by", "tenant,model", "--format", "json"}, tc.args...)
		r := run(t, "", nil, args...)
		var rows []map[string]any
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rows) != nil || len(rows) != tc.n {
			t.Errorf("%v: exit %d, %d rows, want %d\n%s%s", tc.args, r.code, len(rows), tc.n, r.stdout, r.stderr)
		}
	}
}

func TestQueryUsageCSV(t *testing.T) {
	t.Parallel()
	dsn := queryDB(t)
	r := run(t, "", nil, "--clickhouse", dsn, "query", "usage", "--from", "2026-01-15T10:00:00Z", "--to", "2026-01-15T11:00:00Z",
		"--by", "model,error_type", "--format", "csv")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := "model,error_type,requests,errors,input_tokens,cached_input_tokens,cache_write_tokens,cache_write_1h_tokens,output_tokens,reasoning_tokens," +
		"gpu_ms,unpriced_requests,cost_usd," +
		"latency_p50_ms,latency_p90_ms,latency_p99_ms,latency_avg_ms,latency_min_ms,latency_max_ms,latency_count," +
		"ttft_p50_ms,ttft_p90_ms,ttft_p99_ms,ttft_avg_ms,ttft_min_ms,ttft_max_ms,ttft_count"
	if len(recs) != 5 || strings.Join(recs[0], ",") != wantHeader {
		t.Fatalf("csv:\n%s", r.stdout)
	}
	// Cost desc, then keys: claude 1.5; gpt-4o "" 0.000123456789; then the
	// zero-cost groups by model, error_type.
	for i, want := range []string{
		"claude-sonnet,,1,0,10,0,0,0,20,0,0,0,1.500000000000,",
		"gpt-4o,,2,0,1000,200,0,0,300,50,0,0,0.000123456789,",
		"gpt-4o,timeout,1,1,0,0,0,0,0,0,0,0,0.000000000000,",
		"llama-local,,1,0,0,0,0,0,0,0,1234.567,1,0.000000000000,,,,,,,0,,,,,,,0",
	} {
		if got := strings.Join(recs[i+1], ","); !strings.HasPrefix(got, want) {
			t.Errorf("row %d = %s\nwant prefix %s", i+1, got, want)
		}
	}
	if rec := recs[3]; math.Abs(mustFloat(t, rec[13])-3000) > 30 || rec[16] != "3000" || math.Abs(mustFloat(t, rec[17])-3000) > 30 || rec[19] != "1" || rec[26] != "0" {
		t.Errorf("timeout row percentiles: %v", rec)
	}
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	var f float64
	if err := json.Unmarshal([]byte(s), &f); err != nil {
		t.Fatalf("cannot parse %q: %v", s, err)
	}
	return f
}

func TestQueryUsageTable(t *testing.T) {
	t.Parallel()
	dsn := queryDB(t)
	r := run(t, "", nil, "--clickhouse", dsn, "query", "usage", "--from", "2026-01-15", "--to", "2026-01-16", "--by", "tenant,model")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if lines[0] != "usage in [2026-01-15T00:00:00Z, 2026-01-16T00:00:00Z) by tenant, model" {
		t.Errorf("title = %q", lines[0])
	}
	// header, 3 groups, separator, TOTAL, note
	if len(lines) != 8 {
		t.Fatalf("want title, header, 3 rows, separator, total and note:\n%s", r.stdout)
	}
	table := lines[1:7]
	for _, l := range table {
		if len(l) != len(table[0]) {
			t.Errorf("columns not aligned:\n%s", r.stdout)
			break
		}
	}
	for _, f := range [][]string{
		{"TENANT", "MODEL", "REQUESTS", "ERRORS", "INPUT", "TOK", "CACHED", "OUTPUT", "TOK", "REASONING", "GPU", "HOURS", "COST", "USD", "UNPRICED",
			"LAT", "P50", "MS", "LAT", "P90", "MS", "LAT", "P99", "MS", "TTFT", "P50", "MS", "TTFT", "P99", "MS"},
		{"o'hare", "claude-sonnet", "1", "0", "10", "0", "20", "0", "0", "1.50", "0", "252", "252", "252", "-", "-"},
		{"acme", "gpt-4o", "3", "1", "1,000", "200", "300", "50", "0", "0.000123", "0"},
		{"acme", "llama-local", "1", "0", "0", "0", "0", "0", "0.000343", "0.00", "1", "-", "-", "-", "-", "-"},
		{"TOTAL", "5", "1", "1,010", "200", "320", "50", "0.000343", "1.50", "1"}, // cents from a dollar up: 1.5 + 0.000123
	} {
		i := map[string]int{"TENANT": 0, "o'hare": 1, "acme": 2, "TOTAL": 5}[f[0]]
		if f[1] == "llama-local" {
			i = 3
		}
		got := strings.Fields(table[i])
		if len(got) < len(f) || strings.Join(got[:len(f)], " ") != strings.Join(f, " ") {
			t.Errorf("line %d = %q\nwant fields starting %q", i, table[i], f)
		}
	}
	if !strings.HasPrefix(lines[7], "note: 1 call had no price") {
		t.Errorf("no unpriced note: %q", lines[7])
	}
}

func TestQueryUsageEmpty(t *testing.T) {
	t.Parallel()
	dsn := queryDB(t)
	for format, want := range map[string]string{
		"table": "no usage in [2025-01-01T00:00:00Z, 2025-01-02T00:00:00Z)\n",
		"json":  "[]\n",
		"csv":   "requests,errors,input_tokens,cached_input_tokens,cache_write_tokens,cache_write_1h_tokens,output_tokens,reasoning_tokens,gpu_ms,unpriced_requests,cost_usd,latency_p50_ms,latency_p90_ms,latency_p99_ms,latency_avg_ms,latency_min_ms,latency_max_ms,latency_count,ttft_p50_ms,ttft_p90_ms,ttft_p99_ms,ttft_avg_ms,ttft_min_ms,ttft_max_ms,ttft_count\n",
	} {
		r := run(t, "", nil, "--clickhouse", dsn, "query", "usage", "--from", "2025-01-01", "--to", "2025-01-02", "--format", format)
		if r.code != 0 || r.stdout != want {
			t.Errorf("%s: exit %d, stdout %q, want %q (stderr %s)", format, r.code, r.stdout, want, r.stderr)
		}
	}
}

// TestQueryUsageNotMigrated: a database without the tables gives one error
// with the hint, not a warning about the per-model summaries before it.
func TestQueryUsageNotMigrated(t *testing.T) {
	t.Parallel()
	srv := chtest.Shared(t)
	dsn := srv.DSN(srv.NewDatabase(t))
	r := run(t, "", nil, "--clickhouse", dsn, "query", "usage", "--since", "30d", "--by", "model")
	if r.code != 1 || !strings.Contains(r.stderr, "has `costpipe migrate` run on database") || strings.Contains(r.stderr, "per-model summaries") {
		t.Errorf("query usage on a database not migrated: exit %d, stderr %q; want 1 and the migrate hint alone", r.code, r.stderr)
	}
}

// TestQueryUsageBadFlags needs no server: flags are checked first.
func TestQueryUsageBadFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--by", "tenant,foo"}, `invalid --by dimension "foo": want tenant, application, provider, model, error_type, service_tier or context_band`},
		{[]string{"--by", "model,model"}, `dimension "model" given twice`},
		{[]string{"--from", "2026-01-01", "--since", "2h"}, "--from and --since are mutually exclusive"},
		{[]string{"--from", "yesterday"}, `invalid --from: cannot parse "yesterday": want RFC 3339`},
		{[]string{"--from", "2026-01-02", "--to", "2026-01-01"}, "empty range: --from 2026-01-02T00:00:00Z is not before --to 2026-01-01T00:00:00Z"},
		{[]string{"--since", "-1h"}, `invalid --since "-1h": must be positive`},
		{[]string{"--since", "week"}, `invalid --since "week"`},
		{[]string{"--where", "tenant"}, `invalid --where "tenant": want DIMENSION=VALUE`},
		{[]string{"--where", "region=eu"}, `invalid --where "region=eu": unknown dimension "region": want tenant, application, provider, model, error_type, service_tier or context_band`},
		{[]string{"--format", "xml"}, `invalid --format "xml": want table, json, csv or arrow`},
		{[]string{"--granularity", "week"}, `unknown granularity "week"`},
		{[]string{"--nope"}, "flag provided but not defined: --nope"},
		{[]string{"stray"}, `query usage takes no arguments, got "stray"`},
		{[]string{"--reprice", "default", "--map-model", "gpt=gpt-4o", "--map-model", "gpt=o1"}, `invalid --map-model "gpt=o1": gpt is already mapped to gpt-4o`},
	} {
		args := append([]string{"--clickhouse", "clickhouse://127.0.0.1:1/none", "query", "usage"}, tc.args...)
		r := run(t, "", nil, args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
		if strings.Contains(r.stderr, "USAGE:") {
			t.Errorf("%v: printed the whole help on a usage error", tc.args)
		}
	}
}

func TestQueryHelpListsQuery(t *testing.T) {
	t.Parallel()
	r := run(t, "", nil, "--help")
	if !strings.Contains(r.stdout, "   query ") {
		t.Errorf("--help lacks the query command:\n%s", r.stdout)
	}
}

func TestQueryUsageArrow(t *testing.T) {
	t.Parallel()
	dsn := queryDB(t)
	r := run(t, "", nil, "--clickhouse", dsn, "query", "usage", "--from", "2026-01-15T10:00:00Z", "--to", "2026-01-15T11:00:00Z",
		"--by", "model,error_type", "--format", "arrow")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	rd, err := ipc.NewReader(strings.NewReader(r.stdout))
	if err != nil {
		t.Fatalf("not an Arrow IPC stream: %v", err)
	}
	defer rd.Release()
	if !rd.Next() {
		t.Fatalf("no record batch: %v", rd.Err())
	}
	rec := rd.Record()
	if rec.NumRows() != 4 || rec.Schema().Field(0).Name != "model" || rec.Schema().Field(12).Name != "cost_usd" {
		t.Fatalf("rows %d, schema %v", rec.NumRows(), rec.Schema())
	}
	// Same first row as the csv test: claude-sonnet, 1 request, cost exactly 1.5.
	model := rec.Column(0).(*array.String).Value(0)
	reqs := rec.Column(2).(*array.Uint64).Value(0)
	cost := rec.Column(12).(*array.Decimal128).Value(0)
	if model != "claude-sonnet" || reqs != 1 || cost.ToString(12) != "1.500000000000" {
		t.Errorf("row 0: model %q requests %d cost %s; want claude-sonnet 1 1.500000000000", model, reqs, cost.ToString(12))
	}
	// llama-local has no latency: the percentile columns are null.
	if lat := rec.Column(13).(*array.Float64); !lat.IsNull(3) {
		t.Errorf("latency_p50_ms of a group without latency is %v, want null", lat.Value(3))
	}
}

// TestLazyGC: the query commands collect at three times the live heap
// unless GOGC says otherwise.
func TestLazyGC(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	t.Setenv("GOGC", "")
	lazyGC()
	if got := debug.SetGCPercent(100); got != 200 {
		t.Errorf("without GOGC: GC percent %d, want 200", got)
	}
	t.Setenv("GOGC", "50")
	lazyGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC=50 in the environment: GC percent %d, want it left alone (100 here)", got)
	}
}

// TestQueryFlagBeatsEnvironment: a flag typed on the command line wins over
// its own environment variable (--where, whose variable holds one more
// condition) and over the variable of a flag it excludes (--from against
// COSTPIPE_QUERY_SINCE, --since against COSTPIPE_QUERY_FROM); two
// variables that exclude each other are still an error.
func TestQueryFlagBeatsEnvironment(t *testing.T) {
	t.Parallel()
	dsn := queryDB(t)
	tenants := func(t *testing.T, env []string, args ...string) []string {
		t.Helper()
		r := run(t, "", env, append([]string{"--clickhouse", dsn, "query", "usage", "--by", "tenant", "--format", "json"}, args...)...)
		if r.code != 0 {
			t.Fatalf("%v %v: exit %d: %s", env, args, r.code, r.stderr)
		}
		var got []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("%v %v: %v\n%s", env, args, err, r.stdout)
		}
		var names []string
		for _, o := range got {
			names = append(names, o["tenant"].(string))
		}
		return names
	}
	day := []string{"--from", "2026-01-15", "--to", "2026-01-16"}
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"COSTPIPE_QUERY_WHERE=tenant=acme"}, day, "[acme]"},
		{[]string{"COSTPIPE_QUERY_WHERE=tenant=acme"}, append([]string{"--where", "tenant=o'hare"}, day...), "[o'hare]"},
		{[]string{"COSTPIPE_QUERY_SINCE=1h"}, day, "[o'hare acme]"},
		{[]string{"COSTPIPE_QUERY_FROM=2026-01-15T11:00:00Z"}, []string{"--since", "2h", "--to", "2026-01-15T12:00:00Z"}, "[o'hare acme]"},
	} {
		if got := fmt.Sprint(tenants(t, tc.env, tc.args...)); got != tc.want {
			t.Errorf("%v %v: tenants %s, want %s", tc.env, tc.args, got, tc.want)
		}
	}
	r := run(t, "", []string{"COSTPIPE_QUERY_FROM=2026-01-15", "COSTPIPE_QUERY_SINCE=2h"}, "--clickhouse", dsn, "query", "usage")
	if r.code != 2 || !strings.Contains(r.stderr, "--from and --since are mutually exclusive") {
		t.Errorf("both variables: exit %d, stderr %q; want exit 2, mutually exclusive", r.code, r.stderr)
	}
	for _, env := range []string{"COSTPIPE_QUERY_PERIOD=week", "COSTPIPE_QUERY_BUDGET=5000"} {
		r = run(t, "", []string{env}, "--clickhouse", "clickhouse://127.0.0.1:1/none", "query", "forecast", "--horizon", "24h")
		if r.code == 2 {
			t.Errorf("%s and --horizon 24h: exit %d, stderr %q; want --horizon to win (then the unreachable server: exit 1)", env, r.code, r.stderr)
		}
	}
	r = run(t, "", nil, "--clickhouse", "clickhouse://127.0.0.1:1/none", "query", "forecast", "--horizon", "24h", "--budget", "10")
	if r.code != 2 {
		t.Errorf("--budget and --horizon 24h typed: exit %d, stderr %q; want exit 2", r.code, r.stderr)
	}
}

// TestQueryQuestionFaultIsAUsageError: a question that only answering it
// finds wrong (a fixed granularity the range does not fit) exits 2 with a
// message that names the flag, as serve answers it 400.
func TestQueryQuestionFaultIsAUsageError(t *testing.T) {
	t.Parallel()
	dsn := queryDB(t)
	r := run(t, "", nil, "--clickhouse", dsn, "query", "usage", "--granularity", "hour", "--from", "2026-01-15T10:30:00Z", "--to", "2026-01-15T12:00:00Z")
	if r.code != 2 || !strings.Contains(r.stderr, `invalid --granularity: granularity "hour" needs a range on whole hours (UTC), got 2026-01-15T10:30:00Z: give --from and --to on whole hours`) {
		t.Errorf("exit %d, stderr %q; want exit 2 naming --granularity", r.code, r.stderr)
	}
	r = run(t, "", nil, "--clickhouse", dsn, "query", "usage", "--granularity", "hour", "--from", "2026-01-15T10:00:00Z", "--to", "2026-01-15T12:00:00Z")
	if r.code != 0 {
		t.Errorf("whole hours: exit %d, stderr %q", r.code, r.stderr)
	}
}
