#!/usr/bin/env bash
# Short fuzzing runs of the reliability fuzz targets (docs/reliability.md),
# run from the repository root by scripts/test.sh after FuzzParse:
#   FuzzCheckOxcross  prober        the /oxcross answer parser and drift estimate
#   FuzzRegistration  configserver  PUT /api/v1/leaves/{id}: decoder, registry, /sd/leaves
#   FuzzLeafGroups    discovery     the /sd/leaves encoder
#   FuzzOriginGroups  discovery     the /sd/origins encoder
# Each runs for FUZZTIME_EACH (default 10s); `make fuzz-long` runs them for
# 5 minutes each. A failure leaves its input under the package's
# testdata/fuzz/, where `go test` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/../.."

fuzztime=${FUZZTIME_EACH:-10s}
for target in prober:FuzzCheckOxcross configserver:FuzzRegistration discovery:FuzzLeafGroups discovery:FuzzOriginGroups; do
  pkg=${target%%:*}
  name=${target#*:}
  printf -- '-- fuzz %s (./%s) for %s\n' "$name" "$pkg" "$fuzztime"
  go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "./$pkg"
done
echo "fuzz: 4 targets, $fuzztime each, no failure"
