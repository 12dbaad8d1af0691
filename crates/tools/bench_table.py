#!/usr/bin/env python3
"""Prints the README's benchmark rows from criterion's saved estimates (medians).

Run at the repository root after `cargo bench --bench log`:
python3 crates/tools/bench_table.py [target/criterion]
"""
import json
import sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")


def median_ns(bench):
    est = json.loads((root / bench / "new" / "estimates.json").read_text())
    return est["median"]["point_estimate"]


def throughput(bench):
    meta = json.loads((root / bench / "new" / "benchmark.json").read_text())
    return meta.get("throughput") or {}


def fmt_time(ns):
    return f"{ns / 1000:.1f} µs" if ns < 1e6 else f"{ns / 1e6:.2f} ms"


def rate(bench):
    ns = median_ns(bench)
    t = throughput(bench)
    if "Elements" in t:
        return t["Elements"] / (ns / 1e9)
    if "Bytes" in t:
        return t["Bytes"] / (ns / 1e9)
    return None


def row(label, bench):
    ns = median_ns(bench)
    r = rate(bench)
    t = throughput(bench)
    extra = ""
    if "Elements" in t:
        extra = f" ({r / 1e6:.2f} M records/s)" if r >= 1e6 else f" ({r / 1e3:.1f} k records/s)"
    elif "Bytes" in t:
        extra = f" ({r / 1e9:.2f} GB/s)"
    print(f"| {label} | {fmt_time(ns)}{extra} |")


for size, name in [(64, "64 B"), (256, "256 B"), (4096, "4 KiB")]:
    row(f"append {name}, Buffered, batch of 1000", f"append_buffered/batch1000/{size}")
    row(f"append {name}, Buffered, one record per call", f"append_buffered/single/{size}")
row("Sync, one caller, 4 KiB frame", "sync_one_caller/log_append_sync_4k")
row("bare 4 KiB pwrite + fdatasync", "sync_one_caller/bare_write_fdatasync_4k")
ratio = median_ns("sync_one_caller/log_append_sync_4k") / median_ns("sync_one_caller/bare_write_fdatasync_4k")
print(f"| ratio Sync one caller / bare write + fdatasync | {ratio:.2f}× |")
for group, what in [("sync_tasks", "async tasks"), ("sync_callers", "OS threads")]:
    row(f"Sync, 1 ({what})", f"{group}/1")
    row(f"Sync, 64 {what}", f"{group}/64")
    print(f"| ratio 64 / 1 {what} | {rate(f'{group}/64') / rate(f'{group}/1'):.1f}× |")
row("sequential scan, checksums verified", "scan/verify_256MiB_256B_records")
