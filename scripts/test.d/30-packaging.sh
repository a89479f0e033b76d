#!/usr/bin/env bash
# Packages and deployment (packaging/, docs/install.md), run from the
# repository root by scripts/test.sh:
#   0. shellcheck on these scripts and the maintainer scripts
#   1. make package (amd64 and arm64): file lists, metadata, conffiles,
#      maintainer scripts and binaries of every deb (dpkg-deb) and rpm (rpm -qp)
#   1b. the rpms installed into a scratch root, verified (rpm -V), erased
#   2. lintian on the debs: no error and no warning; rpmlint on the rpms: no
#      error but no-signature
#   3. the maintainer scripts' systemctl calls, with and without systemd
#   4. systemd-analyze verify and security on the units; the exposure scores
#      must stay under MAX_EXPOSURE and match docs/install.md
#   5. dpkg -i of the three debs, the installed programs, the oxcross user,
#      an upgrade that keeps an edited conffile, removal and purge
#   6. make image: the image's config and files; its configserver runs as
#      its non-root user from the image's file system, alone and with the
#      environment and read-only ConfigMap mount of the original Oxcross'
#      Deployment
#   7. the Kubernetes manifests, the configserver's and the Prometheus
#      Operator's (packaging/kubernetes/operator): strict decoding into the
#      API types, and the PrometheusRule equal to mixin/out (packaging/kubernetes/test)
#   8. packaging/test: the Containerfile's ENTRYPOINT, CMD and ENV and the
#      configserver unit's ExecStart run with the original's settings
# Steps that need root use sudo when not root, or are skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/../.."

