#!/usr/bin/env python3
"""Prints a markdown table from the raw outputs of compare_builds.sh: per measurement, the value of
each round for the build before and the build after, the medians, and after/before of the medians.

python3 crates/tools/compare_builds.py OUT_DIR
"""
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

UNITS = {"ps": 1e-6, "ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3, "s": 1e6}


def criterion(text):
    """Median times (µs) of criterion's report: a name line, then `time: [low median high]`."""
    out = {}
    name = None
    for line in text.splitlines():
        m = re.match(r"^(\S+/\S+)\s*(time:.*)?$", line.strip())
        if m and "/" in m.group(1) and not line.startswith(" "):
            name = m.group(1)
        t = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
        if t and name:
            out[f"log bench: {name} (µs)"] = float(t.group(1)) * UNITS[t.group(2)]
            name = None
    return out


def sync_cost(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"\s+(.+?)\s{2,}([\d.]+) us(?: \(([+-][\d.]+)% against bare\))?", line)
        if m:
            out[f"sync cost: {m.group(1)} (µs)"] = float(m.group(2))
            if m.group(3):
                out[f"sync cost: {m.group(1)} (% over bare, same run)"] = float(m.group(3))
    return out


def coord(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*(Buffered|Sync)\s*\|\s*(\d+)\s*\|\s*\d+\s*\|\s*(\d+)\s*\|", line)
        if m:
            out[f"claim + complete, {m.group(1)}, {m.group(2)} process(es) (cycles/s)"] = float(m.group(3))
        m = re.match(r"open with full replay of (\d+) (custom-event|mixed) records: ([\d.]+) s", line)
        if m:
            out[f"open with full replay of {m.group(1)} {m.group(2)} records (s)"] = float(m.group(3))
    return out


PARSERS = {"log": criterion, "sync-cost": sync_cost, "coord": coord}


def main():
    root = Path(sys.argv[1])
    values = defaultdict(lambda: defaultdict(list))
    for path in sorted(root.glob("*-*-*.txt")):
        round_, build, tool = path.stem.split("-", 2)
        for key, value in PARSERS[tool](path.read_text(errors="replace")).items():
            values[key][build].append(value)
    print("| measurement | before (each round) | after (each round) | median before | median after | after / before |")
    print("| --- | --- | --- | --- | --- | --- |")
    for key in sorted(values):
        b, a = values[key]["before"], values[key]["after"]
        if not b or not a:
            continue
        mb, ma = statistics.median(b), statistics.median(a)
        ratio = f"{ma / mb:.3f}" if mb else "-"
        fmt = lambda xs: ", ".join(f"{x:g}" for x in xs)
        print(f"| {key} | {fmt(b)} | {fmt(a)} | {mb:g} | {ma:g} | {ratio} |")


if __name__ == "__main__":
    main()
