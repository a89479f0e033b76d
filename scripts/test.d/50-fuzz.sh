#!/usr/bin/env bash
# Short fuzzing runs of the reliability fuzz targets (docs/reliability.md),
# run from the repository root by scripts/test.sh after FuzzParse:
#   FuzzCheckOxcross  prober        the /oxcross answer parser and drift estimate
#   FuzzRegistration  configserver  PUT /api/v1/leaves/{id}: decoder, registry, /sd/leaves
#   FuzzLeafGroups    discovery     the /sd/leaves encoder
#   FuzzOriginGroups  discovery     the /sd/origins encoder
# Each runs for a count of executions (about 10 s each on this kind of
# machine), not a duration: with a duration, go1.26's fuzzing coordinator
# can fail a target with a bare "context deadline exceeded" when its
# -fuzztime ends while a starved worker is mid-call (golang/go#75804, fixed
# in Go 1.27), a failure with no input behind it. FUZZTIME_EACH overrides
# the budget for every target (`make fuzz-long` sets 5m). A failure leaves
# its input under the package's testdata/fuzz/, where `go test` replays it
# from then on.
set -euo pipefail
cd "$(dirname "$0")/../.."

for target in prober:FuzzCheckOxcross:60000x configserver:FuzzRegistration:20000x discovery:FuzzLeafGroups:120000x discovery:FuzzOriginGroups:120000x; do
  IFS=: read -r pkg name budget <<<"$target"
  budget=${FUZZTIME_EACH:-$budget}
  printf -- '-- fuzz %s (./%s) for %s\n' "$name" "$pkg" "$budget"
  go test -run='^$' -fuzz="^${name}\$" -fuzztime="$budget" -timeout=10m "./$pkg"
done
echo "fuzz: 4 targets, no failure"
