#!/usr/bin/env bash
# Runs every Go benchmark once (-benchtime=1x) so that they keep compiling
# and running; the numbers mean nothing here. The long, machine-sized
# benchmark with real processes, wrk and blackbox_exporter is `make bench`
# (bench/run.sh, docs/performance.md), which CI does not run.
set -euo pipefail
cd "$(dirname "$0")/../.."

go test -run='^$' -bench=. -benchtime=1x ./...
bash -n bench/run.sh
