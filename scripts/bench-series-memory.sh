#!/usr/bin/env bash
# Peak memory of a large answer: 300k loadgen events (growth scenario, 20
# tenants over 3 h) aggregated into a private ClickHouse, then `costpipe
# query series --step 1m --by tenant,model` over 6 days (about 1.4M values)
# in JSON and CSV, its peak RSS measured by /usr/bin/time, for each binary
# given (default bin/costpipe, built first); the outputs of the binaries
# are compared.
#
#   scripts/bench-series-memory.sh [BINARY...]
set -euo pipefail
cd "$(dirname "$0")/.."
state="$PWD/.costpipe/series-memory"
ch_port=19310 ch_http=18310 broker_port=19393 db=series_memory
bins=("$@")
if [[ ${#bins[@]} -eq 0 ]]; then scripts/build.sh bin/costpipe && bins=(bin/costpipe); fi
rm -rf "$state" && mkdir -p "$state"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
CLICKHOUSE_DIR="$state/clickhouse" CH_TCP_PORT=$ch_port CH_HTTP_PORT=$ch_http scripts/clickhouse-local.sh >"$state/ch.out" 2>&1 &
pids+=($!)
"${bins[0]}" broker --listen 127.0.0.1:$broker_port --partitions 2 >"$state/broker.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$ch_port) 2>/dev/null && break; sleep 0.2; done
export COSTPIPE_BROKERS=127.0.0.1:$broker_port COSTPIPE_CLICKHOUSE=clickhouse://127.0.0.1:$ch_port/$db
"${bins[0]}" loadgen --scenario growth --span 3h --tenants 20 --rate 30000 --duration 10s --quiet
"${bins[0]}" aggregate >"$state/aggregate.out" 2>&1 &
agg=$!
pids+=($agg)
landed() { curl -s --data-binary "SELECT sumMerge(requests) FROM $db.usage_1m" "http://127.0.0.1:$ch_http/" 2>/dev/null || true; }
until [[ "$(landed)" == 300000 ]]; do sleep 1; done
kill "$agg"
# One fixed range for every run (6 days of minutes, 8640 steps), so that
# the binaries' outputs can be compared.
to=$(date -u -d '+1 hour' +%Y-%m-%dT%H:00:00Z)
from=$(date -u -d "$to - 6 days" +%Y-%m-%dT%H:%M:%SZ)
for i in "${!bins[@]}"; do
	bin=${bins[$i]}
	for f in json csv; do
		/usr/bin/time -f "$bin --format $f: peak RSS %M KiB, %e s wall" -o "$state/time" \
			"$bin" query series --from "$from" --to "$to" --step 1m --by tenant,model --format $f >"$state/out.$i.$f"
		echo "$(cat "$state/time"), $(wc -l <"$state/out.$i.$f") lines"
		cmp -s "$state/out.0.$f" "$state/out.$i.$f" || echo "$bin --format $f: output differs from ${bins[0]}'s"
	done
done
