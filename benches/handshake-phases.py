#!/usr/bin/env python3
"""Where a new connection's time goes, read from a packet capture.

    handshake-phases.py --port PORT --label SERVER --mode MODE CAPTURE.pcap

CAPTURE is `tcpdump -i lo -s 0 -w` of a load generator that opens a TLS 1.3
connection per request (wrk with `Connection: close`) to a server on PORT.
For each connection whose SYN was captured, the payload segments give:

- `resumed`: whether the ServerHello carries `pre_shared_key` (41), i.e.
  the handshake was a resumption, not a full one;
- `server_hello_ms`: ClientHello -> the server's first flight (the server's
  handshake work and any queue in front of it);
- `client_finished_ms`: that flight -> the client's Finished (the load
  generator's own handshake work and queue);
- `request_to_response_ms`: the request -> the server's response (the
  segment before its 24-byte close_notify, or the last one);
- `client_reaction_ms`: the response -> the client's next segment (how
  long the load generator took to read it, which its latency includes).

One JSON line of medians and percentiles per capture. The pcap format is
read here (the classic format tcpdump writes: a 24-byte file header, a
16-byte header per packet); IPv4 over loopback only.
"""

import argparse
import collections
import json
import struct

CLOSE_NOTIFY_LEN = 24  # a TLS 1.3 alert record: 5 header + 2 + 1 type + 16 tag
PRE_SHARED_KEY = 41
LINK_HEADER = {1: 14, 113: 16, 276: 20}  # Ethernet (lo), Linux SLL, SLL2


def packets(path):
    """(time, source port, destination port, flags, payload) per packet."""
    with open(path, "rb") as capture:
        header = capture.read(24)
        magic = struct.unpack("<I", header[:4])[0]
        if magic not in (0xA1B2C3D4, 0xA1B23C4D):
            raise SystemExit(f"{path}: not a little-endian pcap file (tcpdump -w writes one)")
        divisor = 1e9 if magic == 0xA1B23C4D else 1e6
        link = struct.unpack("<I", header[20:24])[0]
        skip = LINK_HEADER.get(link)
        if skip is None:
            raise SystemExit(f"{path}: link type {link} is not read here")
        while True:
            record = capture.read(16)
            if len(record) < 16:
                return
            seconds, fraction, captured, _ = struct.unpack("<IIII", record)
            frame = capture.read(captured)
            ip = frame[skip:]
            if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
                continue
            ip_len = (ip[0] & 15) * 4
            total = struct.unpack(">H", ip[2:4])[0]
            tcp = ip[ip_len:total]
            if len(tcp) < 20:
                continue
            source, destination = struct.unpack(">HH", tcp[:4])
            tcp_len = (tcp[12] >> 4) * 4
            yield seconds + fraction / divisor, source, destination, tcp[13], tcp[tcp_len:]


def resumed(server_hello):
    """Whether a ServerHello record lists pre_shared_key; None if unreadable."""
    try:
        if server_hello[0] != 0x16 or server_hello[5] != 2:
            return None
        body = server_hello[9:]
        at = 34  # legacy_version, random
        at += 1 + body[at]  # legacy_session_id_echo
        at += 3  # cipher_suite, legacy_compression_method
        end = at + 2 + struct.unpack(">H", body[at : at + 2])[0]
        at += 2
        while at + 4 <= end:
            kind, length = struct.unpack(">HH", body[at : at + 4])
            if kind == PRE_SHARED_KEY:
                return True
            at += 4 + length
        return False
    except (IndexError, struct.error):
        return None


def phases(segments):
    """The phases of one connection, or None if it is incomplete."""
    client = [(t, data) for t, side, _, data in segments if side == "client" and data]
    server = [(t, data) for t, side, _, data in segments if side == "server" and data]
    if len(client) < 3 or len(server) < 2:
        return None
    hello, flight = client[0][0], server[0][0]
    finished = next((t for t, _ in client[1:] if t > flight), None)
    if finished is None:
        return None
    # The request: the client segment after its Finished, if it came apart.
    request = client[2][0] if len(client) >= 4 else client[1][0]
    after = [(t, data) for t, data in server if t > request]
    if not after:
        return None
    if len(after) > 1 and len(after[-1][1]) == CLOSE_NOTIFY_LEN:
        response = after[-2][0]
    else:
        response = after[-1][0]
    reaction = next(
        (t for t, side, flags, data in segments if side == "client" and t > response and (data or flags & 1)),
        None,
    )
    return {
        "resumed": resumed(server[0][1]),
        "server_hello_ms": (flight - hello) * 1000,
        "client_finished_ms": (finished - flight) * 1000,
        "request_to_response_ms": (response - request) * 1000,
        "client_reaction_ms": None if reaction is None else (reaction - response) * 1000,
    }


def percentile(values, share):
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * share))], 3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("capture")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--mode", required=True)
    args = parser.parse_args()
    connections = collections.defaultdict(list)
    for time, source, destination, flags, data in packets(args.capture):
        if args.port not in (source, destination):
            continue
        side, peer = ("server", destination) if source == args.port else ("client", source)
        connections[peer].append((time, side, flags, data))
    measured = []
    for segments in connections.values():
        first = segments[0]
        syn_only = first[2] & 0x02 and not first[2] & 0x10
        if syn_only:  # the whole connection is in the capture
            one = phases(segments)
            if one is not None:
                measured.append(one)
    line = {"mode": args.mode, "server": args.label, "connections": len(measured)}
    if measured:
        readable = [one["resumed"] for one in measured if one["resumed"] is not None]
        line["resumed_share"] = round(sum(readable) / len(readable), 3) if readable else None
        for name in ("server_hello_ms", "client_finished_ms", "request_to_response_ms", "client_reaction_ms"):
            values = [one[name] for one in measured if one[name] is not None]
            if values:
                line[name] = {"p50": percentile(values, 0.5), "p90": percentile(values, 0.9), "p99": percentile(values, 0.99)}
    print(json.dumps(line))


if __name__ == "__main__":
    main()
