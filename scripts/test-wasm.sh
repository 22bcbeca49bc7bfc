#!/usr/bin/env bash
# Run the SDK's pure-logic tests compiled to wasm32-unknown-unknown under Node
# (sdk/tests/wasm.rs, with wasm-bindgen-test), so that what runs inside the gateway VM is
# tested and not only the native build.
#
#   scripts/test-wasm.sh [test-name-filter]
#   scripts/test-wasm.sh --install-only    (steps 1 and 2 only, for scripts/setup.sh)
#
# 1. Picks the build route for wasm32-unknown-unknown (scripts/wasm-test-env.sh): the plain
#    toolchain when it has that target's standard library (`rustup target add
#    wasm32-unknown-unknown`), else Debian's rustc-web with -Z build-std.
# 2. Installs wasm-bindgen-test-runner (crate wasm-bindgen-cli, of exactly the version of the
#    `wasm-bindgen` crate in Cargo.lock) into target/tools, unless it is already there.
# 3. Builds in its own target directory (target/wasm-test, or $WASM_TEST_TARGET_DIR) and runs
#    the tests under Node.
# Prints a summary with the time of each step; exits non-zero on any failure, and also when no
# test ran at all.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="target/tools"
TARGET_DIR="${WASM_TEST_TARGET_DIR:-target/wasm-test}"
RUNNER="$PWD/$TOOLS/bin/wasm-bindgen-test-runner"
LOG="$TARGET_DIR/test-wasm.log"

steps=()
step() { steps+=("$(printf '  %-8s %s' "$1" "$2")"); }
print_steps() { [ ${#steps[@]} -eq 0 ] || printf '%s\n' "${steps[@]}"; }
fail() {
  echo "test-wasm: FAILED: $*" >&2
  print_steps >&2
  exit 1
}

command -v node >/dev/null 2>&1 || fail "Node.js not found (install the 'nodejs' package)"

# --- 1. Is there a route at all? (checked first: the runner install takes minutes) ------------
# Not applied yet: the runner is a host tool, built with the normal toolchain.
env_lines=$(scripts/wasm-test-env.sh) || fail "no wasm32-unknown-unknown toolchain (see above)"

# --- 2. The test runner -----------------------------------------------------------------------
# wasm-bindgen's CLI must match the crate exactly (the generated module carries a schema
# version the CLI checks), so the version comes from Cargo.lock.
versions=$(awk '$0 == "name = \"wasm-bindgen\"" {
  getline; if ($1 == "version") { gsub(/"/, "", $3); print $3 } }' Cargo.lock)
[ -n "$versions" ] ||
  fail "no wasm-bindgen in Cargo.lock (is the wasm dev-dependency of sdk/Cargo.toml there?)"
[ "$(echo "$versions" | wc -l)" = 1 ] ||
  fail "several wasm-bindgen versions in Cargo.lock: $(echo "$versions" | tr "\n" " ")"
version=$versions

installed_version() {
  [ -x "$RUNNER" ] || return 0
  "$RUNNER" --version 2>/dev/null | awk '{ print $2 }'
}

t=$(date +%s)
if [ "$(installed_version)" != "$version" ]; then
  echo "test-wasm: installing wasm-bindgen-cli $version into $TOOLS (takes a few minutes, once)"
  mkdir -p "$TOOLS"
  install_log="$TOOLS/install.log"
  if ! cargo install --quiet wasm-bindgen-cli --version "=$version" --locked --root "$TOOLS" \
    >"$install_log" 2>&1; then
    if grep -q -e 'failed to select a version' -e 'yanked' "$install_log"; then
      # The CLI's own Cargo.lock names a dependency version the registry no longer offers
      # (yanked). Same CLI version, dependencies resolved afresh.
      echo "test-wasm: wasm-bindgen-cli $version cannot be installed --locked:" >&2
      grep -m1 -e 'failed to select' -e 'yanked' "$install_log" >&2 || true
      echo "test-wasm: retrying without --locked (same version $version)" >&2
      if ! cargo install --quiet wasm-bindgen-cli --version "=$version" --root "$TOOLS" \
        >"$install_log" 2>&1; then
        tail -20 "$install_log" >&2
        fail "cannot install wasm-bindgen-cli $version (log: $install_log)"
      fi
    else
      tail -20 "$install_log" >&2
      fail "cannot install wasm-bindgen-cli $version (log: $install_log)"
    fi
  fi
  [ "$(installed_version)" = "$version" ] ||
    fail "installed runner reports '$(installed_version)', expected $version"
  step install "$(($(date +%s) - t)) s"
else
  step install "already present"
fi

if [ "${1:-}" = "--install-only" ]; then
  echo "test-wasm: runner wasm-bindgen-test-runner $version ready in $TOOLS" \
    "($(sed -n 's/^export WASM_TEST_ROUTE=//p' <<<"$env_lines") route for the build)"
  exit 0
fi

# --- 3. The build environment (the route decided in step 1) -----------------------------------
eval "$env_lines"

export CARGO_TARGET_DIR="$TARGET_DIR"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$RUNNER"
export WASM_BINDGEN_TEST_ONLY_NODE=1
# The module links proxy-wasm, whose exported callbacks import host functions from the wasm
# module "env"; wasm-bindgen's JS glue loads that as the Node module `env`. This one resolves
# every proxy_* name and throws if a test ever calls one (see the file).
export NODE_PATH="$PWD/scripts/wasm-test-node${NODE_PATH:+:$NODE_PATH}"
mkdir -p "$TARGET_DIR"

# shellcheck disable=SC2206
cargo_args=(-p aigw-sdk --target wasm32-unknown-unknown $WASM_TEST_BUILD_STD --test wasm)

# --- 4. Build, then run -----------------------------------------------------------------------
t=$(date +%s)
echo "test-wasm: building the SDK's wasm tests ($WASM_TEST_ROUTE route, $TARGET_DIR;" \
  "the first build takes minutes)"
cargo test --quiet "${cargo_args[@]}" --no-run || fail "build of the wasm tests"
step build "$(($(date +%s) - t)) s"

t=$(date +%s)
set +e
cargo test "${cargo_args[@]}" -- "$@" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
step run "$(($(date +%s) - t)) s"

result=$(grep -E '^test result:' "$LOG" | tail -1 || true)
passed=$(echo "$result" | sed -n 's/.* \([0-9][0-9]*\) passed.*/\1/p')
failed=$(echo "$result" | sed -n 's/.* \([0-9][0-9]*\) failed.*/\1/p')

echo
echo "test-wasm: wasm32-unknown-unknown under Node $(node --version)," \
  "wasm-bindgen $version, $WASM_TEST_ROUTE route"
if [ "$status" != 0 ]; then
  fail "${result:-the runner stopped before reporting a result} (log: $LOG)"
fi
if [ -z "$passed" ] || [ "$passed" = 0 ]; then
  [ "$#" -gt 0 ] && fail "no test matched '$*'"
  fail "no wasm test ran (log: $LOG)"
fi
echo "test-wasm: ok, $passed passed, ${failed:-0} failed"
print_steps
