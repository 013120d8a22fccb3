#!/usr/bin/env python3
"""Markdown table of proxy-vs-nginx.sh: rca-proxy against nginx, per view.

Reads the JSON lines tls-load printed (one per run; the script's rounds
interleave the four configurations) and prints, for each pass, mode and view
(browser, bot):

- the rate (requests over all rounds / time), for each server;
- the rate per core: requests over all rounds / the server's CPU seconds in
  them, and their ratio, with the range of the ratios of the single rounds
  (each nginx run paired with the proxy run next to it);
- p50, p90 and p99 latency: the median over the rounds of each round's value.

    python3 benches/proxy-report.py results.jsonl

Standard library only.
"""

import json
import statistics
import sys
from collections import defaultdict

SERVERS = ("nginx", "rca-proxy")
VIEWS = ("browser", "bot")


def main() -> None:
    runs = defaultdict(list)
    with open(sys.argv[1], encoding="utf-8") as results:
        for line in results:
            if not line.startswith("{"):
                continue
            run = json.loads(line)
            server, view = run["label"].split(" ", 1)
            if server not in SERVERS:
                continue  # the key-exchange pass: rca-proxy against itself
            runs[(run["mode"], run.get("offered_rate"), view, server)].append(run)
    print(
        "| pass | mode | view | nginx | rca-proxy | per core: nginx | rca-proxy "
        "| ratio (rounds) | p50 nginx / proxy | p90 nginx / proxy | p99 nginx / proxy |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    keys = sorted({key[:3] for key in runs}, key=lambda key: (key[1] is not None, key[0], VIEWS.index(key[2])))
    for mode, offered, view in keys:
        nginx, proxy = (runs.get((mode, offered, view, server), []) for server in SERVERS)
        if not nginx or not proxy:
            continue
        per_core = [per_core_rate(server) for server in (nginx, proxy)]
        rounds = [
            p["per_core_rate"] / n["per_core_rate"]
            for n, p in zip(nginx, proxy)
            if "per_core_rate" in n and "per_core_rate" in p
        ] or [float("nan")]
        pass_name = f"fixed {offered}/s" if offered is not None else "saturation"
        print(
            f"| {pass_name} | {mode.lower()} | {view} "
            f"| {rate(nginx):,.0f}/s | {rate(proxy):,.0f}/s "
            f"| {per_core[0]:,.0f}/s | {per_core[1]:,.0f}/s "
            f"| {per_core[1] / per_core[0]:.2f}× ({min(rounds):.2f}–{max(rounds):.2f}) "
            f"| {median(nginx, 'p50_ms')} / {median(proxy, 'p50_ms')} ms "
            f"| {median(nginx, 'p90_ms')} / {median(proxy, 'p90_ms')} ms "
            f"| {median(nginx, 'p99_ms')} / {median(proxy, 'p99_ms')} ms |"
        )


def rate(runs: list) -> float:
    """Requests per second over all rounds (every round runs equally long)."""
    return statistics.fmean(run["rate"] for run in runs)


def per_core_rate(runs: list) -> float:
    """Requests over all rounds per second of the server's CPU time in them."""
    cpu = sum(run.get("server_cpu_s", 0.0) for run in runs)
    return sum(run["requests"] for run in runs) / cpu if cpu else float("nan")


def median(runs: list, field: str) -> str:
    return f"{statistics.median(run[field] for run in runs):.2f}"


if __name__ == "__main__":
    main()
