#!/usr/bin/env bash
# make demo: everything on this machine, nothing to set up by hand.
#  1. installs ClickHouse from Debian when it is missing (and says so);
#  2. starts it under .costpipe/clickhouse in the checkout (127.0.0.1:19000);
#  3. runs `costpipe demo`: the embedded Kafka-protocol broker, the aggregator
#     and a traffic generator in one process, then prints a report.
# The server is stopped at the end; its data stays in .costpipe/ (make clean).
set -euo pipefail
cd "$(dirname "$0")/.."

tcp_port="${DEMO_CH_TCP_PORT:-19000}"
http_port="${DEMO_CH_HTTP_PORT:-18123}"
state="$PWD/.costpipe"

have_clickhouse() {
	command -v clickhouse-server >/dev/null 2>&1 || [[ -x /usr/sbin/clickhouse-server ]] || command -v clickhouse >/dev/null 2>&1
}
if ! have_clickhouse; then
	echo "==> ClickHouse is not installed: installing Debian's clickhouse-server and clickhouse-client (needs root)"
	sudo_cmd=""
	[[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
	export DEBIAN_FRONTEND=noninteractive
	$sudo_cmd apt-get update -qq
	added_policy=false
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then # keep the system service from starting
		printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee /usr/sbin/policy-rc.d >/dev/null
		$sudo_cmd chmod +x /usr/sbin/policy-rc.d
		added_policy=true
	fi
	$sudo_cmd apt-get install -y -qq --no-install-recommends clickhouse-server clickhouse-client
	$added_policy && $sudo_cmd rm -f /usr/sbin/policy-rc.d
fi

if (exec 3<>"/dev/tcp/127.0.0.1/$tcp_port") 2>/dev/null; then
	echo "error: 127.0.0.1:$tcp_port is in use; set DEMO_CH_TCP_PORT to a free port" >&2
	exit 1
fi

mkdir -p "$state"
echo "==> starting ClickHouse under .costpipe/clickhouse (127.0.0.1:$tcp_port, log .costpipe/clickhouse/log/)"
CLICKHOUSE_DIR="$state/clickhouse" CH_TCP_PORT="$tcp_port" CH_HTTP_PORT="$http_port" \
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
go build -o bin/costpipe ./cmd/costpipe
bin/costpipe --clickhouse "clickhouse://127.0.0.1:$tcp_port/costpipe_demo" demo --reset "$@"
