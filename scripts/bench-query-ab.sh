#!/usr/bin/env bash
# Wall time of a 30-day question by model as a CLI command, builds compared in
# turn: each run times one command of each build (bash's $EPOCHREALTIME around
# it), so both see the same moments of this noisy machine; then prints, per
# build, the deciles of its wall ms (0, 10, …, 100%; the median is the sixth).
#
#   scripts/bench-query-ab.sh RUNS QUESTION BIN...
#   DSN=clickhouse://127.0.0.1:19500/bench_query scripts/bench-query-ab.sh 41 usage bin/costpipe-old bin/costpipe
#
# QUESTION is usage or latency (--since 30d --by model) or growth (--by model).
# The data: `KEEP=1 scripts/bench-query.sh` keeps its work directory; serve it
# again with CLICKHOUSE_DIR=WORK/clickhouse CH_TCP_PORT=19500 scripts/clickhouse-local.sh.
set -euo pipefail
[[ $# -ge 3 ]] || { sed -n '2,12p' "$0" >&2; exit 2; }
n=$1 q=$2
shift 2
dsn=${DSN:-clickhouse://127.0.0.1:19500/bench_query}
case $q in
usage | latency) args=(--since 30d --by model) ;;
growth) args=(--by model) ;;
*) echo "unknown question $q: want usage, latency or growth" >&2; exit 2 ;;
esac
for _ in $(seq "$n"); do
	for b in "$@"; do
		t0=$EPOCHREALTIME
		"$b" --clickhouse "$dsn" query "$q" "${args[@]}" --format json >/dev/null
		t1=$EPOCHREALTIME
		echo "$b $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%d", (b - a) * 1e6}')"
	done
done | sort -k1,1 -k2n | awk '{v[$1] = v[$1] " " $2; c[$1]++}
END {
	for (b in v) {
		split(substr(v[b], 2), a, " "); n = c[b]; printf "%-24s", b
		for (p = 0; p <= 10; p++) { i = int(p * (n - 1) / 10) + 1; printf " %5.1f", a[i] / 1000 }
		printf "\n"
	}
}'
