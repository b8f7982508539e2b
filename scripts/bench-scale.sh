#!/usr/bin/env bash
# Aggregate throughput with 1 and 2 aggregator instances on 4 and 8 Kafka
# partitions (docs/BENCHMARKS.md, "Scaling out"). N JSON events (the loadgen
# growth scenario, 20 tenants over 3 h, keyed tenant\0model) are produced by
# kcat into a fresh `costpipe broker` with P partitions; then I aggregators
# of one group start and catch up into a fresh database. The script reports
# the catch-up's wall time and events/s (from the instances' start, group
# join included, to every event landed), and the CPU seconds of the aggregators, the broker and
# ClickHouse over that window, so the limit shows: the machine's cores are
# the budget.
#
#   scripts/bench-scale.sh [EVENTS]            # default 2000000; runs P in 4 8, I in 1 2
#   PARTITIONS="8" INSTANCES="1 2 3" scripts/bench-scale.sh 1000000
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-2000000}"
state="$PWD/.costpipe/scale"
ch_port=19120 ch_http=18220 broker_port=19194 metrics_base=19470

rm -rf "$state" && mkdir -p "$state"
bin="${COSTPIPE_BIN:-bin/costpipe}"
[[ -n "${COSTPIPE_BIN:-}" ]] || scripts/build.sh "$bin"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

CLICKHOUSE_DIR="$state/clickhouse" CH_TCP_PORT=$ch_port CH_HTTP_PORT=$ch_http scripts/clickhouse-local.sh >"$state/ch.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do (exec 3<>/dev/tcp/127.0.0.1/$ch_port) 2>/dev/null && break; sleep 0.2; done
ch_pid=$(pgrep -f -- "--config-file=$state/clickhouse" | head -1 || true)
[[ -n "$ch_pid" ]] || ch_pid=$(pgrep -f "$state/clickhouse" | tail -1)

"$bin" loadgen --output stdout --scenario growth --span 3h --tenants 20 --rate $((events / 10)) --duration 10s --quiet >"$state/events.jsonl"
perl -ne 'm/"tenant":"([^"]*)".*?"model":"([^"]*)"/ or die "no tenant/model: $_"; print "$1\0$2|$_"' \
	"$state/events.jsonl" >"$state/events.keyed"
rm "$state/events.jsonl"
n=$(wc -l <"$state/events.keyed")
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
secs() { echo "scale=2; $1 / $hz" | bc; }

printf '%-10s %-9s %8s %12s %14s %10s %12s\n' partitions instances wall_s events/s aggregators_cpu broker_cpu clickhouse_cpu
for parts in ${PARTITIONS:-4 8}; do
	for inst in ${INSTANCES:-1 2}; do
		db="scale_p${parts}_i${inst}"
		"$bin" broker --listen 127.0.0.1:$broker_port --partitions "$parts" >"$state/broker-$db.out" 2>&1 &
		broker=$!
		pids+=($broker)
		for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$broker_port) 2>/dev/null && break; sleep 0.1; done
		kcat -P -b 127.0.0.1:$broker_port -t costpipe.events -K '|' -H content-type=application/json \
			-X topic.partitioner=murmur2_random -X linger.ms=20 -X batch.num.messages=10000 \
			-X queue.buffering.max.messages=1000000 <"$state/events.keyed"
		export COSTPIPE_BROKERS=127.0.0.1:$broker_port COSTPIPE_CLICKHOUSE=clickhouse://127.0.0.1:$ch_port/$db
		"$bin" migrate >/dev/null
		b0=$(ticks "$broker") c0=$(ticks "$ch_pid") w0=$(date +%s.%N)
		aggs=()
		for i in $(seq 1 "$inst"); do
			"$bin" aggregate --group "scale-$db" --metrics-listen 127.0.0.1:$((metrics_base + i)) >"$state/aggregate-$db-$i.out" 2>&1 &
			aggs+=($!)
			pids+=($!)
		done
		until [[ "$(clickhouse-client --port $ch_port -q "SELECT sumMerge(requests) FROM $db.usage_1m" 2>/dev/null)" == "$n" ]]; do sleep 0.1; done
		w1=$(date +%s.%N)
		a1=0
		for p in "${aggs[@]}"; do a1=$((a1 + $(ticks "$p"))); done
		a0=0
		b1=$(ticks "$broker") c1=$(ticks "$ch_pid")
		wall=$(awk -v a="$w0" -v b="$w1" 'BEGIN{printf "%.2f", b - a}')
		printf '%-10s %-9s %8s %12s %14s %10s %12s\n' "$parts" "$inst" "$wall" "$(echo "$n / $wall" | bc)" \
			"$(secs $((a1 - a0)))" "$(secs $((b1 - b0)))" "$(secs $((c1 - c0)))"
		for p in "${aggs[@]}"; do kill "$p"; done
		kill "$broker"
		wait "${aggs[@]}" "$broker" 2>/dev/null || true
	done
done
echo "$n events; $(nproc) cores; $(go version | cut -d' ' -f3); load average $(cut -d' ' -f1-3 /proc/loadavg)"
