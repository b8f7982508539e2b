#!/usr/bin/env bash
# Storage benchmark: the rollups against a raw MergeTree table of the same events,
# side by side on one ClickHouse server (docs/BENCHMARKS.md, "Storage").
#
# For each span (default 3h and 168h = 7 days) it writes N growth-scenario events to a file
# (`costpipe loadgen --scenario growth --span SPAN --tenants 20 --output stdout`),
# lands them through the production path (`costpipe broker`, `costpipe produce`,
# `costpipe aggregate`) into the rollups, inserts the same file into the raw table,
# runs OPTIMIZE ... FINAL on every table and prints bytes on disk, of the rollups and of
# the per-model summaries beside them.
#
#   scripts/bench-storage.sh                       # 3,000,000 events, spans 3h and 168h (7 days), LZ4
#   CH_COMPRESSION=zstd scripts/bench-storage.sh   # the same with ZSTD parts
#   EVENTS=300000 SPANS="3h" scripts/bench-storage.sh
#   COSTPIPE_BIN=/tmp/costpipe-old scripts/bench-storage.sh   # another build, e.g. before 0003
#
# The shared parts (server, loadgen, landing, the raw table) are in scripts/lib-bench.sh.
# The raw table (events_raw) holds every field of an event except `attributes`,
# the timestamp at second precision, and the same partitioning as the rollups:
#   MergeTree PARTITION BY toYYYYMM(timestamp) ORDER BY (tenant, model, timestamp)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib-bench.sh
events="${EVENTS:-3000000}"
spans="${SPANS:-3h 168h}"
bench_init "$PWD/.costpipe/bench-storage"
bench_clickhouse 19300 18300
echo "clickhouse $(ch -q 'SELECT version()'), compression ${CH_COMPRESSION:-lz4 (default)}, $(nproc) vCPU"

for span in $spans; do
	db="storage_${span}"
	file="$state/events-$span.jsonl"
	bench_loadgen "$span" "$events" >"$file" 2>"$state/loadgen-$span.err"
	bench_land "$db" "$file" 192h 19392

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
	# The per-model summaries (0009, 0010) are stored beside the rollups.
	sh=$(size usage_model_1h) sd=$(size usage_model_1d) sw=$(size usage_model_1w)
	printf "%-14s %10s rows %12s bytes\n" usage_model_1h "$(rows usage_model_1h)" "$sh" usage_model_1d "$(rows usage_model_1d)" "$sd" usage_model_1w "$(rows usage_model_1w)" "$sw"
	awk -v m="$m" -v h="$h" -v d="$d" -v s="$((sh + sd + sw))" -v r="$raw" 'BEGIN{printf "rollups and summaries %d bytes: %.1fx smaller than raw\n", m+h+d+s, r/(m+h+d+s)}'
	echo "largest usage_1m columns (bytes/row):" $(ch -q "SELECT concat(name, ' ', toString(round(data_compressed_bytes / $mr, 1))) FROM system.columns WHERE database = '$db' AND table = 'usage_1m' ORDER BY data_compressed_bytes DESC LIMIT 6" | tr '\n' ',' | sed 's/,$//; s/,/, /g')
	rm -f "$file"
done
