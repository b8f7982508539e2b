#!/usr/bin/env bash
# Aggregator CPU per event, end to end: N JSON events (the loadgen growth
# scenario, 20 tenants over 3 h), keyed tenant\0model, are produced to
# `costpipe broker` by kcat (librdkafka) first; then `costpipe aggregate` starts and catches up. The
# script reports the aggregator's CPU seconds (user + system, from
# /proc/PID/stat) from its first consumed record until every event is landed,
# divided by the events, and checks that ClickHouse holds all of them.
#
#   scripts/bench-catchup.sh [EVENTS]          # default 3000000
#   AGG_FLAGS="--dedupe-window 0" scripts/bench-catchup.sh 1000000
#   KCAT_FLAGS="-X compression.codec=lz4" scripts/bench-catchup.sh   # compressed producer batches
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-3000000}"
state="$PWD/.costpipe/catchup"
ch_port=19110 ch_http=18210 broker_port=19193 metrics_port=19465
db=costpipe_catchup

rm -rf "$state" && mkdir -p "$state"
bin="${COSTPIPE_BIN:-bin/costpipe}" # COSTPIPE_BIN: measure another build
[[ -n "${COSTPIPE_BIN:-}" ]] || scripts/build.sh "$bin"
# One CPU probe pinned to each core (scripts/cpuprobe): how fast the host let
# this machine run during the measured window, against its fastest (the 5th
# percentile of its units) over the whole script. On a shared VM the same
# work's CPU time varies up to 2x within a minute, in phases of a few seconds,
# invisibly to the guest (docs/BENCHMARKS.md).
go build -o "$state/cpuprobe" ./scripts/cpuprobe
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

CLICKHOUSE_DIR="$state/clickhouse" CH_TCP_PORT=$ch_port CH_HTTP_PORT=$ch_http scripts/clickhouse-local.sh >"$state/ch.out" 2>&1 &
pids+=($!)
env ${BROKER_ENV:-} "$bin" broker --listen 127.0.0.1:$broker_port --partitions 6 >"$state/broker.out" 2>&1 &
pids+=($!)
# The CPUs this script may run on (a cpuset may not start at 0).
cpus=$(awk '/^Cpus_allowed_list:/ {print $2}' /proc/self/status | tr ',' '\n' |
	awk -F- '{for (c = $1; c <= ($2 == "" ? $1 : $2); c++) print c}')
for cpu in $cpus; do
	taskset -c "$cpu" "$state/cpuprobe" >"$state/probe-cpu$cpu" &
	pids+=($!)
done
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$ch_port) 2>/dev/null && break; sleep 0.2; done
export COSTPIPE_BROKERS=127.0.0.1:$broker_port COSTPIPE_CLICKHOUSE=clickhouse://127.0.0.1:$ch_port/$db

rate=$((events / 10))
# REUSE_EVENTS=1 keeps the generated events for the next run (in
# .costpipe/catchup-events-N.keyed; event times are relative to when they
# were generated, so reuse them within hours, not days).
cache="$PWD/.costpipe/catchup-events-$events.keyed"
keyed="$state/events.keyed"
if [[ -n "${REUSE_EVENTS:-}" && -s "$cache" ]]; then
	keyed=$cache
else
	"$bin" loadgen --output stdout --scenario growth --span 3h --tenants 20 --rate "$rate" --duration 10s --quiet >"$state/events.jsonl"
	# Records keyed as the contract says (tenant \0 model), so one key's events
	# share a partition; kcat hashes keys as the Java client does.
	perl -ne 'm/"tenant":"([^"]*)".*?"model":"([^"]*)"/ or die "no tenant/model: $_"; print "$1\0$2|$_"' \
		"$state/events.jsonl" >"$state/events.keyed"
	rm "$state/events.jsonl"
	if [[ -n "${REUSE_EVENTS:-}" ]]; then mv "$keyed" "$cache" && keyed=$cache; else rm -f "$cache"; fi
