#!/usr/bin/env bash
# The whole test suite: formatting, vet, staticcheck, every Go test with the
# race detector (unit, fuzz seeds and the end-to-end tests that run the real
# binaries on loopback), then a short fuzzing run of the config parser.
# Needs Go (and gcc for -race); Go tools come from the Go module proxy
# (tools/go.mod) and Debian packages from scripts/packages.d/*.txt, installed
# first by scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "Debian packages the tests use (scripts/packages.d)"
bash scripts/install-deps.sh

step "gofmt"
unformatted=$(gofmt -l $(find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "staticcheck (from tools/go.mod)"
go tool -modfile=tools/go.mod staticcheck ./...

step "go test -race"
go test -race -count=1 -timeout 20m ./...

# A count of executions (about 30 s here), not a duration: see
# scripts/test.d/50-fuzz.sh (golang/go#75804).
step "fuzz the config parser (${FUZZTIME:=300000x})"
go test -run='^$' -fuzz='^FuzzParse$' -fuzztime="$FUZZTIME" -timeout=10m ./config

# Suites outside the Go module (mixin, packages, ...): each script in
# scripts/test.d runs from the repository root and fails on any error.
for suite in scripts/test.d/*.sh; do
  [ -e "$suite" ] || continue
  step "$suite"
  bash "$suite"
done

step "all tests passed"
