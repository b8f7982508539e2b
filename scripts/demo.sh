#!/usr/bin/env bash
# make demo: everything on this machine, nothing to set up by hand.
#  1. installs ClickHouse from Debian when it is missing (scripts/install-deps.sh);
#  2. starts it under .costpipe/clickhouse in the checkout (127.0.0.1:19000);
#  3. runs `costpipe demo`: the embedded Kafka-protocol broker, the aggregator
#     and a traffic generator in one process, then prints a report and the
#     commands to explore further.
# The server is stopped at the end, so nothing is left running; its data stays
# in .costpipe/ (make clean), and the script prints the command that starts it
# again for those commands.
set -euo pipefail
cd "$(dirname "$0")/.."

tcp_port="${DEMO_CH_TCP_PORT:-19000}"
http_port="${DEMO_CH_HTTP_PORT:-18123}"
state="$PWD/.costpipe"

scripts/install-deps.sh # ClickHouse (and kcat) from Debian when missing; a no-op otherwise

if (exec 3<>"/dev/tcp/127.0.0.1/$tcp_port") 2>/dev/null; then
	echo "error: 127.0.0.1:$tcp_port is in use; set DEMO_CH_TCP_PORT to a free port" >&2
	exit 1
fi

mkdir -p "$state"
echo "==> starting ClickHouse under .costpipe/clickhouse (127.0.0.1:$tcp_port, log .costpipe/clickhouse/log/)"
# The same command, run from the checkout, starts it again after the demo.
start_ch="CLICKHOUSE_DIR=.costpipe/clickhouse CH_TCP_PORT=$tcp_port CH_HTTP_PORT=$http_port scripts/clickhouse-local.sh"
CLICKHOUSE_DIR=.costpipe/clickhouse CH_TCP_PORT="$tcp_port" CH_HTTP_PORT="$http_port" \
	scripts/clickhouse-local.sh >"$state/clickhouse.out" 2>&1 &
ch_pid=$!
cleanup() {
	kill "$ch_pid" 2>/dev/null || true
	pkill -TERM -f "$state/clickhouse/config.xml" 2>/dev/null || true
	wait "$ch_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$tcp_port") 2>/dev/null; then
		break
	fi
	if ! kill -0 "$ch_pid" 2>/dev/null; then
		echo "error: ClickHouse did not start; see $state/clickhouse.out" >&2
		cat "$state/clickhouse.out" >&2
		exit 1
	fi
	sleep 0.2
done

echo "==> building costpipe"
scripts/build.sh bin/costpipe
bin/costpipe --clickhouse "clickhouse://127.0.0.1:$tcp_port/costpipe_demo" demo --reset "$@"

# The demo's ClickHouse stops with the script: say how to bring it back for
# the commands the report ends with.
cleanup
trap - EXIT
echo
echo "==> ClickHouse is stopped now; its data stays in .costpipe/clickhouse (make clean deletes it)."
echo "    For the commands above, start it again in $PWD (Ctrl-C stops it) and run them from another terminal:"
echo "      $start_ch"