step() { printf '\n-- %s\n' "$*"; }
skip() { printf 'SKIP: %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}
# same A B WHAT: fails unless A and B are equal.
same() { [ "$1" = "$2" ] || fail "$3: got
$1
want
$2"; }

# Highest acceptable `systemd-analyze security` exposure per unit (0 = fully
# locked down, 10 = unprotected). The leaf's is higher because it keeps
# CAP_NET_RAW for ICMP probes and cannot use PrivateUsers= with it.
declare -A MAX_EXPOSURE=([oxcross-leaf]=2.0 [oxcross-origin]=1.6 [oxcross-configserver]=1.6)

names=(oxcross-leaf oxcross-origin oxcross-configserver)
tmp=$(mktemp -d)
cleanups=()
cleanup() {
  local c
  for c in "${cleanups[@]}"; do eval "$c" || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

root=""
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then root="sudo"; else root="none"; fi
fi

# The versions that make package gives the packages and binaries, fixed here
# so that a commit landing meanwhile cannot make them disagree.
pkg_version=$(bash packaging/version.sh)
version=$(git describe --tags --always --dirty | sed 's/^v//')
revision=$(git rev-parse HEAD)

step "shellcheck on the packaging scripts"
shellcheck packaging/version.sh packaging/package.sh scripts/test.d/30-packaging.sh
shellcheck --shell=sh packaging/scripts/*.sh
echo "shellcheck: clean"

step "make package (version $pkg_version)"
start=$SECONDS
make --no-print-directory package PKG_VERSION="$pkg_version" VERSION="$version" REVISION="$revision"
echo "built in $((SECONDS - start))s"

debfile() { echo "dist/${1}_${pkg_version}-1_${2}.deb"; }
rpmfile() { echo "dist/${1}-${pkg_version}-1.${2}.rpm"; }

# What each package holds (files only), and its configuration files: the
# configserver's target config, web config and registry identities.
cs_conf=(/etc/oxcross/config.yaml /etc/oxcross/configserver-web.yml /etc/oxcross/registry-identities.yml)
# The documentation in /usr/share/doc/NAME: the README, the examples and, in
# the leaf's package, the rendered mixin (whatever mixin/out holds); %doc
# files in the rpm.
doc_files() {
  printf "/usr/share/doc/$1/%s\n" README.md examples/config.yaml examples/prometheus.yml \
    examples/web-config.yml examples/http-client.yml
  [ "$1" != oxcross-leaf ] || (cd mixin/out && find . -type f | sed "s|^\./|/usr/share/doc/$1/mixin/|")
}
deb_files() {
  doc_files "$1"
  printf '%s\n' "/etc/default/$1" "/lib/systemd/system/$1.service" "/usr/bin/$1" \
    "/usr/share/doc/$1/changelog.Debian.gz" "/usr/share/doc/$1/copyright" "/usr/share/lintian/overrides/$1" \
    "/usr/share/man/man1/$1.1.gz" "/usr/share/bash-completion/completions/$1" "/usr/share/zsh/vendor-completions/_$1"
  [ "$1" != oxcross-configserver ] || printf '%s\n' "${cs_conf[@]}"
}
deb_conffiles() {
  echo "/etc/default/$1"
  [ "$1" != oxcross-configserver ] || printf '%s\n' "${cs_conf[@]}"
}
rpm_files() {
  doc_files "$1"
  printf '%s\n' "/usr/share/doc/$1" "/usr/share/doc/$1/examples" "/usr/share/licenses/$1" "/usr/share/licenses/$1/LICENSE"
  [ "$1" != oxcross-leaf ] || printf '%s\n' "/usr/share/doc/$1/mixin" "/usr/share/doc/$1/mixin/dashboards"
  printf '%s\n' "/etc/sysconfig/$1" "/usr/bin/$1" "/usr/lib/systemd/system/$1.service" "/usr/share/man/man1/$1.1.gz" \
    "/usr/share/bash-completion/completions/$1" "/usr/share/zsh/site-functions/_$1"
  [ "$1" != oxcross-configserver ] || printf '%s\n' /etc/oxcross "${cs_conf[@]}"
}
rpm_conffiles() {
  echo "/etc/sysconfig/$1"
  [ "$1" != oxcross-configserver ] || printf '%s\n' "${cs_conf[@]}"
}

# check_binary FILE GOARCH: a static Go binary for GOARCH with the version
# ldflags (-trimpath keeps them out of `go version -m`, so look for the
# revision string), built with CGO_ENABLED=0 and -trimpath.
check_binary() {
  local info
  info=$(go version -m "$1") || fail "$1: not a Go binary"
  grep -q $'^\tbuild\tCGO_ENABLED=0$' <<<"$info" || fail "$1: not built with CGO_ENABLED=0"
  grep -q $'^\tbuild\t-trimpath=true$' <<<"$info" || fail "$1: not built with -trimpath"
  grep -q $'^\tbuild\tGOARCH='"$2"'$' <<<"$info" || fail "$1: not built for $2"
  grep -qaF "$revision" "$1" || fail "$1: the revision is not in it (version ldflags)"
  ! readelf -d "$1" 2>/dev/null | grep -q NEEDED || fail "$1: dynamically linked"
}

step "deb packages: metadata, files, conffiles, maintainer scripts, binaries"
for arch in amd64 arm64; do
  for name in "${names[@]}"; do
    f=$(debfile "$name" "$arch")
    [ -f "$f" ] || fail "make package did not build $f"
    same "$(dpkg-deb -f "$f" Package Version Architecture Section Depends)" \
      "Package: $name
Version: $pkg_version-1
Architecture: $arch
Section: net
Depends: passwd" "$f: control fields"
    [ -n "$(dpkg-deb -f "$f" Maintainer)" ] || fail "$f: no Maintainer"
    same "$(dpkg-deb -c "$f" | awk '$1 !~ /^d/ {print substr($6, 2)}' | sort)" "$(deb_files "$name" | sort)" "$f: files"
    dpkg-deb -c "$f" | awk -v b="./usr/bin/$name" '$6 == b && !($1 == "-rwxr-xr-x" && $2 == "root/root") {exit 1}' ||
      fail "$f: /usr/bin/$name is not root-owned 0755"
    x="$tmp/deb-$name-$arch"
    dpkg-deb -R "$f" "$x"
    same "$(sort "$x/DEBIAN/conffiles")" "$(deb_conffiles "$name" | sort)" "$f: conffiles"
    [ ! -e "$x/DEBIAN/preinst" ] || fail "$f: has a preinst (the user is created in postinst)"
    for s in postinst prerm postrm; do
      [ -x "$x/DEBIAN/$s" ] || fail "$f: no executable $s"
      sh -n "$x/DEBIAN/$s" || fail "$f: $s is not valid sh"
      ! grep -q @NAME@ "$x/DEBIAN/$s" || fail "$f: $s has an unreplaced @NAME@"
    done
    cmp -s "$x/lib/systemd/system/$name.service" "packaging/systemd/$name.service" || fail "$f: unit differs from packaging/systemd"
    # The man page: a one-line header with the version, a whatis line, and
    # no warning from man (lintian runs it too).
    man=$x/usr/share/man/man1/$name.1.gz
    zcat "$man" | head -1 | grep -q "^\.TH ${name^^} 1 \"[0-9-]*\" \"$name $version\" \"User Commands\"\$" ||
      fail "$f: man page header: $(zcat "$man" | head -1)"
    lexgrog "$man" | grep -q ": \"$name - ." || fail "$f: man page has no whatis line: $(lexgrog "$man")"
    out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$man" 2>&1 >/dev/null) || fail "$f: man $man: $out"
    [ -z "$out" ] || fail "$f: man page warnings: $out"
    # The completions complete this program's flags.
    bash -n "$x/usr/share/bash-completion/completions/$name" || fail "$f: bash completion is not valid bash"
    grep -q "^complete -F .* $name\$" "$x/usr/share/bash-completion/completions/$name" || fail "$f: bash completion is not for $name"
    head -1 "$x/usr/share/zsh/vendor-completions/_$name" | grep -qx "#compdef $name" || fail "$f: zsh completion is not for $name"
    check_binary "$x/usr/bin/$name" "$arch"
    cmp -s "$x/usr/share/doc/$name/examples/config.yaml" packaging/config/config.yaml || fail "$f: examples/config.yaml differs"
    cmp -s "$x/usr/share/doc/$name/examples/prometheus.yml" examples/prometheus.yml || fail "$f: examples/prometheus.yml differs"
    [ "$name" != oxcross-leaf ] || diff -r "$x/usr/share/doc/$name/mixin" mixin/out >/dev/null || fail "$f: the mixin differs from mixin/out"
  done
  echo "$arch: 3 debs ok"
done

# The test owns its rpm databases, whatever HOME is: Debian's rpm keeps its
# default one under ~/.rpmdb. Queries of package files use a scratch one; the
# scratch root below has its own under its /var/lib/rpm.
rpm() { command rpm --dbpath "$tmp/rpmdb" "$@"; }
mkdir -p "$tmp/rpmdb"

step "rpm packages: metadata, files, config files, scriptlets"
for arch in amd64 arm64; do
  rarch=$([ $arch = amd64 ] && echo x86_64 || echo aarch64)
  for name in "${names[@]}"; do
    f=$(rpmfile "$name" "$rarch")
    [ -f "$f" ] || fail "make package did not build $f"
    same "$(rpm -qp --qf '%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{OS}\n' "$f")" "$name $pkg_version 1 $rarch linux" "$f: header"
    same "$(rpm -qpl "$f" | sort)" "$(rpm_files "$name" | sort)" "$f: files"
    same "$(rpm -qpc "$f" | sort)" "$(rpm_conffiles "$name" | sort)" "$f: config files"
    same "$(rpm -qpd "$f" | sort)" "$({ doc_files "$name"; echo "/usr/share/man/man1/$name.1.gz"; } | sort)" "$f: %doc files"
    same "$(rpm -qp --changelog "$f" | head -1)" "* $(date -u -d "@$(git log -1 --format=%ct HEAD)" '+%a %b %d %Y') $(dpkg-deb -f "$(debfile "$name" "$arch")" Maintainer) - $pkg_version-1" "$f: %changelog"
    same "$(rpm -qp --qf '%{GROUP}' "$f")" "Applications/System" "$f: Group"
    same "$(rpm -qpL "$f")" "/usr/share/licenses/$name/LICENSE" "$f: %license files"
    rpm -qp --requires "$f" | grep -qx shadow-utils || fail "$f: does not require shadow-utils"
    same "$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME} %{FILENAMES}\n]' "$f" | grep " /usr/bin/$name$")" \
      "-rwxr-xr-x root /usr/bin/$name" "$f: binary mode"
    scripts=$(rpm -qp --scripts "$f")
    ! grep -q "^preinstall scriptlet" <<<"$scripts" || fail "$f: has a %pre scriptlet (the user is created in %post)"
    for s in postinstall preuninstall postuninstall; do
      grep -q "^$s scriptlet" <<<"$scripts" || fail "$f: no $s scriptlet"
    done
    ! grep -q @NAME@ <<<"$scripts" || fail "$f: a scriptlet has an unreplaced @NAME@"
  done
  echo "$arch: 3 rpms ok"
done

step "rpm: install into a scratch root, verify, erase (--nodeps --noscripts: this is no rpm-based system)"
rroot="$tmp/rpmroot"
rpm_root() { command rpm --root "$rroot" --dbpath /var/lib/rpm "$@"; }
rpm_root --initdb 2>/dev/null
for name in "${names[@]}"; do
  f=$(rpmfile "$name" x86_64)
  rpm_root -i --nodeps --noscripts "$f" 2>/dev/null || fail "rpm -i $f"
  rpm_root -V --nodeps "$name" || fail "rpm -V $name: the installed files differ from the package"
  cmp -s "$rroot/usr/lib/systemd/system/$name.service" "packaging/systemd/$name.service" || fail "$f: unit differs"
done
rpm_root -e --nodeps --noscripts "${names[@]}" 2>/dev/null || fail "rpm -e"
left=$(cd "$rroot" && find . -path ./var/lib/rpm -prune -o -type f -print -o -type d -name '*oxcross*' -print)
[ -z "$left" ] || fail "rpm -e left: $left"
echo "rpm: 3 packages installed, verified and erased"

step "lintian (no error, no warning; overrides: packaging/deb/lintian-overrides)"
debs=()
for n in "${names[@]}"; do debs+=("$(debfile "$n" amd64)" "$(debfile "$n" arm64)"); done
if ! out=$(lintian --pedantic --fail-on error,warning "${debs[@]}" 2>&1); then
  printf '%s\n' "$out"
  fail "lintian found errors or warnings"
fi
printf '%s\n' "$out" | grep -v 'running with root privileges is not recommended' || true
echo "lintian: clean (pedantic tags are shown, not fatal)"

step "rpmlint (no error but no-signature, which only a signing key fixes; settings: packaging/rpm/rpmlint.toml)"
if ! command -v rpmlint >/dev/null; then
  skip "rpmlint is not installed (apt-get install rpmlint python3-magic)"
else
  # nfpm writes the rpm payload's names absolute (/usr/bin/...), and rpmlint
  # unpacks it with `rpm2cpio | cpio -id`, which would write them into this
  # machine's /: a cpio that keeps them in rpmlint's scratch directory.
  mkdir -p "$tmp/rpmlint-bin"
  printf '#!/bin/sh\nexec %s --no-absolute-filenames "$@"\n' "$(command -v cpio)" >"$tmp/rpmlint-bin/cpio"
  chmod +x "$tmp/rpmlint-bin/cpio"
  rpms=()
  for n in "${names[@]}"; do rpms+=("$(rpmfile "$n" x86_64)" "$(rpmfile "$n" aarch64)"); done
  out=$(PATH="$tmp/rpmlint-bin:$PATH" rpmlint --config packaging/rpm/rpmlint.toml "${rpms[@]}" 2>&1) || true
  grep -q ' packages and 0 specfiles checked' <<<"$out" || fail "rpmlint did not run: $out"
  printf '%s\n' "$out" | grep ': [EW]: ' || true
  errors=$(grep ': E: ' <<<"$out" | grep -v ': E: no-signature$' || true)
  [ -z "$errors" ] || fail "rpmlint found errors: $errors"
  echo "rpmlint: no error but no-signature (warnings are shown, not fatal)"
fi

step "maintainer scripts: systemctl calls with and without systemd (deb and rpm arguments)"
# Each script runs in a private mount namespace with /run on a tmpfs, with or
# without /run/systemd/system (where systemd runs), and a systemctl stub that
# records its arguments.
if [ "$root" = none ] || ! $root unshare --mount true 2>/dev/null; then
  skip "unshare --mount needs root (or sudo); the install test below still runs the scripts"
else
  mkdir -p "$tmp/stub"
  printf '#!/bin/sh\necho "$*" >> "%s/calls"\n' "$tmp" >"$tmp/stub/systemctl"
  # and a getent that finds the user, so that postinstall creates none here
  printf '#!/bin/sh\nexit 0\n' >"$tmp/stub/getent"
  chmod +x "$tmp/stub/systemctl" "$tmp/stub/getent"
  # run_script SYSTEMD(yes|no) SCRIPT ARGS...: prints the systemctl calls and stdout.
  run_script() {
    local systemd=$1 script=$2
    shift 2
    rm -f "$tmp/calls"
    # shellcheck disable=SC2016 # the inner shell expands them
    $root unshare --mount --propagation private sh -c '
      mount -t tmpfs tmpfs /run
      [ "$1" = yes ] && mkdir -p /run/systemd/system
      shift
      PATH="$0:$PATH" sh "$@"' "$tmp/stub" "$systemd" "$script" "$@" >"$tmp/out" || fail "$script $* failed"
    { cat "$tmp/out"; [ ! -f "$tmp/calls" ] || sed 's/^/systemctl /' "$tmp/calls"; } | paste -sd';' -
  }
  s=dist/build/scripts/oxcross-leaf
  hint_deb="oxcross-leaf: settings are in /etc/default/oxcross-leaf; then: systemctl enable --now oxcross-leaf.service"
  hint_rpm="oxcross-leaf: settings are in /etc/sysconfig/oxcross-leaf; then: systemctl enable --now oxcross-leaf.service"
  while IFS='|' read -r systemd script args want; do
    # shellcheck disable=SC2086
    same "$(run_script "$systemd" "$s/$script.sh" $args)" "${want//@DEB@/$hint_deb}" "$script $args (systemd: $systemd)"
  done <<EOF
yes|postinstall|configure|@DEB@;systemctl daemon-reload
yes|postinstall|configure 0.0.1-1|systemctl daemon-reload;systemctl try-restart oxcross-leaf.service
no|postinstall|configure|@DEB@
no|postinstall|configure 0.0.1-1|
yes|postinstall|abort-upgrade 0.0.1-1|
yes|preremove|remove|systemctl stop oxcross-leaf.service;systemctl --no-reload disable oxcross-leaf.service
no|preremove|remove|systemctl --no-reload disable oxcross-leaf.service
yes|preremove|upgrade 0.0.2-1|
yes|postremove|remove|systemctl daemon-reload
no|postremove|remove|
yes|postremove|upgrade 0.0.2-1|
yes|preremove|0|systemctl stop oxcross-leaf.service;systemctl --no-reload disable oxcross-leaf.service
yes|preremove|1|
yes|postremove|0|systemctl daemon-reload
yes|postremove|1|
EOF
  # rpm's first install and upgrade print the /etc/sysconfig hint, or not.
  same "$(run_script yes "$s/postinstall.sh" 1)" "$hint_rpm;systemctl daemon-reload" "postinstall 1"
  same "$(run_script yes "$s/postinstall.sh" 2)" "systemctl daemon-reload;systemctl try-restart oxcross-leaf.service" "postinstall 2"
  echo "maintainer scripts: 17 cases ok"
fi

step "systemd-analyze verify"
# The units as packaged, with ExecStart pointing at the freshly built binaries
# (verify wants the executables to exist); the installed units are verified
# again after dpkg -i below.
mkdir -p "$tmp/units"
for name in "${names[@]}"; do
  sed "s|/usr/bin/$name|$PWD/dist/build/amd64/$name|" "packaging/systemd/$name.service" >"$tmp/units/$name.service"
done
systemd-analyze verify "$tmp"/units/*.service || fail "systemd-analyze verify"
echo "verify: 3 units ok"

step "systemd-analyze security (exposure: 0 = locked down, 10 = unprotected)"
for name in "${names[@]}"; do
  out=$(systemd-analyze security --offline=true --no-pager "packaging/systemd/$name.service" 2>&1) ||
    fail "systemd-analyze security $name: $out"
  score=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' <<<"$out")
  [ -n "$score" ] || fail "no exposure score for $name in: $out"
  printf '%-22s %s (at most %s)\n' "$name" "$score" "${MAX_EXPOSURE[$name]}"
  awk -v s="$score" -v m="${MAX_EXPOSURE[$name]}" 'BEGIN {exit !(s <= m)}' ||
    fail "$name.service exposure $score is above ${MAX_EXPOSURE[$name]}: a hardening setting was lost (systemd-analyze security --offline=true packaging/systemd/$name.service)"
  grep -q "^| \`$name.service\` | $score |" docs/install.md ||
    fail "docs/install.md does not give $name.service's exposure as $score"
done

step "install, run, remove and purge the debs"
installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${names[@]}" 2>/dev/null | awk '$2 != "un" {print $1}' || true)
if [ "$root" = none ]; then
  skip "dpkg -i needs root or password-less sudo"
elif [ -n "$installed" ]; then
  skip "already on this machine, not touching them: $installed (dpkg -P them to run this step)"
elif getent passwd oxcross >/dev/null; then
  skip "a user oxcross exists without the packages; the test would remove it"
else
  cleanups+=("$root dpkg -P ${names[*]} >/dev/null 2>&1")
  # Purging keeps the user that installing created; the test removes it.
  cleanups+=("$root userdel oxcross >/dev/null 2>&1; $root groupdel oxcross >/dev/null 2>&1")
  # dpkg waits for no lock; another apt-get may hold it for a while.
  dpkg_() {
    local out
    for _ in $(seq 1 60); do
      if out=$($root dpkg "$@" 2>&1); then
        printf '%s\n' "$out"
        return 0
      fi
      grep -q 'lock' <<<"$out" || {
        printf '%s\n' "$out" >&2
        return 1
      }
      sleep 2
    done
    fail "dpkg lock still held after 2 minutes"
  }
  leaf=$(debfile oxcross-leaf amd64)
  out=$(dpkg_ -i "$leaf") || fail "dpkg -i $leaf"
  grep -q "oxcross-leaf: settings are in /etc/default/oxcross-leaf" <<<"$out" || fail "dpkg -i: no hint where the settings are: $out"
  ! grep -v 'settings are in' <<<"$out" | grep -qi 'systemctl\|warning\|error' || fail "dpkg -i was not quiet: $out"
  same "$(dpkg-query -W -f='${Version} ${db:Status-Abbrev}' oxcross-leaf)" "$pkg_version-1 ii " "installed oxcross-leaf"
  IFS=: read -r _ _ uid gid _ home shell < <(getent passwd oxcross) || fail "no user oxcross"
  [ "$uid" -lt 1000 ] || fail "oxcross is not a system user (uid $uid)"
  same "$(getent group oxcross | cut -d: -f3) $home $shell" "$gid /nonexistent /usr/sbin/nologin" "user oxcross"
  out=$(/usr/bin/oxcross-leaf --version 2>&1)
  if ! grep -q "version $version " <<<"$out" || ! grep -q "revision: $revision" <<<"$out"; then
    fail "oxcross-leaf --version: $out"
  fi
  echo "installed: $(head -1 <<<"$out")"

  dpkg_ -i "$(debfile oxcross-origin amd64)" "$(debfile oxcross-configserver amd64)" >/dev/null || fail "dpkg -i origin and configserver"
  systemd-analyze verify /lib/systemd/system/oxcross-{leaf,origin,configserver}.service || fail "verify the installed units"
  for name in oxcross-origin oxcross-configserver; do
    /usr/bin/$name --version 2>&1 | grep -q "revision: $revision" || fail "$name --version"
  done

  # The installed configserver, as user oxcross and with the packaged
  # settings' ARGS (its web config and registry identities), serves the
  # packaged example config on a free loopback port.
  cs_args=$(sed -n 's/^ARGS="\(.*\)"$/\1/p' /etc/default/oxcross-configserver)
  [ -n "$cs_args" ] || fail "no ARGS in /etc/default/oxcross-configserver"
  # shellcheck disable=SC2086 # ARGS is a list of flags, as systemd splits it
  $root setpriv --reuid oxcross --regid oxcross --init-groups \
    /usr/bin/oxcross-configserver $cs_args --web.listen-address=127.0.0.1:0 >"$tmp/cs.log" 2>&1 &
  pid=$!
  cleanups+=("$root kill $pid 2>/dev/null")
  port=""
  for _ in $(seq 1 50); do
    port=$(sed -n 's/.*Listening on.*address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/cs.log" | head -1)
    [ -z "$port" ] || break
    sleep 0.1
  done
  [ -n "$port" ] || fail "the installed configserver did not start: $(cat "$tmp/cs.log")"
  curl -fsS "http://127.0.0.1:$port/config" | grep -q '"origins":\[{' || fail "GET /config of the example config"
  grep -q "Loaded the registry's identities.*registry-identities.yml" "$tmp/cs.log" || fail "the packaged identities were not loaded: $(cat "$tmp/cs.log")"
  # Until its web config has users, the registry is in open mode, and says so.
  grep -q "The leaf registry is in open mode" "$tmp/cs.log" || fail "no open-mode warning: $(cat "$tmp/cs.log")"
  $root kill "$pid"
  wait "$pid" 2>/dev/null || true
  echo "installed configserver served /etc/oxcross/config.yaml as user oxcross with the packaged ARGS"

  # An upgrade (the same version again) keeps an edited conffile and runs the
  # upgrade path (no first-install hint).
  echo 'OXCROSS_LEAF_ID=test-leaf' | $root tee -a /etc/default/oxcross-leaf >/dev/null
  out=$(dpkg_ -i "$leaf") || fail "dpkg -i again"
  ! grep -q 'settings are in' <<<"$out" || fail "the upgrade printed the first-install hint"
  grep -q '^OXCROSS_LEAF_ID=test-leaf$' /etc/default/oxcross-leaf || fail "the upgrade lost the edit of /etc/default/oxcross-leaf"

  # What running creates (systemd's StateDirectory with the config cache) and
  # what an operator adds.
  $root install -d -o oxcross -g oxcross -m 0750 /var/lib/oxcross-leaf
  echo '{}' | $root tee /var/lib/oxcross-leaf/config.json >/dev/null
  echo '# operator' | $root tee /etc/oxcross/web-config.yml >/dev/null
  cleanups+=("$root rm -f /etc/oxcross/web-config.yml; $root rmdir /etc/oxcross 2>/dev/null")

  dpkg_ -r oxcross-leaf >/dev/null || fail "dpkg -r oxcross-leaf"
  same "$(dpkg-query -W -f='${db:Status-Abbrev}' oxcross-leaf)" "rc " "status after dpkg -r"
  [ ! -e /usr/bin/oxcross-leaf ] || fail "dpkg -r left /usr/bin/oxcross-leaf"
  [ -f /etc/default/oxcross-leaf ] || fail "dpkg -r removed the conffile"
  [ -f /var/lib/oxcross-leaf/config.json ] || fail "dpkg -r removed the state"
  getent passwd oxcross >/dev/null || fail "dpkg -r removed the user"

  dpkg_ -P oxcross-leaf >/dev/null || fail "dpkg -P oxcross-leaf"
  [ -z "$(dpkg-query -W -f='${db:Status-Abbrev}' oxcross-leaf 2>/dev/null | tr -d ' un')" ] || fail "oxcross-leaf still known to dpkg"
  for p in /etc/default/oxcross-leaf /var/lib/oxcross-leaf /lib/systemd/system/oxcross-leaf.service /usr/share/doc/oxcross-leaf; do
    [ ! -e "$p" ] || fail "purge left $p"
  done
  getent passwd oxcross >/dev/null || fail "purging the leaf removed the user"

  dpkg_ -P oxcross-origin oxcross-configserver >/dev/null || fail "dpkg -P origin and configserver"
  # As Debian's packages do, purging keeps the system user and group.
  getent passwd oxcross >/dev/null || fail "purging the last package removed the user oxcross"
  getent group oxcross >/dev/null || fail "purging the last package removed the group oxcross"
  for p in "${cs_conf[@]}" /etc/default/oxcross-configserver /etc/default/oxcross-origin /usr/bin/oxcross-configserver; do
    [ ! -e "$p" ] || fail "purge left $p"
  done
  [ -f /etc/oxcross/web-config.yml ] || fail "purge removed the operator's /etc/oxcross/web-config.yml"
  leftovers=$(find /etc /lib/systemd /usr/lib/systemd /usr/bin /usr/sbin /usr/share/doc /usr/share/lintian /var/lib /run \
    -maxdepth 3 -name '*oxcross*' 2>/dev/null | grep -v -e '^/etc/oxcross$' -e '^/etc/oxcross/web-config.yml$' || true)
  [ -z "$leftovers" ] || fail "purge left: $leftovers"
  echo "install, upgrade, remove, purge: ok; purge leaves only the operator's /etc/oxcross/web-config.yml and the user oxcross"
fi

step "container image (make image)"
engine=$(command -v podman 2>/dev/null || command -v docker 2>/dev/null || true)
if [ -z "$engine" ]; then
  skip "neither podman nor docker is installed"
elif ! $engine info >/dev/null 2>&1; then
  skip "$engine cannot reach its engine here ($engine info fails)"
else
  image=localhost/oxcross-configserver-test
  make --no-print-directory image IMAGE="$image" VERSION="$version" REVISION="$revision" >"$tmp/image.log" 2>&1 ||
    fail "make image: $(cat "$tmp/image.log")"
  cleanups+=("$engine rmi -f $image:latest $image:$version >/dev/null 2>&1")
  # shellcheck disable=SC2016 # a Go template
  same "$($engine image inspect "$image:latest" --format '{{.Os}}/{{.Architecture}} {{.Config.User}} {{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}{{json .Config.Entrypoint}} {{index .Config.Labels "org.opencontainers.image.revision"}}')" \
    "linux/amd64 65532:65532 9300/tcp [\"/bin/oxcross-configserver\"] $revision" "image config"
  cid=$($engine create "$image:latest")
  mkdir "$tmp/rootfs"
  $engine export "$cid" | tar -x -C "$tmp/rootfs"
  $engine rm "$cid" >/dev/null
  same "$(cd "$tmp/rootfs" && find . -type f | sort)" "./bin/oxcross-configserver
./etc/oxcross/config.yaml
./etc/ssl/certs/ca-certificates.crt" "image files"
  check_binary "$tmp/rootfs/bin/oxcross-configserver" amd64
  # The image's entry point, CMD and ENV, from its own config: no CMD, so
  # that no --config.file beats OXCROSS_CONF.
  # shellcheck disable=SC2016 # Go templates
  mapfile -t image_argv < <($engine image inspect "$image:latest" --format '{{range .Config.Entrypoint}}{{println .}}{{end}}{{range .Config.Cmd}}{{println .}}{{end}}' | sed '/^$/d')
  # shellcheck disable=SC2016
  mapfile -t image_env < <($engine image inspect "$image:latest" --format '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
  same "${image_argv[*]}" "/bin/oxcross-configserver" "the image's ENTRYPOINT and CMD"
  printf '%s\n' "${image_env[@]}" | grep -qx 'OXCROSS_CONF=/etc/oxcross/config.yaml' ||
    fail "the image's ENV has no OXCROSS_CONF=/etc/oxcross/config.yaml: ${image_env[*]}"
  # Run it as the image would: its own file system, its user, its
  # ENTRYPOINT, CMD and ENV, nothing else from this shell's environment.
  # run_image LOG [DIR [VAR=VALUE...]]: runs the image's configserver with a
  # loopback listen address appended, DIR mounted read-only over
  # /etc/oxcross (as a ConfigMap volume is) and the variables set over the
  # image's ENV; sets pid and port.
  run_image() {
    local log=$1 mount=${2:-}
    shift 2 || shift $#
    # shellcheck disable=SC2016 # the inner shell expands them
    $root unshare --mount --propagation private sh -c '
      if [ -n "$1" ]; then
        mount --bind "$1" "$2/etc/oxcross" && mount -o remount,bind,ro "$2/etc/oxcross" || exit 1
      fi
      shift 2
      exec "$@"' sh "$mount" "$tmp/rootfs" \
      env -i "${image_env[@]}" "$@" "$(command -v chroot)" --userspec=65532:65532 "$tmp/rootfs" \
      "${image_argv[@]}" --web.listen-address=127.0.0.1:0 >"$log" 2>&1 &
    pid=$!
    cleanups+=("$root kill $pid 2>/dev/null")
    port=""
    for _ in $(seq 1 50); do
      port=$(sed -n 's/.*Listening on.*address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
      [ -z "$port" ] || break
      sleep 0.1
    done
    [ -n "$port" ] || fail "the image's configserver did not start: $(cat "$log")"
  }
  if [ "$root" = none ] || ! $root unshare --mount true 2>/dev/null; then
    skip "chroot into the image and mounts need root (or sudo)"
  else
    chmod 755 "$tmp/rootfs"
    run_image "$tmp/img.log"
    for path in /config /-/healthy /-/ready; do
      curl -fsS -o /dev/null "http://127.0.0.1:$port$path" || fail "image's configserver: GET $path"
    done
    curl -fsS "http://127.0.0.1:$port/config" | grep -q 'origin1\.example\.com' || fail "the image does not serve its example config"
    $root kill "$pid"
    wait "$pid" 2>/dev/null || true
    echo "the image's configserver ran as 65532:65532 from the image's files and answered /config, /-/healthy, /-/ready"

    # The original Oxcross' Deployment (examples/original-deployment.yaml):
    # OXCROSS_CONF=/etc/oxcross/oxcross_config.json, from its ConfigMap
    # mounted read-only over /etc/oxcross (laid out as the kubelet does).
    cm="$tmp/configmap"
    mkdir -p "$cm/..2026_01_01_00_00_00.0001"
    echo '{"timeout": 10, "interval": 30, "origins": [{"scheme": "http", "hostname": "example.com", "port": 9301, "mode": "advanced"}]}' \
      >"$cm/..2026_01_01_00_00_00.0001/oxcross_config.json"
    ln -s ..2026_01_01_00_00_00.0001 "$cm/..data"
    ln -s ..data/oxcross_config.json "$cm/oxcross_config.json"
    chmod -R a+rX "$cm"
    run_image "$tmp/orig.log" "$cm" OXCROSS_CONF=/etc/oxcross/oxcross_config.json
    curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" || fail "the original's Deployment: GET /healthz: $(cat "$tmp/orig.log")"
    out=$(curl -fsS "http://127.0.0.1:$port/config") || fail "the original's Deployment: GET /config: $(cat "$tmp/orig.log")"
    grep -q '"example\.com"\|//example\.com:9301/' <<<"$out" || fail "the original's Deployment: /config does not serve its ConfigMap: $out"
    $root kill "$pid"
    wait "$pid" 2>/dev/null || true
    echo "the image with the original's Deployment (OXCROSS_CONF and a read-only mount over /etc/oxcross) answered /healthz and served its config"
  fi
  if out=$($engine run --rm --network=none "$image:latest" --version 2>&1); then
    grep -q "revision: $revision" <<<"$out" || fail "$engine run --version: $out"
    echo "$engine run: $(head -1 <<<"$out")"
  else
    skip "$engine cannot run containers here: $(tail -1 <<<"$out")"
  fi
fi

step "Kubernetes and Prometheus Operator manifests (packaging/kubernetes/test, its own Go module)"
(cd packaging/kubernetes/test && go test -count=1 ./...)

step "the image and the units run as packaged, with the original's settings (packaging/test)"
go test -count=1 ./packaging/test/

step "packaging: all checks passed"
