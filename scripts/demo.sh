#!/usr/bin/env bash
# `make run`: runs every built plugin through the host simulator on a sample chat request and
# prints what the client got. Each plugin uses examples/<plugin>.json as its configuration
# when it exists.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p host-sim
sim=target/debug/host-sim
for wasm in dist/*.wasm; do
  name=$(basename "$wasm" .wasm)
  args=("$wasm" --request examples/chat.http --upstream examples/chat-response.http)
  [ -f "examples/$name.json" ] && args+=(--config "examples/$name.json")
  echo "=== $name ($(stat -c %s "$wasm") bytes) ==="
  "$sim" run "${args[@]}" || echo "(host-sim exited with $?)"
  echo
done
