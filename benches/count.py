#!/usr/bin/env python3
"""Instruction counts per handshake, fork vs vanilla, under callgrind.

Noise-free complement to the criterion bench (stdlib + valgrind only):

    python3 benches/count.py [--handshakes 500]

Builds `handshake-count` (release), then for every variant and side runs
`handshake-count run ...` under `valgrind --tool=callgrind --collect-atstart=no
--toggle-collect='*<side>_work_*'`, so only that side's rustls calls are
counted (connection construction, read_tls, process_new_packets, write_tls).
Each count is taken at two handshake counts and differenced, which removes
one-time costs (lazy initialisation, the first handshake's cold paths):
Ir/handshake = (Ir(BASE + N) - Ir(BASE)) / N.

Two numbers per row:
- all: every instruction of that side. Not perfectly reproducible: ECDSA
  signatures are randomised and their verification is variable-time (public
  data), so runs differ by a few thousand Ir per handshake.
- rustls: self cost of the functions whose name contains `rustls::` (rustls
  code, and generic code instantiated for rustls types), which is where the
  patch series lives; reproducible to a few Ir.
"""

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = ("ring", "aws-lc-rs")
# "flag": the fork's request_client_auth flag path against vanilla mTLS.
# "chromium-hello": the server's answer to a ClientHello recorded from Chromium
# (benches/fixtures/), server side only.
AUTHS = ("server-auth", "mtls", "flag", "chromium-hello")
SIDES = ("server", "client")
CRATES = ("vanilla", "fork")
BASE = 10
LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*?)(?:\s+\[[^\]]*\])?$")


def counts(binary: Path, side: str, krate: str, provider: str, auth: str, n: int) -> tuple:
    """(all Ir, Ir in rustls:: functions) of `n` handshakes."""
    with tempfile.TemporaryDirectory() as tmp:
        out_file = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out_file}",
                "--collect-atstart=no",
                f"--toggle-collect=*{side}_work_*",
                str(binary),
                "run",
                krate,
                provider,
                auth,
                str(n),
            ],
            capture_output=True,
            check=True,
        )
        annotated = subprocess.run(
            ["callgrind_annotate", "--inclusive=no", "--threshold=100", str(out_file)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    total = rustls = 0
    for line in annotated.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        ir, name = int(match.group(1).replace(",", "")), match.group(2)
        if name == "PROGRAM TOTALS":
            total = ir
        elif "rustls::" in name:
            rustls += ir
    if not total:
        sys.exit(f"no callgrind totals for {krate} {provider} {auth} {side}")
    return total, rustls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handshakes", type=int, default=500)
    parser.add_argument("--auth", choices=AUTHS, help="only this mode")
    args = parser.parse_args()

    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "-p", "benches", "--bin", "handshake-count"],
        cwd=ROOT,
        check=True,
    )
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    target = Path(re.search(r'"target_directory":"([^"]+)"', meta.stdout).group(1))
    binary = target / "release" / "handshake-count"

    n = args.handshakes
    print(
        f"| group | vanilla Ir/handshake | fork Ir/handshake | fork / vanilla "
        f"| vanilla rustls:: Ir | fork rustls:: Ir | fork − vanilla in rustls:: (share of all) |"
    )
    print("|---|---|---|---|---|---|---|")
    for provider in PROVIDERS:
        for auth in AUTHS:
            if args.auth and auth != args.auth:
                continue
            for side in SIDES:
                if auth == "chromium-hello" and side == "client":
                    continue
                per = {}
                for krate in CRATES:
                    low = counts(binary, side, krate, provider, auth, BASE)
                    high = counts(binary, side, krate, provider, auth, BASE + n)
                    per[krate] = [(h - l) / n for h, l in zip(high, low)]
                (v, v_rustls), (f, f_rustls) = per["vanilla"], per["fork"]
                print(
                    f"| `handshake/{provider}/{auth}/{side}` | {v:,.0f} | {f:,.0f} "
                    f"| {f / v:.4f} ({(f / v - 1) * 100:+.2f}%) "
                    f"| {v_rustls:,.0f} | {f_rustls:,.0f} "
                    f"| {f_rustls - v_rustls:+,.0f} ({(f_rustls - v_rustls) / v * 100:+.3f}%) |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
