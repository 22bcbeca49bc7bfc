#!/usr/bin/env bash
# Build every plugin (and the test fixtures and the plugin template) to wasm32-wasip1 with the
# `wasm` profile and copy the modules to dist/ (plugins), dist/higress/ (the `higress`-feature
# builds) and dist/test/ (fixtures, template). Writes a sha256sum file next to every shipped
# module (dist/<plugin>.wasm.sha256, dist/higress/<plugin>.wasm.sha256). Prints each module's
# size.
#
# The default build and the higress build each have their own cargo target directory, so
# neither overwrites the other's output: a build with nothing changed relinks nothing.
# WASM_TARGET_DIR overrides the default build's target directory (default target/wasm); the
# higress build uses the same path with `-higress` appended (target/wasm-higress).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/wasm-env.sh)"

target_dir="${WASM_TARGET_DIR:-target/wasm}"
higress_target_dir="${target_dir}-higress"
plugins=$(ls -d plugins/*/ | xargs -n1 basename)
# The fixtures, and the plugin template (examples/plugin-template), whose test loads
# dist/test/plugin-template.wasm.
fixtures="$(ls -d tests/fixtures/*/ | xargs -n1 basename) plugin-template"
# Plugins with a `higress` feature that changes the module (Redis hostcalls, override-host,
# held headers: ABI 0_2_100). The others gain nothing from it and are not built twice.
higress_plugins="ai-token-ratelimit ai-cache ai-proxy ai-load-balancer"
# Optional arguments: build only these packages.
if [ $# -gt 0 ]; then
  only=" $* "
  plugins=$(for p in $plugins; do case "$only" in *" $p "*) echo "$p";; esac; done)
  fixtures=$(for p in $fixtures; do case "$only" in *" $p "*) echo "$p";; esac; done)
fi
higress=$(for p in $plugins; do case " $higress_plugins " in *" $p "*) echo "$p";; esac; done)

mkdir -p dist/test dist/higress

# Post-link size pass with binaryen's wasm-opt (`make setup` installs it on Debian): -Oz over
# the LLVM -O2 code takes 12-15% off every module and keeps its speed (README "Build profile").
# WASM_OPT overrides the flags; WASM_OPT=off skips the pass (modules are then larger, not
# different in behaviour). The result is cached by the input's hash, so a build with nothing
# changed does not run wasm-opt again.
wasm_opt_flags="${WASM_OPT:--Oz}"
if [ "$wasm_opt_flags" != off ] && ! command -v wasm-opt >/dev/null 2>&1; then
  echo "build-wasm: wasm-opt not found (binaryen); modules are left as linked" >&2
  wasm_opt_flags=off
fi
# Prints the path of $1 after the size pass (itself when the pass is off).
optimize_module() {
  if [ "$wasm_opt_flags" = off ]; then
    echo "$1"
    return
  fi
  local dir key cached
  dir="$(dirname "$1")/opt"
  key=$( (sha256sum <"$1"; echo "$wasm_opt_flags") | sha256sum | cut -c1-16)
  cached="$dir/$(basename "$1" .wasm).$key.wasm"
  if [ ! -f "$cached" ]; then
    mkdir -p "$dir"
    rm -f "$dir/$(basename "$1" .wasm)".*.wasm
    # Stripped modules carry no target_features section: name the features rustc emits.
    # shellcheck disable=SC2086
    wasm-opt $wasm_opt_flags --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
      --enable-nontrapping-float-to-int "$1" -o "$cached.tmp"
    mv "$cached.tmp" "$cached"
  fi
  echo "$cached"
}

# Copies $1 to $2 unless identical (keeps mtimes of unchanged modules, so `host-sim serve`
# and other watchers do not reload them), and (re)writes $2.sha256 when asked ($3 = sha).
install_module() {
  if ! cmp -s "$1" "$2"; then cp "$1" "$2"; fi
  if [ "${3:-}" = sha ]; then
    (cd "$(dirname "$2")" && sha256sum "$(basename "$2")" >"$(basename "$2").sha256.tmp" \
      && mv "$(basename "$2").sha256.tmp" "$(basename "$2").sha256")
  fi
}

# Default build: every plugin and fixture, for Envoy and Higress.
pkgs=""
for p in $plugins $fixtures; do pkgs="$pkgs -p $p"; done
if [ -n "$pkgs" ]; then
  # shellcheck disable=SC2086
  CARGO_TARGET_DIR="$target_dir" cargo build --quiet --profile wasm --target wasm32-wasip1 \
    $WASM_BUILD_STD $pkgs
fi
out="$target_dir/wasm32-wasip1/wasm"
for p in $plugins; do install_module "$(optimize_module "$out/${p//-/_}.wasm")" "dist/$p.wasm" sha; done
for p in $fixtures; do install_module "$out/${p//-/_}.wasm" "dist/test/$p.wasm"; done

# Higress build (ABI 0_2_100: Redis cluster mode, override-host, held headers), one cargo
# invocation in its own target directory.
if [ -n "$higress" ]; then
  hpkgs=""
  features=""
  for p in $higress; do
    hpkgs="$hpkgs -p $p"
    features="${features:+$features,}$p/higress"
  done
  # shellcheck disable=SC2086
  CARGO_TARGET_DIR="$higress_target_dir" cargo build --quiet --profile wasm --target wasm32-wasip1 \
    $WASM_BUILD_STD $hpkgs --features "$features"
  hout="$higress_target_dir/wasm32-wasip1/wasm"
  for p in $higress; do
    install_module "$(optimize_module "$hout/${p//-/_}.wasm")" "dist/higress/$p.wasm" sha
  done
fi
# Builds before the higress variants moved to dist/higress/ left copies in dist/test/.
rm -f dist/test/*-higress.wasm

printf '%-38s %10s\n' module bytes
for p in $plugins; do printf '%-38s %10s\n' "dist/$p.wasm" "$(stat -c %s "dist/$p.wasm")"; done
for p in $higress; do
  printf '%-38s %10s\n' "dist/higress/$p.wasm" "$(stat -c %s "dist/higress/$p.wasm")"
done
