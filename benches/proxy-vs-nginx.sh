#!/usr/bin/env bash
# rca-proxy against nginx (Debian's package), both terminating TLS 1.3 with the
# same P-256 certificate on loopback and forwarding to the same upstream (a
# separate nginx process answering "ok"), loaded by the same client (tls-load).
# Servers are pinned to core 0 with one worker each (nginx worker_processes 1,
# rca-proxy TOKIO_WORKER_THREADS=1), the upstream too, the load generator to
# core 1. Both log every request, as deployed: nginx its combined format to a
# file (buffered, 64 KiB), rca-proxy its JSON lines on standard output into a
# file. The upstream does not log.
# Both send their default two TLS 1.3 session tickets after each full
# handshake (nginx's `ssl_session_tickets on`, OpenSSL's two; rca-proxy's
# two), so both do the same work; tls-load never resumes.
#
# Two passes: at saturation (each worker sends as soon as it is answered),
# reporting the rate and the rate per second of the server's own CPU time
# (the upstream's not counted); then at a fixed offered rate both servers
# sustain, reporting latency counted from when each request was due.
#
#   bash benches/proxy-vs-nginx.sh [seconds per run, default 4] [rounds, default 5] [passes]
#
# passes: "saturation fixed-rate" by default; name one to run only it. The
# last lines are the table of benches/README.md (benches/proxy-report.py).
# The pass "key-exchange" (not run by default) loads rca-proxy alone with full
# handshakes from clients offering X25519 only and clients offering
# aws-lc-rs's defaults (since rustls 0.23.48 X25519MLKEM768 first, which
# rca-proxy then picks); its JSON lines are the numbers, per_core_rate the
# handshakes per second of the proxy's own CPU time.
#
# NGINX_HEADERS=identity (the default) has nginx send the upstream what
# rca-proxy sends it: the forwarding headers and the client's identity
# (nginx's own variables: the subject and a SHA-1 fingerprint for bots), as
# a site that authenticates bots with nginx would configure it.
# NGINX_HEADERS=none has nginx forward only what it forwards unconfigured
# (Host), so it does less per request than rca-proxy.
#
# Not part of CI: a benchmark, read by people (numbers in benches/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-4}"
rounds="${2:-5}"
passes="${3:-saturation fixed-rate}"
. benches/upstream.sh
install_nginx
cargo xtask fork >/dev/null
cargo build --release --quiet -p rca-tools --bin rca-proxy -p benches --bin tls-load
cargo build --release --quiet -p rustls-req-client-auth --example pki
nginx_headers="${NGINX_HEADERS:-identity}"
work=$(mktemp -d)
stop_nginx() {
    nginx -p "$work" -c "$work/nginx.conf" -s stop 2>/dev/null || true
    stop_upstream "$work"
}
trap 'kill $(jobs -p) 2>/dev/null; stop_nginx; rm -rf "$work"' EXIT
target/release/examples/pki "$work" >/dev/null

start_upstream "$work"

# What each nginx server adds to the upstream request (besides Host and the
# empty Connection of keep-alive).
: > "$work/forwarded.conf"
: > "$work/browser.conf"
: > "$work/bot.conf"
case "$nginx_headers" in
identity)
    cat > "$work/forwarded.conf" <<'CONF'
proxy_set_header Forwarded "for=$remote_addr;proto=$scheme;host=\"$host\"";
proxy_set_header X-Forwarded-For $remote_addr;
proxy_set_header X-Forwarded-Proto $scheme;
proxy_set_header X-Forwarded-Host $host;
proxy_set_header X-Client-Session-Resumed $ssl_session_reused;
CONF
    echo 'proxy_set_header X-Client-Auth-Path none;' > "$work/browser.conf"
    cat > "$work/bot.conf" <<'CONF'
proxy_set_header X-Client-Auth-Path flag;
proxy_set_header X-Client-Cert-Subject $ssl_client_s_dn;
proxy_set_header X-Client-Cert-Fingerprint $ssl_client_fingerprint;
CONF
    ;;
none) ;;
*) echo "NGINX_HEADERS must be identity or none" >&2; exit 2 ;;
esac

cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon on;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 4096; }
http {
    access_log $work/access.log combined buffer=64k;
    keepalive_requests 1000000;
    upstream backend { server 127.0.0.1:18080; keepalive 64; }
    server {
        listen 127.0.0.1:18443 ssl;
        ssl_protocols TLSv1.3;
        ssl_certificate $work/server.pem;
        ssl_certificate_key $work/server.key;
        location / {
            proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
            include $work/forwarded.conf;
            include $work/browser.conf;
        }
    }
    server {
        listen 127.0.0.1:18444 ssl;
        ssl_protocols TLSv1.3;
        ssl_certificate $work/server.pem;
        ssl_certificate_key $work/server.key;
        ssl_client_certificate $work/bot-ca.pem;
        ssl_verify_client on;
        location / {
            proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
            include $work/forwarded.conf;
            include $work/bot.conf;
        }
    }
}
CONF
taskset -c 0 nginx -p "$work" -c "$work/nginx.conf"

start_rca_proxy "$work"
proxy_pid=$!
wait_for_ports 18080 18443 18444 18445
# nginx's work is done in its worker; the master only waits.
nginx_pid=$(pgrep -P "$(cat "$work/nginx.pid")")

load() {
    taskset -c 1 target/release/tls-load --ca "$work/server-ca.pem" --seconds "$seconds" --connections 16 "$@"
}
bot=(--cert "$work/bot.pem" --key "$work/bot.key")
# Offered rates for the latency pass: well below what either server sustains
# on one core in the saturation pass (nginx's mTLS handshakes are the lowest,
# about 450/s with its session tickets).
declare -A offered=([handshakes]=200 [keepalive]=8000)
results="$work/results.jsonl"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); nginx headers: $nginx_headers"
# Rounds interleave the four configurations, so a slow stretch of this shared
# VM hits all of them alike; the report pairs each nginx run with the proxy
# run next to it.
for pass in $passes; do
    if [ "$pass" = key-exchange ]; then
        for _ in $(seq "$rounds"); do
            for kx in x25519 default; do
                load --mode handshakes --key-exchange $kx --label "key-exchange browser-$kx" \
                    --url https://localhost:18445/ --server-pid "$proxy_pid"
                load --mode handshakes --key-exchange $kx --label "key-exchange bot-$kx" \
                    --url https://localhost:18445/ "${bot[@]}" --flag --server-pid "$proxy_pid"
            done
        done
        continue
    fi
    for mode in handshakes keepalive; do
        rate=()
        [ "$pass" = fixed-rate ] && rate=(--rate "${offered[$mode]}")
        for _ in $(seq "$rounds"); do
            load --mode $mode "${rate[@]}" --label "nginx browser" --url https://localhost:18443/ --server-pid "$nginx_pid"
            load --mode $mode "${rate[@]}" --label "rca-proxy browser" --url https://localhost:18445/ --server-pid "$proxy_pid"
            load --mode $mode "${rate[@]}" --label "nginx bot" --url https://localhost:18444/ "${bot[@]}" --server-pid "$nginx_pid"
            load --mode $mode "${rate[@]}" --label "rca-proxy bot" --url https://localhost:18445/ "${bot[@]}" --flag --server-pid "$proxy_pid"
        done
    done
done | tee "$results"
echo "after: load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 benches/proxy-report.py "$results"
