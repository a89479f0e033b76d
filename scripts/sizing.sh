#!/usr/bin/env bash
# Series a leaf exports, per origin and probe kind, for docs/scaling.md:
# starts an oxcross-origin over HTTP and one over HTTPS on loopback, then for
# each kind a standalone leaf whose config has N origins of that kind (all on
# loopback, probed every second), waits until every origin has been probed
# successfully a few times, and counts the series of its /metrics in the text
# format: those with an origin_id (per origin: divided by N) and the leaf's
# own, and the size of one scrape, plain and gzipped (what Prometheus
# fetches with Accept-Encoding: gzip). ICMP needs root or a ping_group_range that includes your group.
#   bash scripts/sizing.sh [N]        # N origins per kind, default 10
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-10}
tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  local p lo
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
  while :; do
    p=$((10000 + RANDOM % (lo - 10000)))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
# wait_for URL: until it answers (TLS unchecked), 10 s at most.
wait_for() {
  local i
  for i in $(seq 100); do
    curl -skf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "no answer at $1" >&2
  return 1
}

go build -o "$tmp/bin/" ./cmd/oxcross-leaf ./cmd/oxcross-origin
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
printf 'tls_server_config:\n  cert_file: %s\n  key_file: %s\n' "$tmp/cert.pem" "$tmp/key.pem" >"$tmp/web-tls.yml"

http_port=$(free_port)
"$tmp/bin/oxcross-origin" --web.listen-address="127.0.0.1:$http_port" >"$tmp/origin-http.log" 2>&1 &
pids+=($!)
https_port=$(free_port)
"$tmp/bin/oxcross-origin" --web.listen-address="127.0.0.1:$https_port" --web.config.file="$tmp/web-tls.yml" >"$tmp/origin-https.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$http_port/healthz"
wait_for "https://127.0.0.1:$https_port/healthz"

# origin KIND I: the config entry of origin I of a kind.
origin() {
  case $1 in
    oxcross-http) echo "  - {name: o$2, url: http://127.0.0.1:$http_port, mode: advanced}" ;;
    oxcross-https) echo "  - {name: o$2, url: https://127.0.0.1:$https_port, mode: advanced}" ;;
    http) echo "  - {name: o$2, url: http://127.0.0.1:$http_port/healthz, mode: simple}" ;;
    https) echo "  - {name: o$2, url: https://127.0.0.1:$https_port/healthz, mode: simple}" ;;
    tcp) echo "  - {name: o$2, address: 127.0.0.1:$http_port, mode: tcp}" ;;
    icmp) echo "  - {name: o$2, address: 127.0.0.1, mode: icmp}" ;;
  esac
}

printf '%-14s %8s %14s %10s %6s %12s %s\n' kind origins series/origin leaf-wide total scrape-bytes gzipped
for kind in oxcross-http oxcross-https http https tcp icmp; do
  {
    printf 'interval: 1s\ntimeout: 900ms\norigins:\n'
    for i in $(seq "$n"); do origin "$kind" "$i"; done
  } >"$tmp/$kind.yaml"
  port=$(free_port)
  SSL_CERT_FILE="$tmp/cert.pem" "$tmp/bin/oxcross-leaf" --web.listen-address="127.0.0.1:$port" \
    --leaf.id=sizing --config.file="$tmp/$kind.yaml" --config.cache-file= >"$tmp/leaf-$kind.log" 2>&1 &
  leaf=$!
  pids+=("$leaf")
  wait_for "http://127.0.0.1:$port/-/ready"
  # Until every origin has succeeded at least 3 times (so that every family
  # of a successful probe exists), 30 s at most.
  for i in $(seq 300); do
    curl -sf "http://127.0.0.1:$port/metrics" >"$tmp/$kind.metrics" || true
    ok=$(grep -c '^oxcross_leaf_probe_results{.*result="true".*} \([3-9]\|[1-9][0-9]\)' "$tmp/$kind.metrics" || true)
    [ "$ok" -lt "$n" ] || break
    [ "$i" -lt 300 ] || {
      cat "$tmp/leaf-$kind.log" >&2
      echo "$kind: only $ok of $n origins probed successfully 3 times in 30 s" >&2
      exit 1
    }
    sleep 0.1
  done
  series=$(grep -v '^#' "$tmp/$kind.metrics" | grep -c .)
  per=$(grep -v '^#' "$tmp/$kind.metrics" | grep -c 'origin_id="')
  printf '%-14s %8d %14s %10d %6d %12d %d\n' "$kind" "$n" "$(awk -v a="$per" -v b="$n" 'BEGIN { printf "%.1f", a / b }')" \
    "$((series - per))" "$series" "$(wc -c <"$tmp/$kind.metrics")" "$(gzip -c "$tmp/$kind.metrics" | wc -c)"
  if [ -n "${SIZING_FAMILIES:-}" ]; then
    grep 'origin_id="o1"' "$tmp/$kind.metrics" | sed -E 's/[{ ].*//; s/_(bucket|sum|count)$//' | sort | uniq -c | sed 's/^/    /'
  fi
  kill "$leaf"
  wait "$leaf" 2>/dev/null || true
done

# The origins' own /metrics (the oxcross-origin job of /sd/origins), after
# all the probes above.
for o in "http://127.0.0.1:$http_port" "https://127.0.0.1:$https_port"; do
  printf 'oxcross-origin %s: %d series\n' "${o%%:*}" "$(curl -skf "$o/metrics" | grep -v '^#' | grep -c .)"
done
