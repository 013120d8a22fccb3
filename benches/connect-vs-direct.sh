#!/usr/bin/env bash
# rca-connect's cost to a bot: the same requests to rca-proxy sent directly by
# a flagged client (tls-load --flag: the BotClient configuration, the bot
# certificate on the flag path) and sent by a plain client through
# rca-connect (tls-load --proxy: CONNECT, TLS with the local CA, and
# rca-connect's flagged upstream connection). rca-proxy and its upstream (an
# nginx answering "ok") are pinned to core 0; the bot's side (tls-load, and
# rca-connect on one thread, --threads 1) to core 1. Its rate is reported per
# second of the bot side's own CPU time (tls-load's and rca-connect's
# together: client_side_rate).
#
# Four passes, each over rounds that interleave the variants:
# - BotClient keepalive: a bot written with BotClient (reqwest, HTTP/2 by
#   ALPN, 16 requests in flight; bot-load) directly, and the same reqwest
#   without the flag through rca-connect;
# - keepalive: tls-load's requests one after another on kept HTTP/1.1
#   connections (16): the leanest client there is, so the local hop's cost
#   shows undiluted;
# - new connections: a new client connection (direct: a full handshake with
#   rca-proxy; through rca-connect: a new tunnel and local handshake, over
#   rca-connect's pooled upstream connection) per request;
# - first request: at a fixed low rate, the latency of a request on a new
#   connection where rca-connect has no upstream connection either
#   (--max-idle-per-host 0), against the direct full handshake: what a
#   bot's first request costs; once on loopback, and once with the server
#   20 ms away (benches/delay-relay.py delays each direction by 10 ms), where
#   the local hop's round trips and rca-connect's early upstream connection
#   show against a real network's.
#
#   bash benches/connect-vs-direct.sh [seconds per run, default 4] [rounds, default 3]
#
# Not part of CI: a benchmark, read by people (numbers in benches/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-4}"
rounds="${2:-3}"
. benches/upstream.sh
cargo xtask fork >/dev/null
cargo build --release --quiet -p rca-tools --bin rca-proxy --bin rca-connect -p benches --bin tls-load --bin bot-load
cargo build --release --quiet -p rustls-req-client-auth --example pki
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; stop_upstream "$work"; rm -rf "$work"' EXIT
target/release/examples/pki "$work" >/dev/null
start_upstream "$work"

start_rca_proxy "$work"
proxy_pid=$!
connect() {
    local port=$1
    shift
    RUST_LOG=error taskset -c 1 target/release/rca-connect --threads 1 \
        --cert "$work/bot.pem" --key "$work/bot.key" --roots none --ca "$work/server-ca.pem" \
        --state-dir "$work/state" --listen "127.0.0.1:$port" "$@" >"$work/connect-$port.log" &
}
connect 18118
pooled_pid=$!
wait_for_ports 18118
connect 18119 --max-idle-per-host 0
cold_pid=$!
python3 benches/delay-relay.py 18446 18445 10 &
wait_for_ports 18080 18445 18119 18446

load() {
    taskset -c 1 target/release/tls-load --seconds "$seconds" "$@" --server-pid "$proxy_pid"
}
direct=(--ca "$work/server-ca.pem" --cert "$work/bot.pem" --key "$work/bot.key" --flag --url https://localhost:18445/)
through() {
    echo --ca "$work/state/ca.pem" --proxy "127.0.0.1:$1" --url https://localhost:18445/ --client-side-pid "$2"
}
results="$work/results.jsonl"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$rounds"); do
    taskset -c 1 target/release/bot-load --seconds "$seconds" --label "direct botclient" \
        --url https://localhost:18445/ --ca "$work/server-ca.pem" --cert "$work/bot.pem" --key "$work/bot.key"
    taskset -c 1 target/release/bot-load --seconds "$seconds" --label "rca-connect botclient" \
        --url https://localhost:18445/ --ca "$work/state/ca.pem" --proxy http://127.0.0.1:18118 --client-side-pid "$pooled_pid"
    for mode in keepalive handshakes; do
        load --connections 16 --mode $mode --label "direct $mode" "${direct[@]}"
        # shellcheck disable=SC2046
        load --connections 16 --mode $mode --label "rca-connect $mode" $(through 18118 "$pooled_pid")
    done
    load --connections 4 --rate 100 --mode handshakes --label "direct first-request" "${direct[@]}"
    # shellcheck disable=SC2046
    load --connections 4 --rate 100 --mode handshakes --label "rca-connect first-request" $(through 18119 "$cold_pid")
    far=(--connections 1 --rate 5 --mode handshakes)
    load "${far[@]}" --label "direct first-request-20ms" --ca "$work/server-ca.pem" \
        --cert "$work/bot.pem" --key "$work/bot.key" --flag --url https://localhost:18446/
    load "${far[@]}" --label "rca-connect first-request-20ms" --ca "$work/state/ca.pem" \
        --proxy 127.0.0.1:18119 --url https://localhost:18446/ --client-side-pid "$cold_pid"
done | tee "$results"
echo "after: load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
def median(label, field):
    values = [run[field] for run in runs if run["label"] == label and field in run]
    return statistics.median(values) if values else float("nan")
print("\n| pass | direct | through rca-connect | ratio |")
print("|---|---:|---:|---:|")
for mode in ("botclient", "keepalive", "handshakes"):
    d, c = median(f"direct {mode}", "client_side_rate"), median(f"rca-connect {mode}", "client_side_rate")
    print(f"| {mode}: requests per bot-side CPU second | {d:,.0f} | {c:,.0f} | {c / d:.2f} |")
    d, c = median(f"direct {mode}", "rate"), median(f"rca-connect {mode}", "rate")
    print(f"| {mode}: requests per second | {d:,.0f} | {c:,.0f} | {c / d:.2f} |")
for label, what in (("first-request", "loopback, 100/s"), ("first-request-20ms", "server 20 ms away, 5/s")):
    for field in ("p50_ms", "p99_ms"):
        d, c = median(f"direct {label}", field), median(f"rca-connect {label}", field)
        print(f"| first request, {field} ({what}) | {d:.3f} | {c:.3f} | +{c - d:.3f} ms |")
PY
