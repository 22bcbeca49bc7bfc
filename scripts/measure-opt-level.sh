#!/usr/bin/env bash
# Builds one plugin at several opt-levels and compares module size and per-request cost in
# host-sim (the numbers behind the `wasm` profile's opt-level in README.md).
# Usage: scripts/measure-opt-level.sh [plugin] (default ai-token-ratelimit)
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/wasm-env.sh)"
plugin=${1:-ai-token-ratelimit}
args=()
for level in 3 2 s z; do
  export CARGO_TARGET_DIR=target/wasm-opt
  CARGO_PROFILE_WASM_OPT_LEVEL=$level \
    cargo build --quiet --profile wasm --target wasm32-wasip1 $WASM_BUILD_STD -p "$plugin"
  mkdir -p "dist/opt/$level"
  cp "target/wasm-opt/wasm32-wasip1/wasm/${plugin//-/_}.wasm" "dist/opt/$level/$plugin.wasm"
  args+=("opt-level=$level=dist/opt/$level/$plugin.wasm")
done
unset CARGO_TARGET_DIR
cargo run --quiet --release -p aigw-tests --bin bench -- --compare "$plugin" "${args[@]}"
