#!/usr/bin/env bash
# End-to-end benchmark on one machine, in the production topology: separate
# processes for ClickHouse, the broker (`costpipe broker`), the aggregator
# (`costpipe aggregate`) and the generator (`costpipe loadgen`, JSON through
# the Go SDK). Reports the achieved rate, the aggregator's RSS after 1M and
# 10M events, event-to-queryable freshness (probe events, p50/p99/max) and
# checks that ClickHouse holds exactly what was sent.
#
#   scripts/bench-e2e.sh [RATE] [DURATION]      # default 250000 60s
#   AGG_FLAGS="--dedupe-max-ids 100000" FLUSH=2s scripts/bench-e2e.sh   # extra aggregate flags
set -euo pipefail
cd "$(dirname "$0")/.."
rate="${1:-250000}"
duration="${2:-60s}"
flush="${FLUSH:-5s}"
state="$PWD/.costpipe/bench"
ch_port=19100 ch_http=18200 broker_port=19192 metrics_port=19464
db=costpipe_bench

rm -rf "$state" && mkdir -p "$state"
scripts/build.sh bin/costpipe
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

CLICKHOUSE_DIR="$state/clickhouse" CH_TCP_PORT=$ch_port CH_HTTP_PORT=$ch_http scripts/clickhouse-local.sh >"$state/ch.out" 2>&1 &
pids+=($!)
bin/costpipe broker --listen 127.0.0.1:$broker_port --partitions 6 >"$state/broker.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$ch_port) 2>/dev/null && break; sleep 0.2; done
export COSTPIPE_BROKERS=127.0.0.1:$broker_port COSTPIPE_CLICKHOUSE=clickhouse://127.0.0.1:$ch_port/$db
bin/costpipe aggregate ${AGG_FLAGS:-} --flush-interval "$flush" --metrics-listen 127.0.0.1:$metrics_port >"$state/aggregate.out" 2>&1 &
agg=$!
pids+=($agg)
sleep 2

metric() { curl -s "127.0.0.1:$metrics_port/metrics" | awk -v m="$1" '$1==m {print $2}' | head -1; }
rss_kb() { awk '/VmRSS/ {print $2}' /proc/$agg/status; }

# Freshness probes: one event at a time, timed from produce to queryable.
probe() {
	local i=0
	: >"$state/freshness.txt"
	while [[ -f "$state/running" ]]; do
		i=$((i + 1))
		local ts; ts=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
		local t0; t0=$(date +%s%N)
		echo "{\"event_id\":\"probe-$i-$t0\",\"timestamp\":\"$ts\",\"tenant\":\"freshness-probe\",\"application\":\"probe-$i\",\"provider\":\"openai\",\"model\":\"gpt-4o-mini\",\"status\":\"ok\",\"input_tokens\":1}" |
			bin/costpipe produce >/dev/null 2>&1 || continue
		while [[ -f "$state/running" ]]; do
			n=$(clickhouse-client --port $ch_port -q "SELECT count() FROM $db.usage_1m WHERE tenant='freshness-probe' AND application='probe-$i'" 2>/dev/null || echo 0)
			[[ "$n" != "0" ]] && break
			sleep 0.05
		done
		echo $((($(date +%s%N) - t0) / 1000000)) >>"$state/freshness.txt"
		sleep 0.5
	done
}
touch "$state/running"
probe &
probe_pid=$!

bin/costpipe loadgen --rate "$rate" --duration "$duration" --encoding json --seed 7 >"$state/loadgen.out" 2>"$state/loadgen.err" &
gen=$!
rss1=""
while kill -0 $gen 2>/dev/null; do
	n=$(metric costpipe_events_in_total); n=${n:-0}
	if [[ -z "$rss1" ]] && awk -v n="$n" 'BEGIN{exit !(n>=1000000)}'; then rss1=$(rss_kb); echo "aggregator RSS after $(printf %.0f "$n") events: $((rss1 / 1024)) MiB"; fi
	if [[ -z "${rss10:-}" ]] && awk -v n="$n" 'BEGIN{exit !(n>=10000000)}'; then rss10=$(rss_kb); echo "aggregator RSS after $(printf %.0f "$n") events: $((rss10 / 1024)) MiB"; fi
	sleep 1
done
wait $gen || { echo "loadgen failed:"; cat "$state/loadgen.err"; exit 1; }
tail -c 400 "$state/loadgen.err" | tr '\r' '\n' | tail -2
sent=$(grep -o 'wrote [0-9]*' "$state/loadgen.err" | tail -1 | awk '{print $2}')

# Wait until everything is landed.
for _ in $(seq 1 120); do
	lag=$(curl -s "127.0.0.1:$metrics_port/metrics" | awk '$1 ~ /^costpipe_consumer_lag_records/ {s+=$2} END {print s+0}')
	[[ "$lag" == "0" ]] && break
	sleep 1
done
sleep "$(( ${flush%s} + 2 ))"
rm -f "$state/running"; wait $probe_pid 2>/dev/null || true
echo "aggregator RSS at the end: $(( $(rss_kb) / 1024 )) MiB; events in: $(metric costpipe_events_in_total)"
landed=$(clickhouse-client --port $ch_port -q "SELECT sumMerge(requests) FROM $db.usage_1m WHERE tenant != 'freshness-probe'")
dups=$(metric costpipe_duplicates_total)
echo "events landed in usage_1m (without probes): $landed"
sort -n "$state/freshness.txt" | awk '{a[NR]=$1} END {if (NR==0) {print "no freshness probes"; exit} ; p50=a[int((NR+1)*0.5)]; i=int(NR*0.99+0.999); if (i<1) i=1; if (i>NR) i=NR; printf "freshness (produce → queryable), %d probes: p50 %d ms, p99 %d ms, max %d ms (flush interval '"$flush"')\n", NR, p50, a[i], a[NR]}'
