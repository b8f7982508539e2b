#!/usr/bin/env bash
# Runs a development ClickHouse server in the foreground (Ctrl-C stops it) on
# the address costpipe uses by default, clickhouse://127.0.0.1:9000/, without
# touching the system service or /etc/clickhouse-server. Data persists in
# CLICKHOUSE_DIR between runs. Tests do not need this: they start their own
# servers through internal/chtest.
#
#   scripts/clickhouse-local.sh            # native 127.0.0.1:9000, HTTP 127.0.0.1:8123
#   CH_TCP_PORT=19000 CH_HTTP_PORT=18123 CLICKHOUSE_DIR=/tmp/ch scripts/clickhouse-local.sh
#   CH_COMPRESSION=zstd scripts/clickhouse-local.sh   # parts compressed with ZSTD (docs/design.md)
set -euo pipefail

dir="${CLICKHOUSE_DIR:-${TMPDIR:-/tmp}/costpipe-clickhouse}"
tcp_port="${CH_TCP_PORT:-9000}"
http_port="${CH_HTTP_PORT:-8123}"

if [[ -n "${CHTEST_CLICKHOUSE_BIN:-}" ]]; then
	server=("$CHTEST_CLICKHOUSE_BIN")
	[[ $(basename "$CHTEST_CLICKHOUSE_BIN") == clickhouse ]] && server+=(server)
elif command -v clickhouse-server >/dev/null 2>&1; then
	server=("$(command -v clickhouse-server)")
elif [[ -x /usr/sbin/clickhouse-server ]]; then
	server=(/usr/sbin/clickhouse-server)
elif command -v clickhouse >/dev/null 2>&1; then
	server=("$(command -v clickhouse)" server)
else
	echo "clickhouse-server not found: run \`apt-get install -y clickhouse-server clickhouse-client\`" >&2
	exit 1
fi

# 18.x does not know --version; LowCardinality needs a flag there.
major=$("${server[@]}" --version 2>/dev/null | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n1 || true)
major="${major:-0}"
low_cardinality=""
if ((major < 19)); then
	low_cardinality="<allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>"
fi

# Server-wide part compression: ZSTD instead of the default LZ4 (18.16 has no
# per-column CODEC; this works on old and new servers alike).
compression=""
if [[ "${CH_COMPRESSION:-}" == zstd ]]; then
	compression="<compression><case><min_part_size>0</min_part_size><min_part_size_ratio>0</min_part_size_ratio><method>zstd</method></case></compression>"
fi

mkdir -p "$dir"/{data,tmp,user_files,format_schemas,log}
dir="$(cd "$dir" && pwd)"

cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<!-- Written by scripts/clickhouse-local.sh; rewritten on every run. -->
<yandex>
  <logger>
    <level>information</level>
    <log>$dir/log/server.log</log>
    <errorlog>$dir/log/server.err.log</errorlog>
    <size>100M</size>
    <count>3</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$tcp_port</tcp_port>
  <http_port>$http_port</http_port>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <mlock_executable>false</mlock_executable>
  $compression
</yandex>
XML

cat >"$dir/users.xml" <<XML
<?xml version="1.0"?>
<!-- Written by scripts/clickhouse-local.sh; rewritten on every run. -->
<yandex>
  <profiles>
    <default>
      <poll_interval>1</poll_interval>
      $low_cardinality
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default></default>
  </quotas>
</yandex>
XML

echo "clickhouse: native 127.0.0.1:$tcp_port, HTTP 127.0.0.1:$http_port, data and logs in $dir"
echo "DSN: clickhouse://127.0.0.1:$tcp_port/costpipe"
cd "$dir"
CLICKHOUSE_WATCHDOG_ENABLE=0 exec "${server[@]}" --config-file="$dir/config.xml"
