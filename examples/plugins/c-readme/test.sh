#!/bin/sh
# Calls the plugin for the sample entity in a host of its own: it reads
# README.md beside catalog-info.yaml.
set -e
cd "$(dirname "$0")"
greenroom plugin run c-readme.wasm --entity catalog-info.yaml | tee /dev/stderr | grep -q '"label": "documented"'
greenroom plugin run c-readme.wasm --entity catalog-info.yaml --call facts | tee /dev/stderr | grep -q '"name": "docs.readme_words"'
echo "ok: c-readme shows its card and facts"
