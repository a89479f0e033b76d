#!/usr/bin/env bash
# The demo: builds the three binaries and runs an origin, a configserver
# (serving examples/demo.yaml) and a leaf on 127.0.0.1:19299-19301, then
# prints what the leaf measures every two seconds until Ctrl-C.
# Flags go to the demo: --duration 30s stops it after 30 seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./examples/demo "$@"
