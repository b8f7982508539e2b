#!/usr/bin/env bash
# A/B of the aggregator's catch-up CPU per event: runs scripts/bench-catchup.sh
# alternately with two builds on the same saved events, RUNS times each, and
# prints every run and the median per build. This 2-vCPU machine's figure
# moves by ±15% from run to run, so a change worth a few percent needs
# several interleaved runs to show.
#
#   scripts/bench-catchup-ab.sh OLD_BINARY NEW_BINARY [RUNS] [EVENTS]   # RUNS default 5
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 2 ]] || { echo "usage: $0 OLD_BINARY NEW_BINARY [RUNS] [EVENTS]" >&2; exit 2; }
a=$(realpath "$1") b=$(realpath "$2") runs="${3:-5}" events="${4:-3000000}"
for bin in "$a" "$b"; do [[ -x "$bin" ]] || { echo "$bin: not an executable" >&2; exit 2; }; done
declare -A got
for i in $(seq 1 "$runs"); do
	for bin in "$a" "$b"; do
		out=$(REUSE_EVENTS=1 COSTPIPE_BIN="$bin" scripts/bench-catchup.sh "$events")
		line=$(grep '^catch-up of' <<<"$out")
		flushes=$(grep '^flushes' <<<"$out")
		us=$(sed -E 's/.* = ([0-9.]+) µs\/event.*/\1/' <<<"$line")
		got[$bin]+="$us "
		echo "run $i $(basename "$bin"): $line; $flushes; load $(cut -d' ' -f1 /proc/loadavg)"
	done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
for bin in "$a" "$b"; do
	echo "$(basename "$bin"): µs/event ${got[$bin]}→ median $(median <<<"${got[$bin]}")"
done
