# Sourced by the proxy benchmarks: the upstream they forward to, a separate
# nginx process (Debian's package, installed when missing) answering "ok" on
# 127.0.0.1:18080 without logging, pinned to core 0; and a wait for ports.
#
#   start_upstream WORK        (WORK: the run's scratch directory)
#   stop_upstream WORK
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
    taskset -c 0 nginx -p "$work" -c "$work/upstream.conf"
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