fi
n=$(wc -l <"$keyed")
t0=$(date +%s.%N)
kcat -P -b 127.0.0.1:$broker_port -t costpipe.events -K '|' -H content-type=application/json \
	-X topic.partitioner=murmur2_random -X linger.ms=20 -X batch.num.messages=10000 \
	-X queue.buffering.max.messages=1000000 ${KCAT_FLAGS:-} <"$keyed"
echo "produced $n events with kcat in $(echo "$(date +%s.%N) - $t0" | bc) s"

env ${AGG_ENV:-} "$bin" aggregate ${AGG_FLAGS:-} --metrics-listen 127.0.0.1:$metrics_port >"$state/aggregate.out" 2>&1 &
agg=$!
pids+=($agg)
metric() { curl -s "127.0.0.1:$metrics_port/metrics" | awk -v m="$1" '$1==m {print $2}' | head -1; }
cpu() { awk '{print $14 + $15}' /proc/$agg/stat; } # clock ticks, user + system
sys() { awk '{print $15}' /proc/$agg/stat; }
faults() { awk '{print $10}' /proc/$agg/stat; } # minor page faults
hz=$(getconf CLK_TCK)
until [[ "$(metric costpipe_events_in_total)" != "" && "$(metric costpipe_events_in_total)" != "0" ]]; do sleep 0.05; done
c0=$(cpu) s0=$(sys) f0=$(faults) w0=$(date +%s.%N) ms0=$(date +%s%3N)
if [[ -n "${PROFILE:-}" ]]; then # PROFILE=1: a 10 s CPU profile of the catch-up
	curl -s -o "$state/cpu.pprof" "127.0.0.1:$metrics_port/debug/pprof/profile?seconds=10" &
	prof=$!
fi
# Polled over HTTP with curl: a clickhouse-client process costs about 0.1 s
# of CPU to start, and five a second took a quarter of this 2-core machine
# from the aggregator being measured.
landed() { curl -s --data-binary "SELECT sumMerge(requests) FROM $db.usage_1m" "http://127.0.0.1:$ch_http/" 2>/dev/null || true; }
until [[ "$(landed)" == "$n" ]]; do sleep 0.2; done
c1=$(cpu) s1=$(sys) f1=$(faults) w1=$(date +%s.%N) ms1=$(date +%s%3N)
rss=$(awk '/VmHWM/ {print $2}' /proc/$agg/status)
flushes=$(metric costpipe_flushes_total) flush_rows=$(metric costpipe_flush_rows_sum) flush_s=$(metric costpipe_flush_duration_seconds_sum)
[[ -n "${PROFILE:-}" ]] && curl -s -o "$state/allocs.pprof" "127.0.0.1:$metrics_port/debug/pprof/allocs"
cpu_s=$(echo "scale=3; ($c1 - $c0) / $hz" | bc)
sys_s=$(echo "scale=3; ($s1 - $s0) / $hz" | bc)
wall=$(echo "scale=3; $w1 - $w0" | bc)
echo "catch-up of $n events: wall ${wall} s, aggregator CPU ${cpu_s} s = $(echo "scale=3; $cpu_s * 1000000 / $n" | bc) µs/event (system ${sys_s} s, $((f1 - f0)) page faults), peak RSS $((rss / 1024)) MiB"
echo "flushes ${flushes:-?} landing ${flush_rows:-?} rollup rows in ${flush_s:-?} s of wall time (the first flushes of the catch-up)"
host=()
for cpu in $cpus; do
	summary=$("$state/cpuprobe" -window "$ms0,$ms1" <"$state/probe-cpu$cpu")
	f=${summary##* }
	[[ $f == unknown ]] || f=${f}x
	host+=("cpu$cpu $f")
done
# Not a correction factor: on cores this busy the probe itself reads up to 1.3x
# at the host's full speed (its units start on caches the others evicted).
echo "host speed in the window (scripts/cpuprobe, its CPU time per unit of work against its fastest in this run, the 5th percentile of its units): ${host[*]}"
echo "flags: ${AGG_FLAGS:-(defaults)}${AGG_ENV:+; env $AGG_ENV}; $(nproc) cores; $(go version | cut -d' ' -f3); load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -n "${PROFILE:-}" ]]; then wait "$prof" || true; echo "profile: go tool pprof -top $bin $state/cpu.pprof"; fi
