#!/usr/bin/env bash
# Install what the build and the tests need, and nothing that is already there.
# Safe to run again. Never lets a download hang the build: `rustup target add` runs only
# under a short timeout, and only as an attempt.
set -euo pipefail
cd "$(dirname "$0")/.."

have_root_apt() { command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; }
apt_updated=0
apt_install() {
  if ! have_root_apt; then
    echo "setup: cannot install $* (no apt-get or not root); install it by hand" >&2
    return 1
  fi
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq >/dev/null
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. A wasm32-wasip1 toolchain.
if ! scripts/wasm-env.sh >/dev/null 2>&1; then
  if have_root_apt; then
    echo "setup: installing Debian's wasm route (rustc-web, rust-web-src, wasi-libc, lld-19)"
    apt_install rustc-web rust-web-src wasi-libc lld-19
  elif command -v rustup >/dev/null 2>&1; then
    echo "setup: trying 'rustup target add wasm32-wasip1' (60 s limit)"
    timeout 60 rustup target add wasm32-wasip1 || echo "setup: rustup could not add the target" >&2
  fi
fi
scripts/wasm-env.sh >/dev/null

# 1b. wasm32-unknown-unknown and Node, for the SDK's wasm tests (scripts/test-wasm.sh).
if ! scripts/wasm-test-env.sh >/dev/null 2>&1; then
  if have_root_apt; then
    apt_install rustc-web rust-web-src lld-19
  elif command -v rustup >/dev/null 2>&1; then
    echo "setup: trying 'rustup target add wasm32-unknown-unknown' (60 s limit)"
    timeout 60 rustup target add wasm32-unknown-unknown || echo "setup: rustup could not add the target" >&2
  fi
fi
scripts/wasm-test-env.sh >/dev/null
command -v node >/dev/null 2>&1 || apt_install nodejs
# The wasm-bindgen test runner, the version Cargo.lock pins (installed once into target/tools).
scripts/test-wasm.sh --install-only

# 1c. binaryen's wasm-opt, the build's post-link size pass (scripts/build-wasm.sh; the build
#     works without it, with larger modules).
if ! command -v wasm-opt >/dev/null 2>&1; then
  echo "setup: installing binaryen (wasm-opt)"
  apt_install binaryen || true
fi

# 2. redis-server, for the tests that need a real Redis.
if ! command -v redis-server >/dev/null 2>&1; then
  echo "setup: installing redis-server"
  apt_install redis-server || true
fi

# 2b. OpenSSL headers and pkg-config: the test rate limit service (tests/rls, aigw-rls) uses
#     Limitador, whose Redis client links native-tls (OpenSSL on Linux).
if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists openssl 2>/dev/null; then
  echo "setup: installing libssl-dev and pkg-config"
  apt_install libssl-dev pkg-config || true
fi

# 3. skopeo and Debian's docker-registry, for the plugin images (`make package`,
#    tests/tests/package.rs: inspect them, push them to a local registry, pull them back).
if ! command -v skopeo >/dev/null 2>&1 || ! command -v docker-registry >/dev/null 2>&1; then
  echo "setup: installing skopeo and docker-registry"
  if apt_install skopeo docker-registry && command -v systemctl >/dev/null 2>&1 \
    && systemctl is-enabled --quiet docker-registry 2>/dev/null; then
    # Only the binary is needed (the test starts its own on loopback); the package's service
    # would listen on port 5000 of every interface.
    echo "setup: stopping and disabling the docker-registry service the package enabled"
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
fi

echo "setup: ok ($(scripts/wasm-env.sh | sed -n 's/export WASM_ROUTE=//p') wasm route)"
