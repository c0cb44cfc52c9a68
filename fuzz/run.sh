#!/usr/bin/env bash
# Runs jvpn's fuzz targets for a bounded time each. New inputs go to fuzz/work/<target>/ (not
# committed); the committed seeds in fuzz/corpus/<target>/ are only read. Crashes land in
# fuzz/artifacts/<target>/.
#
#   fuzz/run.sh [seconds-per-target] [target ...]     (default: 300 s, every target)
#   FUZZ_TIMEOUT=30 fuzz/run.sh ...    per-input timeout in seconds (default 5; raise it on a
#                                      loaded machine, where a starved process is not a hang)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain (`rustup toolchain
# install nightly`), or RUSTC_BOOTSTRAP=1 with stable (see README.md).
set -euo pipefail
cd "$(dirname "$0")"

secs="${1:-300}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(frames handshake_responder reattach_responder open session_events session_multipath wss_input)
fi

toolchain=()
if [ -z "${RUSTC_BOOTSTRAP:-}" ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
fi

status=0
for t in "${targets[@]}"; do
    mkdir -p "work/$t"
    echo "== $t: ${secs}s"
    if ! cargo "${toolchain[@]}" fuzz run "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout="${FUZZ_TIMEOUT:-5}" -print_final_stats=1 \
        2>"work/$t.log"; then
        echo "!! $t failed: see fuzz/work/$t.log and fuzz/artifacts/$t/"
        status=1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' \
        "work/$t.log" || true
done
exit "$status"
