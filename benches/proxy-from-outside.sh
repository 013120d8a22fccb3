#!/usr/bin/env bash
# rca-proxy against nginx and HAProxy (Debian's packages), measured from
# outside with independent load generators: wrk (HTTP/1.1) and h2load
# (HTTP/2, nghttp2-client). All three terminate TLS 1.3 with the same P-256
# certificate on loopback and forward to the same upstream (a separate nginx
# answering "ok", see upstream.sh); people's traffic (no client
# certificate: wrk and h2load have none). Each server has one worker pinned
# to core 0 (nginx worker_processes 1, HAProxy nbthread 1, rca-proxy
# TOKIO_WORKER_THREADS=1), the upstream too; the load generator is pinned to
# core 1. Each logs every request, as deployed: nginx its combined format to
# a buffered file, HAProxy its httplog to standard output into a file,
# rca-proxy its JSON lines likewise.
#
# Modes, 64 connections each:
#   keepalive   wrk, HTTP/1.1 keep-alive
#   handshakes  wrk with "Connection: close": a new connection per request,
#               which wrk resumes (it keeps each connection's session: a PSK
#               handshake with a fresh ECDHE key exchange, no certificate)
#   full        the same against a second listener of each server with
#               resumption off (nginx ssl_session_tickets and
#               ssl_session_cache off, HAProxy no-tls-tickets and no cache,
#               a second rca-proxy with tls.session_resumption = false):
#               a full handshake per request
#   h2          h2load, HTTP/2, one stream per connection at a time
#   phases      for handshakes and full, 2 s more of wrk per server with 0.3 s
#               captured by tcpdump: the share of resumed handshakes, and
#               where a new connection's time goes (benches/handshake-phases.py)
# Reported per mode and server: requests/s, requests per second of the
# server's own CPU time (utime+stime from /proc, the upstream's not counted),
# the ratio of rca-proxy's to each other's from the same rounds, and wrk's
# p99 latency (at saturation). Rounds interleave the servers.
#
# Then the memory a fleet sizes by: each server's resident memory before and
# after 2,000 TLS connections that made one request each and stay idle
# (benches/idle-connections.py), per connection, over HTTP/1.1 (mode idle)
# or HTTP/2 (mode idle-h2, not among the defaults: run it alone, as
# "... 10 1 idle-h2", since nginx and HAProxy keep the memory the connections
# before it used and would count it as room for these).
#
#   bash benches/proxy-from-outside.sh [seconds per run, default 10] [rounds, default 3] [modes]
#
# modes: "keepalive handshakes full h2 idle phases" by default. Needs root for apt-get
# the first time. Not part of CI: a benchmark, read by people (numbers in
# benches/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
rounds="${2:-3}"
modes="${3:-keepalive handshakes full h2 idle phases}"
connections=64
idle_connections=2000
. benches/upstream.sh
install_nginx
for tool in wrk h2load haproxy tcpdump; do
    if ! command -v $tool >/dev/null 2>&1 && ! [ -x /usr/sbin/$tool ]; then
        echo "installing $tool"
        package=$tool
        [ $tool = h2load ] && package=nghttp2-client
        apt-get install -y -qq $package >/dev/null 2>&1 ||
            { apt-get update -qq && apt-get install -y -qq $package >/dev/null; }
    fi
done
haproxy=$(command -v haproxy || echo /usr/sbin/haproxy)
cargo xtask fork >/dev/null
cargo build --release --quiet -p rca-tools --bin rca-proxy
cargo build --release --quiet -p rustls-req-client-auth --example pki
work=$(mktemp -d)
ulimit -n "$(ulimit -Hn)"  # as many as allowed (2,000 idle connections, 64 busy ones)
stop_all() {
    nginx -p "$work" -c "$work/nginx.conf" -s stop 2>/dev/null || true
    stop_upstream "$work"
}
trap 'kill $(jobs -p) 2>/dev/null; stop_all; rm -rf "$work"' EXIT
target/release/examples/pki "$work" >/dev/null
cat "$work/server.pem" "$work/server.key" > "$work/haproxy.pem"

start_upstream "$work"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile 16384;
daemon on;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 16384; }
http {
    access_log $work/access.log combined buffer=64k;
    keepalive_requests 1000000;
    upstream backend { server 127.0.0.1:18080; keepalive 64; }
    ssl_protocols TLSv1.3;
    ssl_certificate $work/server.pem;
    ssl_certificate_key $work/server.key;
    server {
        listen 127.0.0.1:18443 ssl http2 backlog=4096;
        include $work/nginx-location.conf;
    }
    server {
        listen 127.0.0.1:18453 ssl http2 backlog=4096;
        ssl_session_tickets off;
        ssl_session_cache off;
        include $work/nginx-location.conf;
    }
}
CONF
cat > "$work/nginx-location.conf" <<CONF
location / {
    proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
    proxy_set_header Forwarded "for=\$remote_addr;proto=\$scheme;host=\"\$host\"";
    proxy_set_header X-Forwarded-For \$remote_addr;
    proxy_set_header X-Forwarded-Proto \$scheme;
    proxy_set_header X-Forwarded-Host \$host;
    proxy_set_header X-Client-Auth-Path none;
}
CONF
taskset -c 0 nginx -p "$work" -c "$work/nginx.conf"

