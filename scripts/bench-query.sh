#!/usr/bin/env bash
# Query speed: `costpipe query usage|latency|growth` on the rollups against the same
# questions asked of a raw MergeTree table of the same events (quantiles at query time),
# side by side on one ClickHouse server (docs/BENCHMARKS.md, "Query speed").
#
# It generates EVENTS growth-scenario events over SPAN (`costpipe loadgen --scenario
# growth --span SPAN --tenants 20 --seed 7 --output stdout`), lands them through the
# production path (`costpipe broker`, `costpipe produce`, `costpipe aggregate`) into the
# rollups and inserts the same events into events_raw (scripts/lib-bench.sh, as
# bench-storage.sh does), runs OPTIMIZE … FINAL, then times each question RUNS times
# after a first, "cold" run (the first query on the tables after OPTIMIZE; the page
# cache holds the freshly written parts):
#
#   usage    costpipe query usage   --since 30d --by model --format json
#   latency  costpipe query latency --since 30d --by model --format json
#   growth   costpipe query growth  --by model --format json    (28 complete days, usage_1d)
#
# against, through clickhouse-client (FORMAT JSON), the raw table:
#
#   usage    count, errors, token and GPU sums and a cost proxy (fixed per-token rates;
#            the raw table has no cost) per model over the last 30 days
#   usage_p  the same plus the latency and TTFT percentiles the CLI's usage also prints
#   latency  count, mean, min, max and quantiles(0.5, 0.9, 0.95, 0.99, 0.999) of latency_ms
#            and of ttft_ms (calls reporting it) per model — reservoir-sampled estimates
#   latency_exact  the same with quantilesExact (exact, as the rollups' are within 1%)
#   growth   the daily cost proxy per model over the same 28 days: only the
#            aggregation growth needs; the Theil–Sen slope cannot be written in SQL
#
# Wall times (ms) include process start-up. Beside them: the CLI's SQL as the server
# timed it (system.query_log), the same SQL replayed with `clickhouse-client --time`
# (query time without either process's start-up), and floors: `costpipe --help`,
# `clickhouse-client -q 'SELECT 1'`, and a CLI query over the last minute (start-up,
# connection, a trivial query).
#
#   scripts/bench-query.sh                        # 10,000,000 events over 30 days, 7 runs
#   EVENTS=1000000 RUNS=3 scripts/bench-query.sh
#   STREAM=1 scripts/bench-query.sh               # no events file: loadgen | tee | produce
#   KEEP=1 scripts/bench-query.sh                 # keep the work directory: the data, the CLI's SQL (sql-*)
#   # and, to query it again: CLICKHOUSE_DIR=WORK/clickhouse CH_TCP_PORT=19500 scripts/clickhouse-local.sh
#
# Work directory: a fresh mktemp -d under ${TMPDIR:-/tmp}, removed at exit unless KEEP=1.
# The events file needs ~450 bytes per event; without the room the events are streamed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib-bench.sh
events="${EVENTS:-10000000}"
span="${SPAN:-720h}"            # loadgen's span, a Go duration: 30 days
since="${SINCE:-30d}"           # the range of query usage and query latency
max_age="${MAX_EVENT_AGE:-768h}" # the aggregator's --max-event-age: must exceed SPAN
runs="${RUNS:-7}"
export LAND_TIMEOUT="${LAND_TIMEOUT:-1800}"
db=bench_query

work=$(mktemp -d "${TMPDIR:-/tmp}/costpipe-bench-query.XXXXXX")
export BENCH_QUERY_LOG=1
bench_init "$work"
[[ "${KEEP:-}" == 1 ]] || bench_cleanup_dir="$work"
bench_clickhouse 19500 18500
echo "clickhouse $(ch -q 'SELECT version()'), $(nproc) vCPU, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME"), $(date -u +%Y-%m-%d), work dir $work"

avail_kb=$(df -Pk "$work" | awk 'NR == 2 {print $4}')
need_kb=$((events * 450 / 1024 + 2 * 1024 * 1024))
file="$work/events.jsonl"
if [[ "${STREAM:-}" == 1 || $avail_kb -lt $need_kb ]]; then
	file=-
	echo "streaming the events (${avail_kb} KiB free, a file needs ~${need_kb})"
fi
echo "landing $events events over $span (aggregate --max-event-age $max_age) …"
t0=$EPOCHREALTIME
if [[ "$file" != - ]]; then
	bench_loadgen "$span" "$events" >"$file" 2>"$work/loadgen.err"
	echo "  [$(bench_since "$t0") s] generated $(du -h "$file" | cut -f1) of JSON lines" >&2
fi
bench_land "$db" "$file" "$max_age" 19592 "$span" "$events"
[[ "$file" == - ]] || rm -f "$file"
echo "landed in $(bench_since "$t0") s"

