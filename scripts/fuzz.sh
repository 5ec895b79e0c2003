#!/usr/bin/env bash
# Builds every cargo-fuzz target of fuzz/ and runs each for SECONDS (default 60), one after
# the other. Not part of CI. Needs cargo-fuzz (`cargo install cargo-fuzz`); works on stable
# through RUSTC_BOOTSTRAP=1. Stops at the first target that finds a crash: the input lands in
# fuzz/artifacts/<target>/ (replay: see docs/fuzzing.md).
#
#   bash scripts/fuzz.sh            # 60 s per target
#   bash scripts/fuzz.sh 600        # 10 min per target
#   JOBS=2 bash scripts/fuzz.sh 60  # libFuzzer -jobs/-workers per target
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs="${1:-60}"
case "$secs" in
    ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
jobs="${JOBS:-1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 1
fi
export RUSTC_BOOTSTRAP=1

# Seed the corpora from the captures in tests/data (idempotent).
if command -v python3 >/dev/null 2>&1; then
    python3 seed.py >/dev/null
fi

cargo fuzz build
targets=$(cargo fuzz list)
echo "fuzz.sh: ${secs}s each for: $(echo $targets)"
for t in $targets; do
    mkdir -p "corpus/$t"
    echo "=== $t"
    start=$(date +%s)
    extra=()
    if [ "$jobs" -gt 1 ]; then
        extra=(-jobs="$jobs" -workers="$jobs")
    fi
    log="target/fuzz-$t.log"
    mkdir -p target
    status=0
    cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 "${extra[@]}" \
        >"$log" 2>&1 || status=$?
    grep -E "^(#[0-9]+ *DONE|stat::number_of_executed_units|stat::new_units_added|==[0-9]+==|SUMMARY|.*Test unit written)" "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 40 "$log" >&2
        echo "fuzz.sh: $t FAILED (exit $status) after $(( $(date +%s) - start ))s; log $PWD/$log, input in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    echo "--- $t: ok, $(( $(date +%s) - start ))s, corpus $(ls "corpus/$t" | wc -l) inputs"
done
echo "fuzz.sh: every target ran ${secs}s without a crash"
