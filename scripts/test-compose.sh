#!/usr/bin/env bash
# Runs tests/tests/compose.rs (envoy/docker-compose.yaml against a real Envoy) when this machine
# has a Docker engine; otherwise says, in one line, that it was skipped. The test is #[ignore]d
# in plain `cargo test` runs, so without an engine it shows up as ignored there and as SKIPPED
# here: it never passes without having run.
#
#   scripts/test-compose.sh        (make test calls it)
set -euo pipefail
cd "$(dirname "$0")/.."

if docker info >/dev/null 2>&1; then
    exec "${CARGO:-cargo}" test -p aigw-tests --features docker --test compose -- --ignored
fi
echo "SKIPPED: tests/tests/compose.rs (no Docker engine on this machine)"
