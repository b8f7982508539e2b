#!/usr/bin/env bash
# Builds the costpipe binary the one way the Makefile, the scripts and deploy/Dockerfile do:
#
#   scripts/build.sh [OUT]        # default bin/costpipe; VERSION=… sets `costpipe --version`,
#                                 # LDFLAGS=… adds linker flags, GOFLAGS=… go build flags
#
# * CGO_ENABLED=0: nothing in costpipe uses cgo; a static binary starts without the
#   dynamic loader and libc (about 2 ms of each command here) and runs on any Linux.
# * -tags urfave_cli_no_docs: leaves out urfave/cli's man page and Markdown writers, which
#   costpipe never calls; their Markdown library's init took 1.5 ms and 200 KiB of
#   every start, `--help` included (docs/BENCHMARKS.md, "Query speed").
set -euo pipefail
out="${1:-bin/costpipe}"
[[ "$out" == /* ]] || out="$PWD/$out"
cd "$(dirname "$0")/.."
version="${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}"
CGO_ENABLED=0 exec go build -tags urfave_cli_no_docs -ldflags "-X main.version=$version ${LDFLAGS:-}" -o "$out" ./cmd/costpipe