rows() { ch -q "SELECT sum(rows) FROM system.parts WHERE active AND database = '$db' AND table = '$1'"; }
echo "rows: usage_1m $(rows usage_1m), usage_1h $(rows usage_1h), usage_1d $(rows usage_1d), events_raw $(rows events_raw)"
echo "events from $(ch -q "SELECT min(timestamp) FROM $db.events_raw") to $(ch -q "SELECT max(timestamp) FROM $db.events_raw") UTC, $(ch -q "SELECT uniqExact(model) FROM $db.events_raw") models"

export COSTPIPE_CLICKHOUSE=clickhouse://127.0.0.1:$ch_port/$db
cli_usage=("$bin" query usage --since "$since" --by model --format json)
cli_latency=("$bin" query latency --since "$since" --by model --format json)
cli_growth=("$bin" query growth --by model --format json)

where30="timestamp >= now() - INTERVAL ${since%d} DAY"
cost="(input_tokens - cached_input_tokens) * 3e-6 + cached_input_tokens * 0.3e-6 + cache_write_tokens * 3.75e-6 + output_tokens * 15e-6"
pct="0.5, 0.9, 0.95, 0.99, 0.999"
sums="count() AS requests, countIf(status = 'error') AS errors, sum(input_tokens), sum(cached_input_tokens),
	sum(cache_write_tokens), sum(output_tokens), sum(reasoning_tokens), sum(gpu_ms), sum($cost) AS cost"
lat() { # lat quantiles|quantilesExact: the latency and TTFT columns of query latency
	echo "countIf(latency_ms > 0), avgIf(latency_ms, latency_ms > 0), minIf(latency_ms, latency_ms > 0), max(latency_ms),
	$1If($pct)(latency_ms, latency_ms > 0), countIf(ttft_ms > 0), avgIf(ttft_ms, ttft_ms > 0), minIf(ttft_ms, ttft_ms > 0),
	max(ttft_ms), $1If($pct)(ttft_ms, ttft_ms > 0)"
}
raw_usage="SELECT model, $sums FROM $db.events_raw WHERE $where30 GROUP BY model ORDER BY cost DESC FORMAT JSON"
raw_usage_p="SELECT model, $sums, $(lat quantiles) FROM $db.events_raw WHERE $where30 GROUP BY model ORDER BY cost DESC FORMAT JSON"
raw_latency="SELECT model, $(lat quantiles) FROM $db.events_raw WHERE $where30 GROUP BY model ORDER BY count() DESC FORMAT JSON"
raw_latency_exact="SELECT model, $(lat quantilesExact) FROM $db.events_raw WHERE $where30 GROUP BY model ORDER BY count() DESC FORMAT JSON"
raw_growth="SELECT model, toDate(timestamp) AS day, sum($cost) AS cost FROM $db.events_raw
	WHERE timestamp >= toDateTime(today() - 28) AND timestamp < toDateTime(today()) GROUP BY model, day ORDER BY model, day FORMAT JSON"

