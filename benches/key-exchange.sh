#!/usr/bin/env bash
# rca-proxy's full handshakes when clients offer X25519 alone and when they
# offer aws-lc-rs's defaults (since rustls 0.23.48 X25519MLKEM768 first, which
# rca-proxy, also on aws-lc-rs's defaults, then picks), browsers and flagged
# bots; rca-proxy on core 0 with one worker, tls-load on core 1, rounds
# interleaved. Prints tls-load's JSON lines (per_core_rate: full handshakes
# per second of the proxy's own CPU time). Numbers in benches/README.md.
#
#   bash benches/key-exchange.sh
#
# Needs nginx (the upstream; benches/proxy-vs-nginx.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo xtask fork >/dev/null
cargo build --release --quiet -p rca-tools --bin rca-proxy -p benches --bin tls-load
cargo build --release --quiet -p rustls-req-client-auth --example pki
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; nginx -p "$work" -c "$work/upstream.conf" -s stop 2>/dev/null || true; rm -rf "$work"' EXIT
target/release/examples/pki "$work" >/dev/null
cat > "$work/upstream.conf" <<CONF
worker_processes 1;
daemon on;
pid $work/upstream.pid;
error_log $work/upstream-error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
    server { listen 127.0.0.1:18080; location / { return 200 "ok\n"; } } }
CONF
taskset -c 0 nginx -p "$work" -c "$work/upstream.conf"
cat > "$work/proxy.toml" <<CONF
listen = "127.0.0.1:18445"
[tls]
cert = "$work/server.pem"
key = "$work/server.key"
bot_ca = "$work/bot-ca.pem"
[upstream]
url = "http://127.0.0.1:18080"
CONF
TOKIO_WORKER_THREADS=1 RUST_LOG=error taskset -c 0 target/release/rca-proxy --config "$work/proxy.toml" >/dev/null &
proxy_pid=$!
for port in 18080 18445; do
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
for round in 1 2 3; do
  for kx in x25519 default; do
    taskset -c 1 target/release/tls-load --ca "$work/server-ca.pem" --seconds 4 --connections 16 --mode handshakes \
        --url https://localhost:18445/ --server-pid "$proxy_pid" --key-exchange $kx --label "browser $kx"
    taskset -c 1 target/release/tls-load --ca "$work/server-ca.pem" --seconds 4 --connections 16 --mode handshakes \
        --url https://localhost:18445/ --cert "$work/bot.pem" --key "$work/bot.key" --flag --server-pid "$proxy_pid" --key-exchange $kx --label "bot $kx"
  done
done
