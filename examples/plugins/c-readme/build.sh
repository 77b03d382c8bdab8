#!/bin/sh
# Builds c-readme.wasm with greenroom plugin build.
set -e
cd "$(dirname "$0")"
greenroom plugin build .
