#!/bin/sh
# Builds statuspage.wasm with greenroom plugin build (componentize-py from
# PyPI when missing).
set -e
cd "$(dirname "$0")"
greenroom plugin build .