# timed NAME CMD…: one cold run and $runs more; wall ms one a line in $work/t-NAME,
# the stderr of each run (clickhouse-client --time) in $work/e-NAME. The server clock
# around the runs is kept in $work/span-NAME for query_log.
timed() {
	local name=$1
	shift
	: >"$work/t-$name"
	: >"$work/e-$name"
	local from to
	from=$(ch -q "SELECT toUnixTimestamp(now())")
	sleep 1.1 # query_log has whole seconds: nothing else in this second
	for i in $(seq 0 "$runs"); do
		local t0=$EPOCHREALTIME
		"$@" >"$work/out-$name" 2>>"$work/e-$name"
		local t1=$EPOCHREALTIME
		awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f\n", (b - a) * 1000}' >>"$work/t-$name"
	done
	sleep 1.1
	to=$(ch -q "SELECT toUnixTimestamp(now())")
	echo "$from $to" >"$work/span-$name"
}
# stats FILE: "cold / min / median" of the lines of FILE (the first is the cold run).
stats() {
	{ head -n 1 "$1"; tail -n +2 "$1" | sort -g; } | awk 'NR == 1 {c = $1; next} {v[n++] = $1} END {
		m = (n % 2) ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
		printf "%.1f / %.1f / %.1f", c, v[0], m }'
}
# clienttime NAME: the times clickhouse-client --time printed, as ms (first is cold).
clienttime() { awk '/^[0-9.]+$/ {printf "%.1f\n", $1 * 1000}' "$work/e-$1" >"$work/c-$1"; stats "$work/c-$1"; }
# serverlog NAME: queries per run, server time cold / min / median (ms, summed per run)
# and rows read per run of the costpipe CLI's queries (client name clickhouse-go).
serverlog() {
	local from to
	read -r from to <"$work/span-$1"
	sleep 1
	ch -q "SELECT query_duration_ms, read_rows FROM system.query_log WHERE type = 2 AND client_name NOT LIKE 'ClickHouse%'
		AND query NOT LIKE '%system.query_log%' AND query_start_time >= toDateTime($from) AND query_start_time <= toDateTime($to)
		ORDER BY query_start_time, query_duration_ms" >"$work/q-$1"
	local per=$(($(wc -l <"$work/q-$1") / (runs + 1)))
	awk -v per="$per" '{ms += $1; r += $2} NR % per == 0 {print ms; if (NR == per) rows = r; ms = 0; r = 0} END {if (per) printf "%d\n", rows > "/dev/stderr"}' \
		"$work/q-$1" >"$work/s-$1" 2>"$work/r-$1"
	echo "$per queries, server $(stats "$work/s-$1") ms, $(cat "$work/r-$1") rows read"
}
# the last run's SQL of the CLI, one query a line, to replay with clickhouse-client
cli_sql() {
	local from to
	read -r from to <"$work/span-$1"
	ch --format TSVRaw -q "SELECT replaceAll(query, '\n', ' ') FROM system.query_log WHERE type = 2 AND client_name NOT LIKE 'ClickHouse%'
		AND query NOT LIKE '%system.query_log%' AND query_start_time >= toDateTime($from) AND query_start_time <= toDateTime($to)
		ORDER BY query_start_time DESC, event_time DESC LIMIT $2" | tac
}
replay() { # replay NAME: runs the CLI's SQL of NAME through clickhouse-client; their --time summed on stderr
	local sql total=0 t
	while IFS= read -r sql; do
		[[ -z "$sql" ]] && continue
		t=$(ch --time -q "$sql" 2>&1 >/dev/null)
		total=$(awk -v a="$total" -v b="$t" 'BEGIN{print a + b}')
	done <"$work/sql-$1"
	echo "$total" >&2
}
# rawrows NAME: rows the last raw query of NAME read
rawrows() {
	local from to
	read -r from to <"$work/span-$1"
	ch -q "SELECT read_rows FROM system.query_log WHERE type = 2 AND query LIKE '%events_raw%' AND query NOT LIKE '%system.query_log%'
		AND query_start_time >= toDateTime($from) AND query_start_time <= toDateTime($to) ORDER BY event_time DESC LIMIT 1"
}
rawsql() { ch --time -q "$1"; }

summary=()
echo
echo "timing: 1 cold run + $runs runs each; cold / min / median ms"
timed help "$bin" --help
timed chclient ch -q "SELECT 1"
timed trivial "$bin" query usage --since 1m --by model --format json
echo "floors (wall): costpipe --help $(stats "$work/t-help"); clickhouse-client SELECT 1 $(stats "$work/t-chclient"); costpipe query usage --since 1m (no rows): $(stats "$work/t-trivial") [$(serverlog trivial)]"

for q in usage latency growth; do
	declare -n cmd="cli_$q"
	timed "cli-$q" "${cmd[@]}"
	echo
	echo "== $q: ${cmd[*]#"$bin"}"
	echo "CLI wall          $(stats "$work/t-cli-$q") ms  ($(wc -c <"$work/out-cli-$q") bytes of JSON)"
	echo "CLI SQL on server $(serverlog "cli-$q")"
	per=$(($(wc -l <"$work/q-cli-$q") / (runs + 1)))
	cli_sql "cli-$q" "$per" >"$work/sql-$q"
	timed "rollup-$q" replay "$q"
	echo "rollup SQL        client --time $(clienttime "rollup-$q") ms, wall $(stats "$work/t-rollup-$q") ms (clickhouse-client, one process per query)"
	summary+=("| $q (CLI) | $(stats "$work/t-cli-$q") | $(stats "$work/s-cli-$q") | $(stats "$work/c-rollup-$q") |")
done

echo
for r in usage usage_p latency latency_exact growth; do
	declare -n sql="raw_$r"
	timed "raw-$r" rawsql "$sql"
	echo "raw $r: wall $(stats "$work/t-raw-$r") ms, client --time $(clienttime "raw-$r") ms, $(rawrows "raw-$r") rows read"
	summary+=("| $r (raw SQL) | $(stats "$work/t-raw-$r") | | $(stats "$work/c-raw-$r") |")
done
echo
echo "| question | wall (cold / min / median ms) | CLI SQL in query_log | clickhouse-client --time |"
echo "|---|---|---|---|"
printf '%s\n' "${summary[@]}"
echo
echo "CLI SQL (last run):"
for q in usage latency growth; do sed "s/^/  $q: /" "$work/sql-$q" | cut -c1-400; done
