#!/usr/bin/env bash
# Every Go test (go test -race -count=1 ./...) while busy loops keep every
# core busy: the tests must hold on a loaded contributor or CI machine, not
# only on an idle one. BUSY_LOOPS (default 4) CPU-bound shell loops run for
# the whole test run and are killed on exit, whatever the exit (pass, fail,
# Ctrl-C). Extra arguments go to go test (e.g. -run, a package list
# replacing ./...). Needs what scripts/test.sh needs; run
# scripts/install-deps.sh first on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

loops=${BUSY_LOOPS:-4}
pids=()

# shellcheck disable=SC2317 # reached through the traps
stop_loops() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
trap stop_loops EXIT
trap 'stop_loops; trap - INT; kill -INT $$' INT
trap 'stop_loops; exit 143' TERM

for _ in $(seq "$loops"); do
  sh -c 'while :; do :; done' &
  pids+=("$!")
done
echo "== $loops busy loops on $(nproc) cores (pids ${pids[*]})"

pkgs=(./...)
args=()
for a in "$@"; do
  case "$a" in
    ./*) pkgs=() ;;
  esac
done
[ $# -gt 0 ] && args=("$@")
if [ ${#pkgs[@]} -gt 0 ]; then args+=("${pkgs[@]}"); fi

echo "== go test -race -count=1 -timeout 30m ${args[*]}"
start=$(date +%s)
set +e
go test -race -count=1 -timeout 30m "${args[@]}"
rc=$?
set -e
secs=$(( $(date +%s) - start ))

if [ "$rc" -eq 0 ]; then
  echo "== test-busy: PASS, go test under $loops busy loops in ${secs}s"
else
  echo "== test-busy: FAIL (exit $rc), go test under $loops busy loops in ${secs}s"
fi
exit "$rc"
