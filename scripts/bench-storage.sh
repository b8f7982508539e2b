#!/usr/bin/env bash
# Storage benchmark: the rollups against a raw MergeTree table of the same events,
# side by side on one ClickHouse server (docs/BENCHMARKS.md, "Storage").
#
# For each span (default 3h and 168h = 7 days) it writes N growth-scenario events to a file
# (`costpipe loadgen --scenario growth --span SPAN --tenants 20 --output stdout`),
# lands them through the production path (`costpipe broker`, `costpipe produce`,
# `costpipe aggregate`) into the rollups, inserts the same file into the raw table,
# runs OPTIMIZE ... FINAL on every table and prints bytes on disk.
#
#   scripts/bench-storage.sh                       # 3,000,000 events, spans 3h and 168h (7 days), LZ4
#   CH_COMPRESSION=zstd scripts/bench-storage.sh   # the same with ZSTD parts
#   EVENTS=300000 SPANS="3h" scripts/bench-storage.sh
#   COSTPIPE_BIN=/tmp/costpipe-old scripts/bench-storage.sh   # another build, e.g. before 0003
#
# The raw table (events_raw) holds every field of an event except `attributes`,
# the timestamp at second precision, and the same partitioning as the rollups:
#   MergeTree PARTITION BY toYYYYMM(timestamp) ORDER BY (tenant, model, timestamp)
set -euo pipefail
cd "$(dirname "$0")/.."
events="${EVENTS:-3000000}"
spans="${SPANS:-3h 168h}"
state="$PWD/.costpipe/bench-storage"
ch_port=19300 ch_http=18300 broker_port=19392
rm -rf "$state" && mkdir -p "$state"
bin="${COSTPIPE_BIN:-bin/costpipe}"
[[ -n "${COSTPIPE_BIN:-}" ]] || go build -o bin/costpipe ./cmd/costpipe
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

CLICKHOUSE_DIR="$state/clickhouse" CH_TCP_PORT=$ch_port CH_HTTP_PORT=$ch_http scripts/clickhouse-local.sh >"$state/ch.out" 2>&1 &
pids+=($!)
ch() { clickhouse-client --port $ch_port "$@"; }
for _ in $(seq 1 150); do ch -q "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done
echo "clickhouse $(ch -q 'SELECT version()'), compression ${CH_COMPRESSION:-lz4 (default)}, $(nproc) vCPU"

for span in $spans; do
	db="storage_${span}"
	file="$state/events-$span.jsonl"
	rate=100000
	dur=$(awk -v n="$events" -v r=$rate 'BEGIN{printf "%.3fs", n/r}')
	"$bin" loadgen --scenario growth --span "$span" --tenants 20 --seed 7 --rate $rate --duration "$dur" --output stdout --quiet >"$file" 2>"$state/loadgen-$span.err"
	n=$(wc -l <"$file")

	"$bin" broker --listen 127.0.0.1:$broker_port --partitions 6 >"$state/broker-$span.out" 2>&1 &
	broker=$!
	pids+=($broker)
	export COSTPIPE_BROKERS=127.0.0.1:$broker_port COSTPIPE_CLICKHOUSE=clickhouse://127.0.0.1:$ch_port/$db
	"$bin" migrate >/dev/null
	"$bin" aggregate --flush-interval 5s --max-event-age 192h >"$state/aggregate-$span.out" 2>&1 &
	agg=$!
	pids+=($agg)
	"$bin" produce <"$file" >"$state/produce-$span.out" 2>&1

	ch -q "CREATE TABLE $db.events_raw (event_id String, timestamp DateTime('UTC'), tenant String, provider String, model String,
		status String, error_type String, application String, operation String, region String,
		input_tokens UInt64, cached_input_tokens UInt64, cache_write_tokens UInt64, output_tokens UInt64, reasoning_tokens UInt64,
		latency_ms Float64, ttft_ms Float64, gpu_ms Float64)
		ENGINE = MergeTree PARTITION BY toYYYYMM(timestamp) ORDER BY (tenant, model, timestamp)"
	ch --date_time_input_format=best_effort --input_format_skip_unknown_fields=1 -q "INSERT INTO $db.events_raw FORMAT JSONEachRow" <"$file"

	for _ in $(seq 1 600); do
		landed=$(ch -q "SELECT sumMerge(requests) FROM $db.usage_1m")
		[[ "$landed" == "$n" ]] && break
		sleep 1
	done
	kill $agg $broker 2>/dev/null || true
	wait $agg $broker 2>/dev/null || true
	[[ "$landed" == "$n" ]] || { echo "only $landed of $n events landed"; exit 1; }
	for t in usage_1m usage_1h usage_1d events_raw; do ch -q "OPTIMIZE TABLE $db.$t FINAL"; done

	size() { ch -q "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = '$db' AND table = '$1'"; }
	rows() { ch -q "SELECT sum(rows) FROM system.parts WHERE active AND database = '$db' AND table = '$1'"; }
	m=$(size usage_1m) h=$(size usage_1h) d=$(size usage_1d) raw=$(size events_raw)
	mr=$(rows usage_1m) hr=$(rows usage_1h) dr=$(rows usage_1d)
	echo
	echo "== $n events over $span, 20 tenants (seed 7)"
	printf "%-10s %10s rows %12s bytes %8.1f bytes/row\n" usage_1m "$mr" "$m" "$(awk -v a="$m" -v b="$mr" 'BEGIN{print a/b}')"
	printf "%-10s %10s rows %12s bytes %8.1f bytes/row\n" usage_1h "$hr" "$h" "$(awk -v a="$h" -v b="$hr" 'BEGIN{print a/b}')"
	printf "%-10s %10s rows %12s bytes %8.1f bytes/row\n" usage_1d "$dr" "$d" "$(awk -v a="$d" -v b="$dr" 'BEGIN{print a/b}')"
	printf "%-10s %10s rows %12s bytes %8.1f bytes/event\n" events_raw "$n" "$raw" "$(awk -v a="$raw" -v b="$n" 'BEGIN{print a/b}')"
	awk -v m="$m" -v h="$h" -v d="$d" -v r="$raw" 'BEGIN{printf "rollups %d bytes: %.1fx smaller than raw (usage_1m alone %.1fx)\n", m+h+d, r/(m+h+d), r/m}'
	echo "largest usage_1m columns (bytes/row):" $(ch -q "SELECT concat(name, ' ', toString(round(data_compressed_bytes / $mr, 1))) FROM system.columns WHERE database = '$db' AND table = 'usage_1m' ORDER BY data_compressed_bytes DESC LIMIT 6" | tr '\n' ',' | sed 's/,$//; s/,/, /g')
	rm -f "$file"
done
