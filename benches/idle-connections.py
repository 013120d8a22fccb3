#!/usr/bin/env python3
"""Resident memory per idle keep-alive TLS connection of a server.

Reads the server's VmRSS, opens CONNECTIONS TLS 1.3 connections to
localhost:PORT (verified with --ca), sends one HTTP/1.1 GET on each and
reads its answer, waits two seconds with all of them open and idle, reads
VmRSS again, and prints one JSON line: before, after, and the difference per
connection. The connections close when it exits. With --http2 each
connection negotiates h2 and sends its GET as one HTTP/2 stream (the frames
written here: the preface, an empty SETTINGS, a HEADERS frame of HPACK
static-table entries and one literal; SETTINGS acknowledged as they come).

    idle-connections.py --port 18445 --ca server-ca.pem --connections 2000 --pid PID --label NAME [--http2]

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


async def one_http1(port: int, context: ssl.SSLContext, opened: list) -> None:
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


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, HEADERS, GOAWAY = 4, 1, 7
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


# GET https://localhost/: :method GET (static 2), :scheme https (7), :path /
# (4), and :authority (name 1) as a literal with incremental indexing.
GET = bytes([0x82, 0x87, 0x84, 0x41, 9]) + b"localhost"


async def one_h2(port: int, context: ssl.SSLContext, opened: list) -> None:
    reader, writer = await asyncio.open_connection("localhost", port, ssl=context, server_hostname="localhost")
    writer.write(PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, END_STREAM | END_HEADERS, 1, GET))
    await writer.drain()
    while True:
        header = await reader.readexactly(9)
        length, kind, flags = int.from_bytes(header[:3], "big"), header[3], header[4]
        stream = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
        await reader.readexactly(length)
        if kind == SETTINGS and not flags & ACK:
            writer.write(frame(SETTINGS, ACK, 0))
            await writer.drain()
        elif kind == GOAWAY:
            raise RuntimeError("GOAWAY before the answer")
        elif stream == 1 and flags & END_STREAM:
            break
    opened.append(writer)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--http2", action="store_true")
    args = parser.parse_args()
    context = ssl.create_default_context(cafile=args.ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.set_alpn_protocols(["h2" if args.http2 else "http/1.1"])
    one = one_h2 if args.http2 else one_http1
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
                "label": args.label + (" (HTTP/2)" if args.http2 else ""),
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
