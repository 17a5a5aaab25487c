#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, one after another, and fails on the
# first crash (libFuzzer's exit status; the input is left in artifacts/TARGET/).
#
#   fuzz/run-all.sh 300              # 5 minutes per target
#   fuzz/run-all.sh 60 sip_message   # only the targets named
#
# Each target starts from its committed seeds (seeds/TARGET, or the seeds it
# shares: sdp_negotiate reads seeds/sdp_parse) and writes new inputs to
# corpus/TARGET (ignored by git), which later runs reuse. Needs cargo-fuzz; on a
# stable toolchain libFuzzer's flags need RUSTC_BOOTSTRAP=1 (set here).
# Prints one line per target: runs, coverage, corpus size, seconds.
set -uo pipefail

seconds=${1:?usage: fuzz/run-all.sh SECONDS [TARGET...]}
shift
cd "$(dirname "$0")"
command -v cargo-fuzz >/dev/null || { echo "needs cargo-fuzz (cargo install cargo-fuzz)" >&2; exit 2; }
export RUSTC_BOOTSTRAP=1

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

seeds_of() {
    case "$1" in
        sdp_negotiate) echo seeds/sdp_parse ;;
        *) echo "seeds/$1" ;;
    esac
}

# The default build: optimised, with debug assertions and overflow checks on.
cargo fuzz build || exit 2

failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    seeds=$(seeds_of "$t")
    [ -d "$seeds" ] || seeds=""
    log=$(mktemp)
    start=$(date +%s)
    # -rss_limit_mb: the parsers work in bounded memory; 2 GB catches runaway growth.
    # shellcheck disable=SC2086 # $seeds is empty or one directory
    cargo fuzz run "$t" "corpus/$t" $seeds -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
    status=$?
    took=$(( $(date +%s) - start ))
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    corpus=$(find "corpus/$t" -type f | wc -l)
    if [ "$status" -eq 0 ]; then
        printf '%-18s ok     %12s runs  cov %6s  corpus %6s  %5ss\n' "$t" "${runs:-?}" "${cov:-?}" "$corpus" "$took"
    else
        printf '%-18s FAILED (status %s) after %ss; log: %s\n' "$t" "$status" "$took" "$log"
        grep -m5 -E 'ERROR|panicked|Test unit written' "$log" | sed 's/^/    /'
        failed+=("$t")
        continue
    fi
    rm -f "$log"
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "crashed: ${failed[*]}" >&2
    exit 1
fi
