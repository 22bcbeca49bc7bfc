#!/usr/bin/env bash
# Decide how this machine builds wasm32-wasip1 and print the environment for it.
#
# Two routes (see README "Building"):
#   plain  - the active toolchain has the wasm32-wasip1 standard library: `cargo build` as usual.
#   debian - Debian's rustc-web + rust-web-src + wasi-libc + lld-19, with -Z build-std.
# Prints shell `export` lines; exits 1 when neither route is available.
set -euo pipefail

sysroot=$(rustc --print sysroot 2>/dev/null || true)
if [ -n "$sysroot" ] && [ -d "$sysroot/lib/rustlib/wasm32-wasip1/lib" ]; then
  echo "export WASM_ROUTE=plain"
  echo "export WASM_BUILD_STD="
  exit 0
fi

if [ -x /usr/bin/rustc ] && /usr/bin/rustc --version 2>/dev/null | grep -q . \
  && [ -d /usr/lib/rustlib/src/rust/library ] \
  && command -v wasm-ld-19 >/dev/null 2>&1 \
  && [ -f /usr/lib/wasm32-wasi/libc.a ]; then
  echo "export WASM_ROUTE=debian"
  echo "export RUSTC=/usr/bin/rustc"
  echo "export RUSTC_BOOTSTRAP=1"
  echo "export CARGO_TARGET_WASM32_WASIP1_LINKER=wasm-ld-19"
  echo "export CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS='-C link-self-contained=no -L /usr/lib/wasm32-wasi'"
  echo "export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-19"
  echo "export WASM_BUILD_STD='-Z build-std=std,panic_abort'"
  exit 0
fi

echo "no wasm32-wasip1 toolchain: run 'make setup'" >&2
exit 1
