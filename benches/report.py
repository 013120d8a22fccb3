#!/usr/bin/env python3
"""Markdown table of the `handshake` bench: fork vs vanilla, per group.

Reads criterion's `<target>/criterion/**/new/{benchmark,estimates}.json`
(stdlib only). Reports criterion's `mean` estimate (mean of the per-iteration
times of the samples) with its bootstrap 95% CI, and the ratio of the
`median` estimates, which is less sensitive to load spikes. Criterion's own
console line shows the `slope` estimate, which can differ from both. Run after `cargo bench -p benches --bench handshake`:

    python3 benches/report.py [--criterion-dir DIR] [--baseline new]

The target directory defaults to $CARGO_TARGET_DIR or <workspace>/target.
"""

import argparse
import json
import os
import sys
from pathlib import Path

CRATES = ("vanilla", "fork")


def default_dir() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    root = Path(target) if target else Path(__file__).resolve().parent.parent / "target"
    return root / "criterion"


def fmt_time(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.2f} {unit}"
    return f"{ns:.1f} ns"


def load(criterion_dir: Path, baseline: str) -> dict:
    rows: dict = {}
    for bench_file in sorted(criterion_dir.glob(f"**/{baseline}/benchmark.json")):
        bench = json.loads(bench_file.read_text())
        group, function = bench.get("group_id", ""), bench.get("function_id")
        if not group.startswith("handshake/") or function not in CRATES:
            continue
        estimates = json.loads((bench_file.parent / "estimates.json").read_text())
        mean, ci = estimates["mean"], estimates["mean"]["confidence_interval"]
        rows.setdefault(group, {})[function] = (
            mean["point_estimate"],
            ci["lower_bound"],
            ci["upper_bound"],
            estimates["median"]["point_estimate"],
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--criterion-dir", type=Path, default=default_dir())
    parser.add_argument("--baseline", default="new", help="criterion baseline directory (default: new)")
    args = parser.parse_args()

    rows = load(args.criterion_dir, args.baseline)
    if not rows:
        print(f"no handshake results under {args.criterion_dir}", file=sys.stderr)
        return 1

    print(
        "| group | vanilla mean (95% CI) | fork mean (95% CI) "
        "| fork / vanilla (mean) | CIs overlap | fork / vanilla (median) |"
    )
    print("|---|---|---|---|---|---|")
    for group in sorted(rows, key=sort_key):
        pair = rows[group]
        if not all(c in pair for c in CRATES):
            print(f"| `{group}` | incomplete: {sorted(pair)} | | | | |")
            continue
        (v, vlo, vhi, vmed), (f, flo, fhi, fmed) = pair["vanilla"], pair["fork"]
        overlap = "yes" if flo <= vhi and vlo <= fhi else "no"
        print(
            f"| `{group}` | {fmt_time(v)} ({fmt_time(vlo)} – {fmt_time(vhi)}) "
            f"| {fmt_time(f)} ({fmt_time(flo)} – {fmt_time(fhi)}) "
            f"| {f / v:.3f} ({(f / v - 1) * 100:+.1f}%) | {overlap} "
            f"| {fmed / vmed:.3f} ({(fmed / vmed - 1) * 100:+.1f}%) |"
        )
    return 0


def sort_key(group: str):
    # handshake/<provider>/<auth>/<side>: ring first, server-auth first, server first.
    order = {"ring": 0, "aws-lc-rs": 1, "server-auth": 0, "mtls": 1, "server": 0, "client": 1}
    return [order.get(part, 9) for part in group.split("/")[1:]] + [group]


if __name__ == "__main__":
    sys.exit(main())
