#!/usr/bin/env bash
# Build every plugin (and the test fixtures) to wasm32-wasip1 with the `wasm` profile and
# copy the modules to dist/ (plugins) and dist/test/ (fixtures). Prints each module's size.
# WASM_TARGET_DIR overrides the cargo target directory (default target/wasm).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/wasm-env.sh)"

export CARGO_TARGET_DIR="${WASM_TARGET_DIR:-target/wasm}"
plugins=$(ls -d plugins/*/ | xargs -n1 basename)
fixtures=$(ls -d tests/fixtures/*/ | xargs -n1 basename)
# Optional arguments: build only these packages.
if [ $# -gt 0 ]; then
  only=" $* "
  plugins=$(for p in $plugins; do case "$only" in *" $p "*) echo "$p";; esac; done)
  fixtures=$(for p in $fixtures; do case "$only" in *" $p "*) echo "$p";; esac; done)
fi
pkgs=""
for p in $plugins $fixtures; do pkgs="$pkgs -p $p"; done

mkdir -p dist/test
out="$CARGO_TARGET_DIR/wasm32-wasip1/wasm"

# Higress-feature variants (ABI 0_2_100; the Redis hostcalls for ai-token-ratelimit and
# ai-cache), used by the cluster-mode and held-headers tests: test fixtures, never shipped in
# dist/. Built first: they share the output file name.
for p in $plugins; do
  if [ "$p" = ai-token-ratelimit ] || [ "$p" = ai-cache ] || [ "$p" = ai-proxy ] || [ "$p" = ai-load-balancer ]; then
    # shellcheck disable=SC2086
    cargo build --quiet --profile wasm --target wasm32-wasip1 $WASM_BUILD_STD -p "$p" --features higress
    cp "$out/${p//-/_}.wasm" "dist/test/$p-higress.wasm"
  fi
done

# shellcheck disable=SC2086
cargo build --quiet --profile wasm --target wasm32-wasip1 $WASM_BUILD_STD $pkgs

for p in $plugins; do cp "$out/${p//-/_}.wasm" "dist/$p.wasm"; done
for p in $fixtures; do cp "$out/${p//-/_}.wasm" "dist/test/$p.wasm"; done

printf '%-32s %10s\n' module bytes
for p in $plugins; do printf '%-32s %10s\n' "dist/$p.wasm" "$(stat -c %s "dist/$p.wasm")"; done
