#!/usr/bin/env bash
# Checks that the SQL costpipe sends works on a current ClickHouse, not only on
# the 18.16 the tests run (production runs 24.x/25.x and later):
#
#  1. starts a private 18.16 server and runs costpipe against it with every
#     query logged: the demo (migrations 0001–0010, the aggregator, live
#     alerts, the report), every `query` command in every format, the HTTP
#     API (`serve`), retention, derive, reprice, an alerts backtest and a
#     rebuild of the per-model summaries;
#  2. replays everything costpipe sent (scripts/compat) on ClickHouse 26.5
#     embedded as a library (libchdb from the chdb project, downloaded once from
#     the npm registry into .costpipe/, pinned by version and checksum) and on
#     18.16 itself, each in a fresh database (on 26.5 in UTC, Europe/Berlin and
#     America/New_York), and fails if a statement fails on either or the two
#     answer differently.
#
# Needs gcc (the replay's runner is a small C program linked to libchdb) and
# scripts/install-deps.sh's ClickHouse. About a minute after the first download
# (166 MB).
#
#   scripts/check-clickhouse-current.sh
#   COMPAT_KEEP=1 scripts/check-clickhouse-current.sh   # keep the run, the replay and both answers
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
chdb="$root/.costpipe/chdb"
state=$(mktemp -d /tmp/costpipe-compat.XXXXXX)
ch_port=19140 ch_http=18240
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[[ -n "${COMPAT_KEEP:-}" ]] && echo "kept $state" || rm -rf "$state"
}
trap cleanup EXIT

command -v gcc >/dev/null || { echo "check-clickhouse-current: needs gcc (apt-get install gcc)" >&2; exit 1; }
go run ./scripts/compat -fetch "$chdb"
gcc -O1 -o "$chdb/chdb_runner" scripts/compat/chdb/chdb_runner.c -L"$chdb" -lchdb -Wl,-rpath,"$chdb"

scripts/build.sh "$state/costpipe"
if (exec 3<>/dev/tcp/127.0.0.1/$ch_port) 2>/dev/null; then
	echo "check-clickhouse-current: port $ch_port is taken (another run of this script?)" >&2
	exit 1
fi
CLICKHOUSE_DIR="$state/clickhouse" CH_TCP_PORT=$ch_port CH_HTTP_PORT=$ch_http scripts/clickhouse-local.sh >"$state/clickhouse.out" 2>&1 &
pids+=($!)
up=false
for _ in $(seq 1 150); do (exec 3<>/dev/tcp/127.0.0.1/$ch_port) 2>/dev/null && up=true && break; sleep 0.2; done
$up || { cat "$state/clickhouse.out" >&2; echo "check-clickhouse-current: ClickHouse did not start on port $ch_port in 30 s" >&2; exit 1; }

db=costpipe_demo_compat_src # the demo runs only in costpipe_demo* databases
export COSTPIPE_CLICKHOUSE="clickhouse://127.0.0.1:$ch_port/$db?log_queries=1"
cp="$state/costpipe"
log="$state/run.out"
# step runs one command of the run; the first that fails ends the check.
step() {
	"$@" >>"$log" 2>&1 && return
	tail -20 "$log" >&2
	echo "check-clickhouse-current: failed on 18.16: ${*#"$cp"}" >&2
	exit 1
}
echo "==> costpipe against ClickHouse 18.16, every query logged (output in $log)"
step "$cp" demo --duration 10s --rate 2000 --alerts-wait 3s
for f in table json csv arrow; do step "$cp" query usage --since 30d --by tenant,model --format "$f"; done
step "$cp" query usage --since 2h --by model --compare --reprice pipelines/pricing/default_prices.yaml
step "$cp" query usage --since 7d --by provider,service_tier --where tenant=acme-corp
step "$cp" query latency --since 30d --by model
step "$cp" query latency --since 3h --by tenant --format json
step "$cp" query top --since 30d --by tenant --limit 5
step "$cp" query top --since 30d --by model --metric tokens
for s in 1m 1h 1d; do step "$cp" query series --since 2h --step "$s" --by model; done
step "$cp" query series --since 30d --step 1d
step "$cp" query growth --by model
step "$cp" query growth --by tenant --metric requests
step "$cp" query forecast --by tenant --budget 1000
step "$cp" query forecast --period week
step "$cp" derive --once
# A corrected catalog (every output price of 1.6 USD per million tokens halved), so
# that reprice writes its corrections.
sed 's/output: "1.6"$/output: "0.8"/' pipelines/pricing/default_prices.yaml >"$state/prices.yaml"
step "$cp" reprice --prices "$state/prices.yaml" --from "$(date -u -d '-3 days' +%F)" --to "$(date -u -d '+1 day' +%F)"
step "$cp" alerts backtest --rules docs/alerts-example.yaml --from "$(date -u -d '-7 days' +%F)"
# Refill the per-model summaries month by month (the weekly one by its weeks' Mondays).
step "$cp" migrate --rebuild-summaries
# The HTTP API and the dashboard's batch (docs/serve.md), each answer required to be a 200.
echo "compat-key *" >"$state/keys"
"$cp" serve --keys "$state/keys" --listen 127.0.0.1:18241 >>"$log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/18241) 2>/dev/null && break; sleep 0.1; done
step go run ./scripts/compat -api http://127.0.0.1:18241 -key compat-key
step "$cp" retention --keep-minutes 2d --keep-hours 2d --max-event-age 1d

echo "==> replay on ClickHouse 26.5 (libchdb) and 18.16"
go run ./scripts/compat -http "http://127.0.0.1:$ch_http" -src "$db" -dst costpipe_compat_dst \
	-runner "$chdb/chdb_runner" -work "$state/replay"
