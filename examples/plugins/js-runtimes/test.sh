#!/bin/sh
# Calls the plugin for the sample entity in a host of its own: it reads
# .python-version and .nvmrc beside catalog-info.yaml.
set -e
cd "$(dirname "$0")"
greenroom plugin run runtimes.wasm --entity catalog-info.yaml | tee /dev/stderr | grep -q '"label": "end of life (< 3.10)"'
greenroom plugin run runtimes.wasm --entity catalog-info.yaml --call facts | tee /dev/stderr | grep -q '"name": "runtime.python"'
echo "ok: runtimes shows its card and facts"
