#!/usr/bin/env bash
# `make fuzz`: runs every fuzz target of tests/fuzz in turn for FUZZ_SECONDS (default 600) each.
#
#   scripts/fuzz.sh                 # all targets
#   scripts/fuzz.sh resp sse_parser # some targets
#   FUZZ_SECONDS=10 scripts/fuzz.sh # a short smoke run
#
# Builds with cargo-fuzz on the stable toolchain (RUSTC_BOOTSTRAP=1 unlocks the -Z flags it
# passes), without a sanitizer (the code under test is safe Rust) and with debug assertions, so
# integer overflow panics. Each target starts from its committed seed corpus
# (tests/fuzz/corpus/<target>) and grows a working copy in tests/fuzz/corpus-run/<target>;
# crashes land in tests/fuzz/artifacts/<target>/ and logs in tests/fuzz/logs/. Both are
# git-ignored. A summary line per target (seconds, executions, result) goes to
# tests/fuzz/logs/summary.tsv. Exits non-zero when any target found a crash.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_DIR=tests/fuzz
SECONDS_PER_TARGET="${FUZZ_SECONDS:-600}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list --fuzz-dir "$FUZZ_DIR")
fi

cargo fuzz build --fuzz-dir "$FUZZ_DIR" -s none -a -O

mkdir -p "$FUZZ_DIR/logs"
summary="$FUZZ_DIR/logs/summary.tsv"
failed=0
for t in "${targets[@]}"; do
    work="$FUZZ_DIR/corpus-run/$t"
    mkdir -p "$work" "$FUZZ_DIR/artifacts/$t"
    log="$FUZZ_DIR/logs/$t.log"
    echo "fuzzing $t for ${SECONDS_PER_TARGET}s (log: $log)"
    status=ok
    if ! cargo fuzz run --fuzz-dir "$FUZZ_DIR" -s none -a -O "$t" "$work" "$FUZZ_DIR/corpus/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        status=crash
        failed=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "${secs:-?}" "${runs:-?}" "$status" | tee -a "$summary"
    if [ "$status" = crash ]; then
        grep -E 'panicked at|Test unit written to' "$log" | head -5 || true
    fi
done
exit "$failed"
