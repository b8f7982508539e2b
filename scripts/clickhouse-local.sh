#!/usr/bin/env bash
# Runs a development ClickHouse server in the foreground (Ctrl-C stops it) on
# the address costpipe uses by default, clickhouse://127.0.0.1:9000/, without
# touching the system service or /etc/clickhouse-server. Data persists in
# CLICKHOUSE_DIR between runs. Tests do not need this: they start their own
# servers through internal/chtest, whose configuration this server shares
# (internal/chtest/cmd/chlocal writes it, then becomes the server, so this
# script's process is the server's).
#
#   scripts/clickhouse-local.sh            # native 127.0.0.1:9000, HTTP 127.0.0.1:8123
#   CH_TCP_PORT=19000 CH_HTTP_PORT=18123 CLICKHOUSE_DIR=/tmp/ch scripts/clickhouse-local.sh
#   CH_COMPRESSION=zstd scripts/clickhouse-local.sh   # parts compressed with ZSTD (docs/design.md)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
(cd "$root" && go build -o bin/chlocal ./internal/chtest/cmd/chlocal)
exec "$root/bin/chlocal"
