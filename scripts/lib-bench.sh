# Shared by scripts/bench-storage.sh and scripts/bench-query.sh (source it, do not run
# it): a private clickhouse-server, growth-scenario events from `costpipe loadgen`, and
# their landing through the production path (`costpipe broker`, `costpipe produce`,
# `costpipe aggregate`) into the rollups and, as they are, into a raw MergeTree table
# events_raw of the same database.
#
#   source scripts/lib-bench.sh
#   bench_init "$state_dir"                  # bin (builds bin/costpipe unless COSTPIPE_BIN), pids, cleanup on exit
#   bench_clickhouse 19300 18300             # server on native port 19300 (HTTP 18300); then ch -q "…"
#   bench_loadgen 168h 3000000 >events.jsonl # EVENTS events over SPAN, 20 tenants, seed 7
#   bench_land storage_168h events.jsonl 192h 19392   # landed in the rollups and events_raw, OPTIMIZE FINAL
#   bench_land db - 768h 19392 720h 10000000 # the same streamed from loadgen (no file on disk)
#
# LAND_TIMEOUT (seconds, default 600) bounds the wait for the aggregator to land every
# event after the last was produced.

# bench_init STATE: a fresh STATE directory, the costpipe binary in $bin, and the
# processes started later (in $pids) stopped when the script exits.
bench_init() {
	state="$1"
	rm -rf "$state" && mkdir -p "$state"
	bin="${COSTPIPE_BIN:-bin/costpipe}"
	[[ -n "${COSTPIPE_BIN:-}" ]] || scripts/build.sh bin/costpipe
	pids=()
	trap bench_cleanup EXIT
}

bench_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [[ -n "${bench_cleanup_dir:-}" ]]; then rm -rf "$bench_cleanup_dir"; fi
}

# bench_clickhouse TCP_PORT HTTP_PORT: starts clickhouse-server with its data in
# $state/clickhouse and waits until it answers; ch runs clickhouse-client against it.
# With BENCH_QUERY_LOG=1 every query is logged in system.query_log (flushed each 0.5 s).
bench_clickhouse() {
	ch_port=$1
	local http=$2 dir="$state/clickhouse"
	if [[ "${BENCH_QUERY_LOG:-}" == 1 ]]; then
		# config.d and users.d next to config.xml and users.xml are merged into them.
		mkdir -p "$dir/config.d" "$dir/users.d"
		echo '<yandex><query_log><database>system</database><table>query_log</table><flush_interval_milliseconds>500</flush_interval_milliseconds></query_log></yandex>' >"$dir/config.d/query_log.xml"
		echo '<yandex><profiles><default><log_queries>1</log_queries></default></profiles></yandex>' >"$dir/users.d/log_queries.xml"
	fi
	CLICKHOUSE_DIR="$dir" CH_TCP_PORT=$ch_port CH_HTTP_PORT=$http scripts/clickhouse-local.sh >"$state/ch.out" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 150); do ch -q "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done
	ch -q "SELECT 1" >/dev/null
}

ch() { clickhouse-client --port "$ch_port" "$@"; }

# bench_loadgen SPAN EVENTS: EVENTS growth-scenario events over SPAN ending now, 20
# tenants, seed 7, as JSON lines on stdout.
bench_loadgen() {
	local span=$1 events=$2 rate=100000
	local dur
	dur=$(awk -v n="$events" -v r=$rate 'BEGIN{printf "%.3fs", n/r}')
	"$bin" loadgen --scenario growth --span "$span" --tenants 20 --seed 7 --rate $rate --duration "$dur" --output stdout --quiet
}

# bench_since T0: seconds since T0 (an $EPOCHREALTIME), one decimal.
bench_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b - a}'; }

