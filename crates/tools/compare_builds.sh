#!/usr/bin/env bash
# Runs the same benchmarks from two builds of the repository, taking turns (before, after,
# before, after, ...) so that a busy shared machine weighs on both alike, and keeps every raw
# output. Compare medians and ratios of the same round, never single absolute times.
#
# usage: crates/tools/compare_builds.sh BEFORE_TREE AFTER_TREE OUT_DIR [ROUNDS]
#
# Each tree is a checkout (e.g. `git worktree add /tmp/before <commit>`) built with
#   cargo build --release --bins   (in the workspace: -p maos-coord-tools --bins -p maos-coord-cli)
#   cargo bench --bench log --no-run   (in the workspace: -p maos-coord-tools)
# Outputs: OUT_DIR/<round>-<before|after>-<log|sync-cost|coord>.txt;
# `python3 crates/tools/compare_builds.py OUT_DIR` prints the table.
set -euo pipefail
before=$1
after=$2
out=$3
rounds=${4:-3}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

newest_log_bench() {
    # The criterion `log` bench binary most recently built in that tree.
    ls -t "$1"/target/release/deps/log-* | grep -v '\.d$' | head -n 1
}

run() {
    local tree=$1 name=$2 round=$3
    local bench
    bench=$(newest_log_bench "$tree")
    (cd "$tree" && "$bench" --bench 'append_buffered|sync_one_caller' --noplot) \
        > "$out/$round-$name-log.txt" 2>&1
    "$tree/target/release/maos-bench-sync-cost" --count 3000 --dir "$work" \
        > "$out/$round-$name-sync-cost.txt" 2>&1
    "$tree/target/release/maos-bench-coord" --tasks 2000 --sync-tasks 300 \
        --replay-records 300000 --mixed-records 100000 \
        > "$out/$round-$name-coord.txt" 2>&1
}

for round in $(seq 1 "$rounds"); do
    if (( round % 2 )); then
        run "$before" before "$round"
        run "$after" after "$round"
    else
        run "$after" after "$round"
        run "$before" before "$round"
    fi
done
