#!/usr/bin/env bash
# Builds the deb and rpm packages of oxcross-leaf, oxcross-origin and
# oxcross-configserver into dist/, for each ARCH given (default: amd64 arm64).
# Run through `make package` (PKG_ARCHES="amd64" for one architecture), which
# passes the Makefile's LDFLAGS (version, revision, branch, build user and
# date for prometheus/common/version) and PKG_VERSION (packaging/version.sh).
# Static binaries: CGO_ENABLED=0, -trimpath. nfpm runs as a Go tool from
# tools/go.mod, so nothing but Go is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${GO:=go}"
: "${LDFLAGS:?run this through make package, which sets LDFLAGS}"
: "${PKG_VERSION:=$(bash packaging/version.sh)}"
: "${PKG_MAINTAINER:=Oxcross maintainers <maintainers@oxcross.invalid>}"
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(amd64 arm64)
names=(oxcross-leaf oxcross-origin oxcross-configserver)
export BUILD=dist/build PKG_VERSION PKG_MAINTAINER   # the nfpm configs read them, and ARCH

# Maintainer scripts: one set of templates for the three packages.
# A Debian changelog with one entry for this build (policy wants one; the
# commit log is the real one), dated like HEAD so rebuilds are identical.
revision=$(git rev-parse HEAD)
date=$(date -R -u -d "@$(git log -1 --format=%ct HEAD)")
rm -rf "$BUILD/scripts" "$BUILD/changelog"
for name in "${names[@]}"; do
  mkdir -p "$BUILD/scripts/$name" "$BUILD/changelog/$name"
  for s in postinstall preremove postremove; do
    sed "s/@NAME@/$name/g" "packaging/scripts/$s.sh" > "$BUILD/scripts/$name/$s.sh"
  done
  cat > "$BUILD/changelog/$name/changelog.Debian" <<CHANGELOG
$name ($PKG_VERSION-1) unstable; urgency=medium

  * Built from commit $revision
    of https://github.com/oxcross/oxcross.

 -- $PKG_MAINTAINER  $date
CHANGELOG
  gzip -9nf "$BUILD/changelog/$name/changelog.Debian"
  # The same entry for the rpm (%changelog, in chglog's format), given to
  # nfpm in a copy of the package's config: nfpm would put a changelog in the
  # deb too.
  cat > "$BUILD/changelog/$name/changelog.yml" <<CHANGELOG
- semver: $PKG_VERSION-1
  date: $(date -u -d "@$(git log -1 --format=%ct HEAD)" +%Y-%m-%dT%H:%M:%SZ)
  packager: $PKG_MAINTAINER
  changes:
    - note: Built from commit $revision of https://github.com/oxcross/oxcross.
CHANGELOG
  { cat "packaging/nfpm/$name.yaml"; echo "changelog: $BUILD/changelog/$name/changelog.yml"; } > "$BUILD/changelog/$name/nfpm-rpm.yaml"
done

# Man pages and shell completions, from the programs themselves (kingpin's
# --help-man, --completion-script-bash and --completion-script-zsh), built
# for this machine with the same version ldflags; the same for every arch.
echo "building the man pages and shell completions"
rm -rf "$BUILD/host" "$BUILD/man" "$BUILD/completion"
mkdir -p "$BUILD/man" "$BUILD/completion/bash" "$BUILD/completion/zsh"
CGO_ENABLED=0 $GO build -trimpath -ldflags "$LDFLAGS" -o "$BUILD/host/" ./cmd/oxcross-leaf ./cmd/oxcross-origin ./cmd/oxcross-configserver
for name in "${names[@]}"; do
  "$BUILD/host/$name" --help-man | gzip -9n > "$BUILD/man/$name.1.gz"
  "$BUILD/host/$name" --completion-script-bash > "$BUILD/completion/bash/$name"
  "$BUILD/host/$name" --completion-script-zsh > "$BUILD/completion/zsh/_$name"
done

for arch in "${arches[@]}"; do
  echo "building the binaries for linux/$arch"
  CGO_ENABLED=0 GOOS=linux GOARCH=$arch $GO build -trimpath -ldflags "$LDFLAGS -s -w" \
    -o "$BUILD/$arch/" ./cmd/oxcross-leaf ./cmd/oxcross-origin ./cmd/oxcross-configserver
  for name in "${names[@]}"; do
    for packager in deb rpm; do
      config=packaging/nfpm/$name.yaml
      [ "$packager" = deb ] || config=$BUILD/changelog/$name/nfpm-rpm.yaml
      ARCH=$arch $GO tool -modfile=tools/go.mod nfpm package --packager "$packager" \
        --config "$config" --target dist/ | sed 's/^/  /'
    done
  done
done
