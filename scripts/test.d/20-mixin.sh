#!/usr/bin/env bash
# The monitoring mixin's suite (mixin/): formatting, a current render,
# promtool check and unit tests of the rules and alerts (every alert both
# firing and quiet), mixtool's lint rules (mixin/lint), the queries of docs/migrating.md's metric table (valid,
# and each replacement tested in mixin/tests/migrating.yaml), sanity of the
# dashboards' JSON and PromQL, the runbook of every alert, and that every
# metric the render names is exported by a running leaf or configserver. Runs from the repository root; needs Go,
# promtool and openssl (scripts/packages.d/mixin.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."

tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

step() { printf -- '-- %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
jsonnet() { go tool -modfile=tools/go.mod jsonnet -J mixin "$@"; }

command -v promtool >/dev/null && command -v openssl >/dev/null || bash scripts/install-deps.sh

step "jsonnetfmt"
mapfile -t sources < <(find mixin -name '*.jsonnet' -o -name '*.libsonnet' | sort)
unformatted=()
for f in "${sources[@]}"; do
  go tool -modfile=tools/go.mod jsonnetfmt --test "$f" || unformatted+=("$f")
done
[ ${#unformatted[@]} -eq 0 ] || fail "jsonnetfmt would change: ${unformatted[*]} (go tool -modfile=tools/go.mod jsonnetfmt -i FILE)"

step "the committed render is current"
bash mixin/build.sh "$tmp/out" "$tmp/prometheusrule.yaml"
diff -r mixin/out "$tmp/out" >"$tmp/render.diff" || {
  head -40 "$tmp/render.diff"
  fail "mixin/out is stale: run 'make mixin' and commit mixin/out"
}
diff -u packaging/kubernetes/operator/prometheusrule.yaml "$tmp/prometheusrule.yaml" >"$tmp/rule.diff" || {
  head -40 "$tmp/rule.diff"
  fail "packaging/kubernetes/operator/prometheusrule.yaml is stale: run 'make mixin' and commit it"
}

step "mixin lint (mixtool's alert and dashboard rules: mixin/lint)"
go run ./mixin/lint -runbooks docs/runbooks.md mixin/out || fail "mixin lint: fix the findings above"

step "_config.clusterLabel reaches every aggregation (rendered with clusterLabel: 'oxcross_test_region')"
# With another label than the default, so that a "cluster" written into a
# query instead of the setting fails too.
mkdir -p "$tmp/region/dashboards"
region="(import 'mixin.libsonnet') + { _config+:: { clusterLabel: 'oxcross_test_region' } }"
for x in prometheusAlerts:prometheus_alerts prometheusRules:prometheus_rules; do
  go tool -modfile=tools/go.mod jsonnet -J mixin -S -e "std.manifestYamlDoc(($region).${x%%:*})" >"$tmp/region/${x#*:}.yaml"
done
go tool -modfile=tools/go.mod jsonnet -J mixin -m "$tmp/region/dashboards" -e "($region).grafanaDashboards" >/dev/null
go run ./mixin/lint -cluster-label oxcross_test_region "$tmp/region" || fail "mixin lint with clusterLabel oxcross_test_region: fix the findings above"

step "jb install, and another mixin imports this one"
# jsonnet-bundler from tools/go.mod: jb install works in mixin/ (no
# dependencies), and in a consumer whose jsonnetfile.json names the mixin as
# a local dependency (from GitHub it is a git source with subdir mixin, in
# the same vendor/mixin). The consumer imports mixin/mixin.libsonnet and
# overrides the selectors, which must reach every query.
go build -modfile=tools/go.mod -o "$tmp/bin/jb" github.com/jsonnet-bundler/jsonnet-bundler/cmd/jb
cp -r mixin "$tmp/mixin-copy"
rm -rf "$tmp/mixin-copy/vendor" "$tmp/mixin-copy/jsonnetfile.lock.json"
(cd "$tmp/mixin-copy" && "$tmp/bin/jb" install) || fail "jb install fails in mixin/"
mkdir -p "$tmp/consumer"
printf '{\n  "version": 1,\n  "dependencies": [\n    { "source": { "local": { "directory": "%s/mixin" } }, "version": "" }\n  ],\n  "legacyImports": true\n}\n' "$PWD" >"$tmp/consumer/jsonnetfile.json"
(cd "$tmp/consumer" && "$tmp/bin/jb" install) || fail "jb install of the mixin as a dependency fails"
cat >"$tmp/consumer/consumer.jsonnet" <<'JSONNET'
local oxcross = (import 'mixin/mixin.libsonnet') + {
  _config+:: { leafSelector: 'job="leaves"', configserverSelector: 'job="cs"' },
};
{
  alerts: oxcross.prometheusAlerts,
  rules: oxcross.prometheusRules,
  dashboards: oxcross.grafanaDashboards,
}
JSONNET
go tool -modfile=tools/go.mod jsonnet -J "$tmp/consumer/vendor" "$tmp/consumer/consumer.jsonnet" >"$tmp/consumer.json" ||
  fail "a mixin importing mixin/mixin.libsonnet does not render"
jq -e '(.alerts.groups | length) > 0 and (.rules.groups | length) > 0 and (.dashboards | length) == 3' "$tmp/consumer.json" >/dev/null ||
  fail "the importing mixin misses alerts, rules or dashboards"
if grep -qE 'oxcross-(leaf|configserver)\\"' "$tmp/consumer.json"; then
  fail "the importing mixin's selectors do not reach every query: $(grep -oE '.{40}oxcross-(leaf|configserver)\\"' "$tmp/consumer.json" | head -3)"
fi
echo "jb install works; an importing mixin renders with its own selectors"

step "promtool check rules"
promtool check rules mixin/out/prometheus_rules.yaml mixin/out/prometheus_alerts.yaml

step "alerts: severity, summary, description, runbook"
jsonnet -e "(import 'mixin.libsonnet').prometheusAlerts" >"$tmp/alerts.json"
jsonnet -e "(import 'mixin.libsonnet').prometheusRules" >"$tmp/rules.json"
jq -r '.groups[].rules[] | select(
    (.labels.severity | IN("critical", "warning", "info") | not)
    or ((.annotations.summary // "") == "")
    or ((.annotations.description // "") == "")
    or ((.annotations.runbook_url // "") | test("/docs/runbooks\\.md#[a-z0-9-]+$") | not)
  ) | .alert' "$tmp/alerts.json" >"$tmp/bad_alerts"
[ ! -s "$tmp/bad_alerts" ] || fail "alerts without a severity, summary, description or runbook_url into docs/runbooks.md: $(tr '\n' ' ' <"$tmp/bad_alerts")"
# GitHub's anchors of the runbook's "## Name" headings.
sed -n 's/^## //p' docs/runbooks.md | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9 -]//g; s/ /-/g' | sort -u >"$tmp/anchors"
jq -r '.groups[].rules[].annotations.runbook_url | sub(".*#"; "")' "$tmp/alerts.json" | sort -u >"$tmp/wanted_anchors"
missing=$(comm -23 "$tmp/wanted_anchors" "$tmp/anchors")
[ -z "$missing" ] || fail "docs/runbooks.md has no section for: $missing"

step "dashboards: schema, panels, variables, units, legends"
for d in mixin/out/dashboards/*.json; do
  problems=$(jq -r '
    def vars: [.templating.list[].name];
    (if (.schemaVersion // 0) < 39 then "schemaVersion \(.schemaVersion) < 39" else empty end),
    (if (.uid // "") == "" or (.title // "") == "" then "no uid or title" else empty end),
    (if ([.panels[].id] | length) != ([.panels[].id] | unique | length) then "duplicate panel ids" else empty end),
    (["datasource", "job", "origin"] - vars | if length > 0 then "missing variables \(.)" else empty end),
    (if (vars | index("leaf") or index("instance")) then empty else "no leaf (or instance) variable" end),
    (.templating.list[] | select(.type == "query" and .name != "cluster" and .multi != true) | "variable \(.name) is not multi-select"),
    (if (vars | index("cluster")) then empty else "no cluster variable" end),
    (.panels[] | select(.type | IN("row", "timeseries", "heatmap", "stat", "table") | not) | "panel \(.title): type \(.type)"),
    (.panels[] | select(.type != "row") |
      (if .datasource.uid != "${datasource}" then "panel \(.title): datasource is not $datasource" else empty end),
      (if (.targets | length) == 0 then "panel \(.title): no query" else empty end),
      (.targets[] | select((.expr // "") == "" or (.refId // "") == "") | "panel \(.title): query without expr or refId"),
      (if .type == "heatmap" then (if (.options.yAxis.unit // "") == "" then "panel \(.title): no unit" else empty end)
       elif (.fieldConfig.defaults.unit // "") == "" then "panel \(.title): no unit" else empty end),
      (if .type == "timeseries" then (.targets[] | select((.legendFormat // "") == "") | "panel \(.title): a series without legend") else empty end),
      (if (.description // "") == "" then "panel \(.title): no description" else empty end))
  ' "$d")
  [ -z "$problems" ] || fail "$d: $problems"
done

step "dashboards: every query is valid PromQL"
# Each query, with Grafana's variables replaced, becomes a recording rule
# that promtool parses.
{
  echo 'groups:'
  echo '  - name: dashboard-queries'
  echo '    rules:'
  jq -c '.panels[].targets[]?.expr' mixin/out/dashboards/*.json |
    sed 's/\$__rate_interval/5m/g; s/\$__range/1h/g; s/\$[a-z_]*/x/g' |
    while IFS= read -r expr; do
      n=$((${n:-0} + 1))
      printf '      - record: dashboard_query_%d\n        expr: %s\n' "$n" "$expr"
    done
} >"$tmp/dashboard_queries.yaml"
promtool check rules "$tmp/dashboard_queries.yaml" >"$tmp/dashboard_queries.out" 2>&1 || {
  cat "$tmp/dashboard_queries.out"
  fail "a dashboard query is not valid PromQL"
}
grep -q "SUCCESS: $(jq -s '[.[].panels[].targets[]?] | length' mixin/out/dashboards/*.json) rules found" "$tmp/dashboard_queries.out" ||
  { cat "$tmp/dashboard_queries.out"; fail "promtool did not check every dashboard query"; }

step "mixin/tests/clock_loop.yaml is current with its generator"
if command -v python3 >/dev/null; then
  python3 mixin/tests/clock_loop.py | diff -u mixin/tests/clock_loop.yaml - >"$tmp/clock_loop.diff" || {
    head -40 "$tmp/clock_loop.diff"
    fail "mixin/tests/clock_loop.yaml is stale: python3 mixin/tests/clock_loop.py >mixin/tests/clock_loop.yaml"
  }
else
  echo "no python3: not checked"
fi

step "promtool test rules mixin/tests/*.yaml"
promtool test rules mixin/tests/*.yaml

step "docs/migrating.md: every query of the metric table is valid, every new one tested"
# The table's rows: the original's query in the first cell, the one that
# replaces it in the last (one code span each; \| is a | in a table).
sed -n "/^| the original's query |/,/^\$/p" docs/migrating.md | tail -n +3 >"$tmp/migrating_table"
# shellcheck disable=SC2016 # backquotes of Markdown
sed -n 's/^| `\([^`]*\)`.*/\1/p' "$tmp/migrating_table" | sed 's/\\|/|/g' >"$tmp/migrating_old"
# shellcheck disable=SC2016
sed -n 's/^|.*| `\(.*\)` |$/\1/p' "$tmp/migrating_table" | sed 's/\\|/|/g' >"$tmp/migrating_new"
if [ "$(wc -l <"$tmp/migrating_old")" -lt 5 ] || [ "$(wc -l <"$tmp/migrating_new")" -lt 5 ]; then
  fail "docs/migrating.md: the metric table's queries were not found"
fi
{
  echo 'groups:'
  echo '  - name: migrating-queries'
  echo '    rules:'
  n=0
  while IFS= read -r expr; do
    n=$((n + 1))
    printf "      - record: migrating_query_%d\n        expr: '%s'\n" "$n" "$expr"
  done < <(cat "$tmp/migrating_old" "$tmp/migrating_new")
} >"$tmp/migrating_queries.yaml"
promtool check rules "$tmp/migrating_queries.yaml" >"$tmp/migrating_queries.out" 2>&1 || {
  cat "$tmp/migrating_queries.out"
  fail "a query of docs/migrating.md is not valid PromQL"
}
grep -q "SUCCESS: $n rules found" "$tmp/migrating_queries.out" ||
  { cat "$tmp/migrating_queries.out"; fail "promtool did not check every query of docs/migrating.md"; }
while IFS= read -r expr; do
  grep -qF "expr: '$expr'" mixin/tests/migrating.yaml ||
    fail "docs/migrating.md's query is not tested in mixin/tests/migrating.yaml: $expr"
done <"$tmp/migrating_new"
echo "$(wc -l <"$tmp/migrating_old") original queries valid; $(wc -l <"$tmp/migrating_new") replacements tested"

step "every alert has a test that fires it and one where it stays quiet"
awk '
  /^[[:space:]]*alertname:/ { name = $2; next }
  /^[[:space:]]*exp_alerts:[[:space:]]*\[\][[:space:]]*$/ { if (name != "") quiet[name] = 1; name = ""; next }
  /^[[:space:]]*exp_alerts:[[:space:]]*$/ { if (name != "") firing[name] = 1; name = ""; next }
  END {
    for (n in firing) print "firing", n
    for (n in quiet) print "quiet", n
  }
' mixin/tests/*.yaml | sort >"$tmp/tested"
untested=()
for a in $(jq -r '.groups[].rules[].alert' "$tmp/alerts.json"); do
  grep -qx "firing $a" "$tmp/tested" || untested+=("$a (firing)")
  grep -qx "quiet $a" "$tmp/tested" || untested+=("$a (quiet)")
done
[ ${#untested[@]} -eq 0 ] || fail "alerts without tests: ${untested[*]}"

step "every metric the render names is exported"
# Names (oxcross_*, and process_* of the process collector) referenced by the
# rendered rules, alerts and dashboards, less the recording rules' own names
# (they have colons) and histogram suffixes.
jq -r '.groups[].rules[].record' "$tmp/rules.json" | sort -u >"$tmp/recorded"
grep -ohE '[A-Za-z0-9_:]*(oxcross|process)_[A-Za-z0-9_:]*' mixin/out/prometheus_*.yaml mixin/out/dashboards/*.json |
  grep -E '^(oxcross|process)_[a-z0-9_]+$' | sed -E 's/_(bucket|count|sum)$//' | sort -u |
  comm -23 - "$tmp/recorded" >"$tmp/referenced"
sed 's/#.*//; s/[[:space:]]//g; /^$/d' mixin/tests/pending_metrics.txt | sort -u >"$tmp/pending"
# Metrics of a mode the programs below do not run (mixin/tests/mode_metrics.txt):
# named by a non-test Go file and documented in docs/metrics.md instead.
sed 's/#.*//; s/[[:space:]]//g; /^$/d' mixin/tests/mode_metrics.txt | sort -u >"$tmp/mode"
while IFS= read -r m; do
  grep -rqF --include='*.go' --exclude='*_test.go' --exclude-dir=.git --exclude-dir=vendor "Name: \"$m\"" . ||
    fail "mixin/tests/mode_metrics.txt: no Go file registers $m"
  grep -qF "| \`$m\` |" docs/metrics.md || fail "mixin/tests/mode_metrics.txt: docs/metrics.md does not document $m"
done <"$tmp/mode"

# The three programs on free loopback ports: an origin over TLS (its
# certificate trusted by the leaf through SSL_CERT_FILE), a configserver
# whose config has that origin in advanced mode, its /healthz in simple mode
# and a tcp train of 3 packets to its port, and a leaf following the
# configserver.
free_port() { # below the kernel's ephemeral range, and not listened on
  local p lo
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
  while :; do
    p=$((10000 + RANDOM % (lo - 10000)))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
# launch NAME URL CMD...: starts CMD with {port} replaced by a free port and
# waits until URL (with {port} replaced too) answers; tries another port when
# the first one was taken meanwhile. Sets $port.
launch() {
  local name=$1 url=$2 attempt i pid
  shift 2
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    "${@//\{port\}/$port}" >"$tmp/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    for i in $(seq 100); do
      curl -skf -o /dev/null "${url//\{port\}/$port}" && return 0
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    grep -q "address already in use" "$tmp/$name.log" || break
  done
  cat "$tmp/$name.log" >&2
  fail "$name does not start (or does not answer at $url)"
}
go build -o "$tmp/bin/" ./cmd/...
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
printf 'tls_server_config:\n  cert_file: %s\n  key_file: %s\n' "$tmp/cert.pem" "$tmp/key.pem" >"$tmp/web-tls.yml"
launch origin 'https://127.0.0.1:{port}/healthz' \
  "$tmp/bin/oxcross-origin" --web.listen-address='127.0.0.1:{port}' --web.config.file="$tmp/web-tls.yml"
cat >"$tmp/config.yaml" <<EOF
interval: 1s
timeout: 900ms
modules:
  train:
    kind: tcp
    tcp: {packets: 3, packet_interval: 10ms}
origins:
  - name: mixin-origin
    scheme: https
    hostname: 127.0.0.1
    port: $port
    mode: advanced
  - name: mixin-healthz
    url: https://127.0.0.1:$port/healthz
    mode: simple
  - name: mixin-train
    address: 127.0.0.1:$port
    module: train
EOF
launch configserver 'http://127.0.0.1:{port}/healthz' \
  "$tmp/bin/oxcross-configserver" --web.listen-address='127.0.0.1:{port}' --config.file="$tmp/config.yaml"
cp=$port
launch leaf 'http://127.0.0.1:{port}/-/ready' \
  env SSL_CERT_FILE="$tmp/cert.pem" "$tmp/bin/oxcross-leaf" --web.listen-address='127.0.0.1:{port}' \
  --leaf.id=mixin-leaf --config.url="http://127.0.0.1:$cp" --config.cache-file="$tmp/cache.json"
lp=$port
# A few seconds of probes: until the three origins' last probe succeeded
# (the tcp train's too, whose metrics the loss alert and panel use) and the
# TLS origin's drift is known.
for i in $(seq 300); do
  curl -sf "http://127.0.0.1:$lp/metrics" >"$tmp/leaf.metrics" || true
  if grep -q '^oxcross_leaf_origin_status{origin_id="mixin-origin",source_id="mixin-leaf"} 1' "$tmp/leaf.metrics" &&
    grep -q '^oxcross_leaf_origin_status{origin_id="mixin-healthz",source_id="mixin-leaf"} 1' "$tmp/leaf.metrics" &&
    grep -q '^oxcross_leaf_origin_status{origin_id="mixin-train",source_id="mixin-leaf"} 1' "$tmp/leaf.metrics" &&
    grep -q '^oxcross_leaf_origin_time_drift{origin_id="mixin-origin"' "$tmp/leaf.metrics"; then
    break
  fi
  [ "$i" -lt 300 ] || { cat "$tmp/leaf.log" >&2; fail "the leaf did not probe the three origins successfully within 30s"; }
  sleep 0.1
done
sleep 1
curl -sf "http://127.0.0.1:$lp/metrics" >"$tmp/leaf.metrics"
curl -sf "http://127.0.0.1:$cp/metrics" >"$tmp/configserver.metrics"
# Exported names: every sample's name and every "# TYPE" name (a histogram's
# base name).
{
  sed -n 's/^# TYPE \([^ ]*\) .*/\1/p' "$tmp"/*.metrics
  grep -hv '^#' "$tmp"/*.metrics | sed -E 's/[{ ].*//'
} | sort -u >"$tmp/exported"

missing=$(comm -23 "$tmp/referenced" "$tmp/exported" | comm -23 - "$tmp/pending" | comm -23 - "$tmp/mode")
pending_now=$(comm -23 "$tmp/referenced" "$tmp/exported" | comm -12 - "$tmp/pending")
landed=$(comm -12 "$tmp/pending" "$tmp/exported")
unused=$(comm -23 "$tmp/pending" "$tmp/referenced")
printf '%s metrics referenced, %s exported by the leaf and configserver\n' \
  "$(wc -l <"$tmp/referenced")" "$(comm -12 "$tmp/referenced" "$tmp/exported" | wc -l)"
[ -z "$pending_now" ] || printf 'pending (mixin/tests/pending_metrics.txt): %s\n' "$(echo $pending_now)"
[ -z "$missing" ] || fail "the mixin names metrics that neither the leaf nor the configserver exports: $(echo $missing)"
[ -z "$landed" ] || fail "now exported, remove from mixin/tests/pending_metrics.txt: $(echo $landed)"
[ -z "$unused" ] || fail "mixin/tests/pending_metrics.txt lists metrics the mixin does not use: $(echo $unused)"
unused_mode=$(comm -23 "$tmp/mode" "$tmp/referenced")
[ -z "$unused_mode" ] || fail "mixin/tests/mode_metrics.txt lists metrics the mixin does not use: $(tr '\n' ' ' <<<"$unused_mode")"
[ ! -s "$tmp/mode" ] || printf 'exported in another mode (mixin/tests/mode_metrics.txt): %s\n' "$(tr '\n' ' ' <"$tmp/mode")"

step "mixin: all checks passed"
