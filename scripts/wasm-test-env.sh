#!/usr/bin/env bash
# Decide how this machine builds wasm32-unknown-unknown (the target of the SDK's wasm
# test-suite, scripts/test-wasm.sh) and print the environment for it. The companion of
# scripts/wasm-env.sh, which does the same for the wasm32-wasip1 gateway modules; the two are
# decided separately because a toolchain may have one target's standard library and not the
# other's.
#
# Two routes:
#   plain  - the active toolchain has the wasm32-unknown-unknown standard library
#            (`rustup target add wasm32-unknown-unknown`): `cargo test` as usual.
#   debian - Debian's rustc-web + rust-web-src + lld-19, with -Z build-std (no wasi-libc
#            needed for this target).
# Prints shell `export` lines; exits 1 when neither route is available.
set -euo pipefail

sysroot=$(rustc --print sysroot 2>/dev/null || true)
if [ -n "$sysroot" ] && [ -d "$sysroot/lib/rustlib/wasm32-unknown-unknown/lib" ]; then
  echo "export WASM_TEST_ROUTE=plain"
  echo "export WASM_TEST_BUILD_STD="
  exit 0
fi

if [ -x /usr/bin/rustc ] && /usr/bin/rustc --version 2>/dev/null | grep -q . \
  && [ -d /usr/lib/rustlib/src/rust/library ] \
  && command -v wasm-ld-19 >/dev/null 2>&1; then
  echo "export WASM_TEST_ROUTE=debian"
  echo "export RUSTC=/usr/bin/rustc"
  echo "export RUSTC_BOOTSTRAP=1"
  echo "export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-19"
  echo "export WASM_TEST_BUILD_STD='-Z build-std=std,panic_abort'"
  exit 0
fi

echo "no wasm32-unknown-unknown toolchain: run 'rustup target add wasm32-unknown-unknown'" \
  "or 'make setup' (Debian: rustc-web rust-web-src lld-19)" >&2
exit 1
