#!/usr/bin/env bash
# Prints the deb and rpm package version, derived from `git describe`:
#   HEAD tagged v1.2.3                   1.2.3
#   HEAD tagged v1.3.0-rc.1              1.3.0~rc.1  (a release candidate sorts before 1.3.0)
#   4 commits after v1.2.3               1.2.3+git20261125192700.4.87f02ad
#   no v* tag yet                        0.0.0~git20261125192700.87f02ad
#   uncommitted changes                  the above + .dirty
# The timestamp is HEAD's commit time (UTC), so later commits get higher
# versions and a rebuild of the same commit gets the same version. Valid for
# dpkg and rpm alike: digits first, only [0-9A-Za-z.+~], no '-'.
set -euo pipefail
cd "$(dirname "$0")/.."

sha=$(git rev-parse --short=7 HEAD)
stamp=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S HEAD)
dirty=""
git diff --quiet HEAD -- 2>/dev/null || dirty=".dirty"

if desc=$(git describe --tags --long --match 'v[0-9]*' HEAD 2>/dev/null); then
  # v1.2.3-4-g87f02ad, v1.3.0-rc.1-0-g87f02ad
  tag=${desc%-*-g*}
  rest=${desc#"$tag"-}
  ahead=${rest%%-g*}
  base=${tag#v}
  base=${base//-/\~}
  if [ "$ahead" = 0 ]; then
    version=$base
  else
    version="$base+git$stamp.$ahead.$sha"
  fi
else
  version="0.0.0~git$stamp.$sha"
fi
version+=$dirty

if ! [[ $version =~ ^[0-9][0-9A-Za-z.+~]*$ ]]; then
  echo "version.sh: '$version' (from '${desc:-no tag}') is not a valid package version" >&2
  exit 1
fi
echo "$version"
