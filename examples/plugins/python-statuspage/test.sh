#!/bin/sh
# Calls the plugin for the sample entity in a host of its own, with the
# recorded answer in fixtures/ standing in for https://api.statuspage.io.
set -e
cd "$(dirname "$0")"
run() {
  greenroom plugin run statuspage.wasm --entity catalog-info.yaml --upstream fixtures \
    --set 'base_url={upstream}' --secret STATUSPAGE_TOKEN=recorded "$@"
}
run | tee /dev/stderr | grep -q '"label": "degraded performance"'
run --call facts | tee /dev/stderr | grep -q '"name": "statuspage.operational"'
echo "ok: statuspage shows its card and facts"
