#!/usr/bin/env bash
# Writes dist/<plugin>.schema.json for every plugin: the JSON Schema (draft 2020-12) of its
# configuration, generated from the plugin's Rust config types (tools/config-schema, a native
# build of the plugins with their `schema` feature). `host-sim check dist/<plugin>.wasm
# CONFIG.json` finds the schema beside the module; the packaging step puts it in spec.yaml.
# An optional argument names another output directory.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet -p aigw-config-schema --bin config-schema -- "${1:-dist}"