cat > "$work/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 8192
    ssl-default-bind-options ssl-min-ver TLSv1.3
    # No session cache: the second bind (no-tls-tickets) then cannot
    # resume; the first resumes by its tickets, as before.
    tune.ssl.cachesize 0
    log stdout format raw local0 info
defaults
    mode http
    log global
    option httplog
    option http-keep-alive
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 120s
frontend people
    bind 127.0.0.1:18446 ssl crt $work/haproxy.pem alpn h2,http/1.1
    bind 127.0.0.1:18456 ssl crt $work/haproxy.pem alpn h2,http/1.1 no-tls-tickets
    http-request set-header X-Forwarded-Proto https
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    http-request set-header X-Client-Auth-Path none
    option forwardfor
    # HAProxy 2.6 has no "option forwarded" (2.8 has): the header by hand.
    http-request set-header Forwarded "for=%[src];proto=https;host=\\"%[req.hdr(host)]\\""
    default_backend upstream
backend upstream
    http-reuse always
    server up 127.0.0.1:18080 maxconn 64
CONF
taskset -c 0 "$haproxy" -db -f "$work/haproxy.cfg" >"$work/haproxy-access.log" 2>&1 &
haproxy_pid=$!

start_rca_proxy "$work"
proxy_pid=$!
# The second rca-proxy, for full handshakes: resumption off.
sed -e 's/^listen = .*/listen = "127.0.0.1:18455"/' -e 's/^\[tls\]$/[tls]\nsession_resumption = false/' \
    "$work/proxy.toml" >"$work/proxy-full.toml"
TOKIO_WORKER_THREADS=1 RUST_LOG=error taskset -c 0 target/release/rca-proxy --config "$work/proxy-full.toml" \
    >"$work/proxy-full-access.log" &
full_proxy_pid=$!
wait_for_ports 18080 18443 18445 18446 18453 18455 18456
for server_pid in "$haproxy_pid" "$proxy_pid" "$full_proxy_pid"; do
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/haproxy-access.log" >&2; echo "a server did not start" >&2; exit 1; }
done
nginx_pid=$(pgrep -P "$(cat "$work/nginx.pid")")
declare -A pid=([nginx]=$nginx_pid [haproxy]=$haproxy_pid [rca-proxy]=$proxy_pid)
declare -A port=([nginx]=18443 [haproxy]=18446 [rca-proxy]=18445)
# Full handshakes: the listeners without resumption (nginx and HAProxy in
# the same process, rca-proxy in a second one).
declare -A full_pid=([nginx]=$nginx_pid [haproxy]=$haproxy_pid [rca-proxy]=$full_proxy_pid)
declare -A full_port=([nginx]=18453 [haproxy]=18456 [rca-proxy]=18455)

# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

results="$work/results.jsonl"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in $modes; do
    case $mode in idle | idle-h2 | phases) continue ;; esac
    for round in $(seq "$rounds"); do
        for server in nginx haproxy rca-proxy; do
            url="https://localhost:${port[$server]}/"
            server_pid=${pid[$server]}
            if [ "$mode" = full ]; then
                url="https://localhost:${full_port[$server]}/"
                server_pid=${full_pid[$server]}
            fi
            before=$(cpu_ticks "$server_pid")
            case $mode in
            keepalive) out=$(taskset -c 1 wrk -t1 -c$connections -d"${seconds}s" --latency "$url") ;;
            handshakes | full) out=$(taskset -c 1 wrk -t1 -c$connections -d"${seconds}s" --latency -H "Connection: close" "$url") ;;
            h2) out=$(taskset -c 1 h2load -t1 -c$connections -m1 -D"$seconds" "$url") ;;
            esac
            after=$(cpu_ticks "$server_pid")
            python3 benches/outside-report.py parse "$mode" "$server" "$round" \
                "$((after - before))" "$(getconf CLK_TCK)" <<<"$out"
        done
    done
done | tee "$results"

case " $modes " in
*" idle "*)
    for server in nginx haproxy rca-proxy; do
        python3 benches/idle-connections.py --port "${port[$server]}" --ca "$work/server-ca.pem" \
            --connections $idle_connections --pid "${pid[$server]}" --label "$server"
    done | tee -a "$results"
    ;;
esac
case " $modes " in
*" idle-h2 "*)
    for server in nginx haproxy rca-proxy; do
        python3 benches/idle-connections.py --port "${port[$server]}" --ca "$work/server-ca.pem" \
            --connections $idle_connections --pid "${pid[$server]}" --label "$server" --http2
    done | tee -a "$results"
    ;;
esac
case " $modes " in
*" phases "*)
    for mode in handshakes full; do
        for server in nginx haproxy rca-proxy; do
            server_port=${port[$server]}
            [ "$mode" = full ] && server_port=${full_port[$server]}
            taskset -c 1 wrk -t1 -c$connections -d2s -H "Connection: close" "https://localhost:$server_port/" >/dev/null &
            sleep 1
            timeout 0.3 tcpdump -i lo -s 0 -w "$work/$mode-$server.pcap" "tcp port $server_port" >/dev/null 2>&1 || true
            wait $!
            python3 benches/handshake-phases.py --port "$server_port" --label "$server" --mode "$mode" "$work/$mode-$server.pcap"
        done
    done | tee -a "$results"
    ;;
esac
echo "after: load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 benches/outside-report.py report "$results"
