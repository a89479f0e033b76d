#!/usr/bin/env bash
# Installs the Debian packages the tests need: the union of the lists in
# scripts/packages.d/*.txt (one package per line, # comments). Packages
# already installed are skipped, so a prepared machine needs no network.
set -euo pipefail
cd "$(dirname "$0")/.."

wanted=$(cat scripts/packages.d/*.txt 2>/dev/null | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$' | sort -u || true)
missing=()
for p in $wanted; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
