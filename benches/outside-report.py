#!/usr/bin/env python3
"""The numbers of proxy-from-outside.sh.

    outside-report.py parse MODE SERVER ROUND CPU_TICKS CLK_TCK < tool output
        one JSON line from a wrk or h2load run: requests/s, requests per
        second of the server's CPU time, p99 (wrk only), errors
    outside-report.py report RESULTS.jsonl
        Markdown tables: per mode, each server's rate, rate per core and p99
        (medians over rounds), rca-proxy's ratio to each other server over
        all rounds (requests / CPU seconds summed) with the range of the
        single rounds' ratios; then the idle-connection memory lines and
        the handshake phases (handshake-phases.py's lines).

Standard library only.
"""

import json
import re
import statistics
import sys
from collections import defaultdict

SERVERS = ("nginx", "haproxy", "rca-proxy")
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse(mode: str, server: str, round_: str, ticks: str, clk_tck: str) -> None:
    text = sys.stdin.read()
    cpu = int(ticks) / int(clk_tck)
    line = {"mode": mode, "server": server, "round": int(round_), "cpu_seconds": cpu}
    if mode == "h2":
        done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", text)
        took = re.search(r"finished in ([\d.]+)s", text)
        requests = int(done.group(2)) if done else 0
        seconds = float(took.group(1)) if took else 0.0
        line["errors"] = int(done.group(1)) - requests if done else None
        line["p99_ms"] = None
    else:
        total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
        requests = int(total.group(1)) if total else 0
        seconds = float(total.group(2)) * {"s": 1, "m": 60, "ms": 1e-3}.get(total.group(3), 1) if total else 0.0
        p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
        line["p99_ms"] = float(p99.group(1)) * UNITS[p99.group(2)] if p99 else None
        errors = re.search(r"Socket errors: (.*)", text)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        line["errors"] = (errors.group(1) if errors else "") + (f" non2xx={non2xx.group(1)}" if non2xx else "")
    line["requests"] = requests
    line["rate"] = requests / seconds if seconds else 0.0
    line["per_core"] = requests / cpu if cpu else 0.0
    print(json.dumps(line))


def report(path: str) -> None:
    runs = defaultdict(list)
    idle = []
    phases = []
    with open(path, encoding="utf-8") as results:
        for raw in results:
            raw = raw.strip()
            if not raw.startswith("{"):
                continue
            line = json.loads(raw)
            if "rss_per_connection_kb" in line:
                idle.append(line)
            elif "connections" in line and "round" not in line:
                phases.append(line)
            else:
                runs[(line["mode"], line["server"])].append(line)
    for mode in ("keepalive", "handshakes", "full", "h2"):
        if not any((mode, server) in runs for server in SERVERS):
            continue
        print(f"\n### {mode}\n")
        print("| server | requests/s | per CPU second | p99 ms | rca-proxy per core ÷ this (all rounds; rounds) |")
        print("|---|---:|---:|---:|---|")
        mine = runs.get((mode, "rca-proxy"), [])
        for server in SERVERS:
            these = runs.get((mode, server), [])
            if not these:
                continue
            rate = statistics.median(run["rate"] for run in these)
            per_core = sum(run["requests"] for run in these) / max(sum(run["cpu_seconds"] for run in these), 1e-9)
            p99s = [run["p99_ms"] for run in these if run["p99_ms"] is not None]
            p99 = f"{statistics.median(p99s):.2f}" if p99s else "–"
            ratio = "–"
            if server != "rca-proxy" and mine:
                mine_core = sum(run["requests"] for run in mine) / max(sum(run["cpu_seconds"] for run in mine), 1e-9)
                paired = [
                    a["per_core"] / b["per_core"]
                    for a, b in zip(sorted(mine, key=lambda r: r["round"]), sorted(these, key=lambda r: r["round"]))
                    if b["per_core"]
                ]
                ratio = f"{mine_core / per_core:.2f} ({min(paired):.2f}–{max(paired):.2f})" if paired else "–"
            print(f"| {server} | {rate:,.0f} | {per_core:,.0f} | {p99} | {ratio} |")
    if idle:
        print("\n### idle keep-alive connections\n")
        print("| server | connections | RSS before, KB | after, KB | per connection, KB |")
        print("|---|---:|---:|---:|---:|")
        for line in idle:
            print(
                f"| {line['label']} | {line['connections']} | {line['rss_before_kb']} | "
                f"{line['rss_after_kb']} | {line['rss_per_connection_kb']:.1f} |"
            )
    if phases:
        print("\n### where a new connection's time goes (ms, p50 / p99; from a 0.3 s capture)\n")
        print("| mode | server | connections | resumed | ClientHello → server flight | → client Finished | request → response | response → client's next segment |")
        print("|---|---|---:|---:|---|---|---|---|")
        for line in phases:
            def cell(name):
                value = line.get(name)
                return f"{value['p50']:.2f} / {value['p99']:.2f}" if value else "–"
            share = line.get("resumed_share")
            resumed = f"{share:.0%}" if share is not None else "–"
            print(
                f"| {line['mode']} | {line['server']} | {line['connections']} | {resumed} | "
                f"{cell('server_hello_ms')} | {cell('client_finished_ms')} | "
                f"{cell('request_to_response_ms')} | {cell('client_reaction_ms')} |"
            )


if __name__ == "__main__":
    if sys.argv[1] == "parse":
        parse(*sys.argv[2:7])
    else:
        report(sys.argv[2])