# bench_land DB FILE MAX_EVENT_AGE BROKER_PORT [SPAN EVENTS]: lands the events of FILE
# (JSON lines) in database DB: a fresh `costpipe broker` (6 partitions) on BROKER_PORT,
# `costpipe migrate`, `costpipe aggregate --flush-interval 5s --max-event-age
# MAX_EVENT_AGE` (it must exceed the events' span), `costpipe produce`; the same
# events inserted into DB.events_raw. FILE "-" streams `bench_loadgen SPAN EVENTS`
# through a FIFO into both instead of reading a file. Waits until usage_1m counts
# every event of events_raw, stops aggregator and broker, and runs OPTIMIZE TABLE …
# FINAL on usage_1m, usage_1h, usage_1d, the summaries and events_raw. Sets n to the events landed;
# prints the time of each phase on stderr.
bench_land() {
	local db=$1 file=$2 max_age=$3 broker_port=$4 span=${5:-} events=${6:-}
	local t0=$EPOCHREALTIME
	"$bin" broker --listen 127.0.0.1:$broker_port --partitions 6 >"$state/broker-$db.out" 2>&1 &
	local broker=$!
	pids+=($broker)
	export COSTPIPE_BROKERS=127.0.0.1:$broker_port COSTPIPE_CLICKHOUSE=clickhouse://127.0.0.1:$ch_port/$db
	"$bin" migrate >/dev/null
	"$bin" aggregate --flush-interval 5s --max-event-age "$max_age" >"$state/aggregate-$db.out" 2>&1 &
	local agg=$!
	pids+=($agg)
	local insert=(ch --date_time_input_format=best_effort --input_format_skip_unknown_fields=1 -q "INSERT INTO $db.events_raw FORMAT JSONEachRow")
	if [[ "$file" == - ]]; then
		ch -q "$(bench_raw_ddl "$db")"
		local fifo="$state/events-$db.fifo"
		mkfifo "$fifo"
		"${insert[@]}" <"$fifo" &
		local ins=$!
		bench_loadgen "$span" "$events" 2>"$state/loadgen-$db.err" | tee "$fifo" | "$bin" produce >"$state/produce-$db.out" 2>&1
		wait $ins
		rm -f "$fifo"
		echo "  [$(bench_since "$t0") s] generated, produced and inserted into events_raw (streamed)" >&2
	else
		"$bin" produce <"$file" >"$state/produce-$db.out" 2>&1
		echo "  [$(bench_since "$t0") s] produced" >&2
		ch -q "$(bench_raw_ddl "$db")"
		"${insert[@]}" <"$file"
		echo "  [$(bench_since "$t0") s] inserted into events_raw" >&2
	fi
	n=$(ch -q "SELECT count() FROM $db.events_raw")

	local landed=""
	for _ in $(seq 1 "${LAND_TIMEOUT:-600}"); do
		landed=$(ch -q "SELECT sumMerge(requests) FROM $db.usage_1m")
		[[ "$landed" == "$n" ]] && break
		sleep 1
	done
	echo "  [$(bench_since "$t0") s] $landed of $n events landed in the rollups" >&2
	kill $agg $broker 2>/dev/null || true
	wait $agg $broker 2>/dev/null || true
	[[ "$landed" == "$n" ]] || { echo "only $landed of $n events landed"; exit 1; }
	for t in usage_1m usage_1h usage_1d usage_model_1h usage_model_1d usage_model_1w events_raw; do ch -q "OPTIMIZE TABLE $db.$t FINAL"; done
	echo "  [$(bench_since "$t0") s] OPTIMIZE FINAL done" >&2
}

# bench_raw_ddl DB: the raw table, every field of an event except `attributes`, the
# timestamp at second precision, partitioned as the rollups (docs/BENCHMARKS.md, "Storage").
bench_raw_ddl() {
	echo "CREATE TABLE $1.events_raw (event_id String, timestamp DateTime('UTC'), tenant String, provider String, model String,
		status String, error_type String, application String, operation String, region String,
		input_tokens UInt64, cached_input_tokens UInt64, cache_write_tokens UInt64, output_tokens UInt64, reasoning_tokens UInt64,
		latency_ms Float64, ttft_ms Float64, gpu_ms Float64)
		ENGINE = MergeTree PARTITION BY toYYYYMM(timestamp) ORDER BY (tenant, model, timestamp)"
}
