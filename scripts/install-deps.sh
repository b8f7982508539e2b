#!/usr/bin/env bash
# Installs what `make test` and `make demo` need besides Go, when missing:
# Debian's ClickHouse (clickhouse-server and clickhouse-client, 18.16 on
# Debian 12), kcat (the e2e tests produce through it, a librdkafka client) and
# chromium (the dashboard's browser test drives it headless), zookeeper (the
# local ClickHouse cluster of internal/chtest coordinates its replicas and
# ON CLUSTER DDL through it; it brings Java) and docker-compose (deploy's test checks the compose files with
# `docker-compose config -q`, which needs no Docker daemon) and gcc with the C
# library's headers (the race detector needs cgo, and
# scripts/check-clickhouse-current.sh builds a small C program).
#
# Called by `make test`, `make demo` (scripts/demo.sh) and .ci/run. It does
# nothing when everything is present; otherwise it needs root and apt-get,
# and says so when it has neither. The packages' system service is never
# started: tests and the demo run private servers.
#
#   scripts/install-deps.sh          # install what is missing
#   scripts/install-deps.sh --check  # only report; exit 1 when something is missing
set -euo pipefail

packages=(clickhouse-server clickhouse-client kcat chromium zookeeper docker-compose gcc libc6-dev)

# have reports an executable command (bash's command -v also names a
# non-executable file when it finds nothing better).
have() {
	local p
	p=$(command -v "$1" 2>/dev/null) && [[ -x $p ]]
}

# /usr/sbin is often missing from a non-root PATH; Debian installs
# clickhouse-server there. The upstream packages ship a multi-tool clickhouse.
have_clickhouse() {
	have clickhouse-server || [[ -x /usr/sbin/clickhouse-server || -x /usr/bin/clickhouse ]] || have clickhouse
}

have_kcat() {
	have kcat
}

have_chromium() {
	have chromium || have chromium-browser || have google-chrome
}

have_zookeeper() {
	have java && [[ -f ${CHTEST_ZOOKEEPER_JAR:-/usr/share/java/zookeeper.jar} ]]
}

# Compose v2 (the docker CLI plugin) checks the files as well.
have_compose() {
	have docker-compose || docker compose version >/dev/null 2>&1
}

have_gcc() {
	have gcc && [[ -f /usr/include/stdio.h ]]
}

missing() {
	local m=()
	have_gcc || m+=(gcc)
	have_clickhouse || m+=(clickhouse-server)
	have_kcat || m+=(kcat)
	have_chromium || m+=(chromium)
	have_zookeeper || m+=(zookeeper)
	have_compose || m+=(docker-compose)
	echo "${m[*]}"
}

need=$(missing)
if [[ -z $need ]]; then
	exit 0
fi
if [[ ${1:-} == --check ]]; then
	echo "missing: $need" >&2
	exit 1
fi

install_cmd="apt-get install -y --no-install-recommends ${packages[*]}"
if [[ $(id -u) -ne 0 ]]; then
	cat >&2 <<EOF
error: $need missing, and installing needs root. Run once:
  sudo scripts/install-deps.sh
or install the Debian packages yourself:
  sudo $install_cmd
EOF
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	cat >&2 <<EOF
error: $need missing and apt-get not found (not Debian/Ubuntu). Install
ClickHouse (clickhouse-server, 18.16 or later), kcat, chromium, ZooKeeper and docker-compose with your
package manager, or point CHTEST_CLICKHOUSE_BIN at a clickhouse-server binary.
EOF
	exit 1
fi

echo "==> installing ${packages[*]} from Debian (missing: $need)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the package's init script from starting the system
# service; the tests and the demo run private servers.
added_policy=false
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	added_policy=true
fi
status=0
apt-get install -y -qq --no-install-recommends "${packages[@]}" || status=$?
if $added_policy; then
	rm -f /usr/sbin/policy-rc.d
fi
if [[ $status -ne 0 ]]; then
	echo "error: $install_cmd failed (exit $status)" >&2
	exit "$status"
fi
if need=$(missing) && [[ -n $need ]]; then
	echo "error: $need still missing after installing ${packages[*]}" >&2
	exit 1
fi
