# Sourced by the proxy benchmarks: the upstream they forward to, a separate
# nginx process (Debian's package, installed when missing) answering "ok" on
# 127.0.0.1:18080 without logging, pinned to core 0 (under SCHED_BATCH with
# UPSTREAM_POLICY=batch); and a wait for ports.
#
#   start_upstream WORK        (WORK: the run's scratch directory)
#   stop_upstream WORK
#   start_rca_proxy WORK       rca-proxy on 127.0.0.1:18445 in front of it, one
#                              worker on core 0, the PKI of WORK (examples/pki),
#                              its access log in WORK/proxy-access.log; in the
#                              background ($! is its pid)
#   wait_for_ports PORT...

install_nginx() {
    if ! command -v nginx >/dev/null 2>&1; then
        echo "installing nginx"
        (apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null) || apt-get install -y -qq nginx >/dev/null
    fi
}

start_upstream() {
    local work=$1
    install_nginx
    cat > "$work/upstream.conf" <<CONF
worker_processes 1;
daemon on;
pid $work/upstream.pid;
error_log $work/upstream-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:18080; location / { return 200 "ok\n"; } }
}
CONF
    # UPSTREAM_POLICY=batch runs it under SCHED_BATCH: woken by a request,
    # it then waits for the server in front to yield the core instead of
    # preempting it (a variant, not the default; see benches/README.md).
    local policy=()
    [ "${UPSTREAM_POLICY:-}" = batch ] && policy=(chrt --batch 0)
    "${policy[@]}" taskset -c 0 nginx -p "$work" -c "$work/upstream.conf"
}

stop_upstream() {
    nginx -p "$1" -c "$1/upstream.conf" -s stop 2>/dev/null || true
}

wait_for_ports() {
    local port
    for port in "$@"; do
        for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
    done
}

start_rca_proxy() {
    local work=$1
    cat > "$work/proxy.toml" <<CONF
listen = "127.0.0.1:18445"
[tls]
cert = "$work/server.pem"
key = "$work/server.key"
bot_ca = "$work/bot-ca.pem"
[upstream]
url = "http://127.0.0.1:18080"
CONF
    TOKIO_WORKER_THREADS=1 RUST_LOG=error taskset -c 0 target/release/rca-proxy --config "$work/proxy.toml" >"$work/proxy-access.log" &
}
