#!/usr/bin/env python3
"""Resident memory per idle keep-alive TLS connection of a server.

Reads the server's VmRSS, opens CONNECTIONS TLS 1.3 connections to
localhost:PORT (verified with --ca), sends one HTTP/1.1 GET on each and
reads its answer, waits two seconds with all of them open and idle, reads
VmRSS again, and prints one JSON line: before, after, and the difference per
connection. The connections close when it exits.

    idle-connections.py --port 18445 --ca server-ca.pem --connections 2000 --pid PID --label NAME

Standard library only (asyncio and ssl).
"""

import argparse
import asyncio
import json
import ssl


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def one(port: int, context: ssl.SSLContext, opened: list) -> None:
    reader, writer = await asyncio.open_connection("localhost", port, ssl=context, server_hostname="localhost")
    writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    opened.append(writer)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--label", required=True)
    args = parser.parse_args()
    context = ssl.create_default_context(cafile=args.ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.set_alpn_protocols(["http/1.1"])
    # One connection first, so what the first request allocates for good
    # (pools, caches) is in "before".
    warm = []
    await one(args.port, context, warm)
    await asyncio.sleep(1)
    before = rss_kb(args.pid)
    opened = []
    batch = 100
    for start in range(0, args.connections, batch):
        await asyncio.gather(*(one(args.port, context, opened) for _ in range(min(batch, args.connections - start))))
    await asyncio.sleep(2)
    after = rss_kb(args.pid)
    print(
        json.dumps(
            {
                "label": args.label,
                "connections": len(opened),
                "rss_before_kb": before,
                "rss_after_kb": after,
                "rss_per_connection_kb": (after - before) / max(len(opened), 1),
            }
        )
    )
    for writer in opened + warm:
        writer.close()


if __name__ == "__main__":
    asyncio.run(main())
