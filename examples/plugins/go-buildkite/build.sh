#!/bin/sh
# Builds buildkite.wasm with greenroom plugin build (which installs the
# toolchain it needs from the package registries when it can).
set -e
cd "$(dirname "$0")"
greenroom plugin build .
