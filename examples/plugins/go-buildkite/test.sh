#!/bin/sh
# Calls the plugin for the sample entity in a host of its own, with the
# recorded Buildkite answers in fixtures/ standing in for
# https://api.buildkite.com, and checks its card and facts.
set -e
cd "$(dirname "$0")"
run() {
  greenroom plugin run buildkite.wasm --entity catalog-info.yaml --upstream fixtures \
    --set 'base_url={upstream}' --secret BUILDKITE_TOKEN=recorded "$@"
}
run | tee /dev/stderr | grep -q '"label": "#42"'
run --call facts | tee /dev/stderr | grep -q '"name": "buildkite.passing"'
echo "ok: buildkite shows its card and facts"
