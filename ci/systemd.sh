#!/usr/bin/env bash
# The packaged rca-proxy.service under systemd itself, which CI's own
# container lacks (no systemd as PID 1; ci/package.sh runs the binary as the
# unit would, not the unit): a minimal Debian 12 (debootstrap, with the
# package installed) is booted with systemd-nspawn on a private network,
# and a oneshot unit in it (ci/systemd/check.sh) starts the service with
# all its sandboxing, asks it for a page through the packaged
# configuration, reloads it, has a reload refused (a key it cannot read),
# writes the access log to a file and rotates it with the packaged
# logrotate configuration, starts rca-connect.service and fetches the page
# through it as a bot, stops it, lets a broken configuration hit the start limit, and powers off. Needs root and the
# Debian mirror. Where the container cannot be made or booted (no root, no
# mirror, no nspawn), the step says SKIPPED and why, unless
# CI_REQUIRE_SYSTEMD=1, which makes that a failure. Once the check has
# begun in the container, anything short of its end fails the step.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "systemd: $*"; }
fail() {
    echo "systemd: FAILED: $*" >&2
    exit 1
}
skip() {
    [ "${CI_REQUIRE_SYSTEMD:-0}" != 1 ] || fail "cannot run here (CI_REQUIRE_SYSTEMD=1): $*"
    say "SKIPPED: $*"
    exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root"
arch=$(dpkg --print-architecture)
deb=$({ ls -t target/dist/rca-tools_*_"$arch".deb 2>/dev/null || true; } | head -1)
[ -n "$deb" ] || fail "no package in target/dist (the package step makes it)"
if ! command -v systemd-nspawn >/dev/null || ! command -v debootstrap >/dev/null; then
    install_tools() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            systemd-container debootstrap >/dev/null 2>&1
    }
    install_tools || { apt-get update -qq >/dev/null 2>&1 && install_tools; } ||
        skip "cannot install systemd-container and debootstrap"
fi
root=$(mktemp -d /tmp/rca-systemd.XXXXXX)
chmod 755 "$root" # the container's /: its users must get through it
trap 'rm -rf "$root" "$root.log"' EXIT
mirror=$({ sed -n 's|^URIs: \(http[^ ]*/debian\)$|\1|p' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true; } | head -1)
say "debootstrap bookworm from ${mirror:=http://deb.debian.org/debian}"
timeout 10m debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,adduser,ca-certificates,curl,openssl,busybox,logrotate \
    bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
    skip "debootstrap failed: $(tail -3 "$root.log")"
# A minimal system has no procps, so no /bin/kill: the unit must not need it.
[ ! -e "$root/bin/kill" ] || say "note: this system has /bin/kill"
nspawn=(systemd-nspawn -q --register=no --keep-unit -D "$root")
"${nspawn[@]}" --pipe /bin/true >/dev/null 2>&1 || skip "systemd-nspawn cannot run a container here"
cp "$deb" "$root/root/rca-tools.deb"
"${nspawn[@]}" --pipe dpkg -i /root/rca-tools.deb >/dev/null || fail "dpkg -i in the container"
install -m 0755 ci/systemd/check.sh "$root/root/check.sh"
# A start that never reports READY=1 fails in 30 s, inside the boot's time.
mkdir -p "$root/etc/systemd/system/rca-proxy.service.d"
printf '[Service]\nTimeoutStartSec=30s\n' >"$root/etc/systemd/system/rca-proxy.service.d/check.conf"
cat >"$root/etc/systemd/system/rca-check.service" <<'UNIT'
[Unit]
Description=rca-proxy.service under systemd (ci/systemd.sh)
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/root/check.sh
[Install]
WantedBy=multi-user.target
UNIT
ln -s /etc/systemd/system/rca-check.service "$root/etc/systemd/system/multi-user.target.wants/"
say "booting the container"
timeout -k 30s 3m "${nspawn[@]}" --private-network -b </dev/null >"$root/boot.log" 2>&1 || true
result="$root/root/result.txt"
field() { { sed -n "s/^$1: //p" "$result" 2>/dev/null || true; } | head -1; }
[ "$(field begun)" = 1 ] || skip "the container did not boot: $(tail -5 "$root/boot.log")"
cat "$result"
[ "$(field done)" = 1 ] || fail "the check in the container did not finish: $(tail -5 "$root/boot.log")"
[ "$(field start)" = 0 ] || fail "systemctl start rca-proxy"
[ "$(field user)" = rca-proxy ] || fail "the service runs as $(field user), not rca-proxy"
[ "$(field get)" = "hello from the upstream" ] || fail "no page through the service"
[ "$(field reload)" = 0 ] || fail "systemctl reload rca-proxy"
[ "$(field reloaded)" -ge 1 ] || fail "the reload did not reach the proxy"
[ "$(field state-after-reload)" = active ] || fail "not active after the reload"
[ "$(field get-after-reload)" = "hello from the upstream" ] || fail "no page after the reload"
[ "$(field bad-reload)" != 0 ] || fail "a reload with an unreadable key said it succeeded"
[ "$(field state-after-bad-reload)" = active ] || fail "not active after a refused reload"
[ "$(field get-after-bad-reload)" = "hello from the upstream" ] || fail "no page after a refused reload"
[ "$(field log-restart)" = 0 ] || fail "systemctl restart rca-proxy with log.access naming a file"
[ "$(field log-owner)" = rca-proxy ] || fail "the access log file: $(field log-owner), not owned by rca-proxy"
[ "$(field log-rotate)" = 0 ] || fail "logrotate -f /etc/logrotate.d/rca-proxy"
[ "$(field log-lines)" = 1/1 ] || fail "after logrotate, lines in access.log/access.log.1: $(field log-lines), not 1/1"
[ "$(field connect-start)" = 0 ] || fail "systemctl start rca-connect"
[ "$(field connect-user)" = rca-connect ] || fail "rca-connect runs as $(field connect-user), not rca-connect"
[ "$(field connect-ca)" = "rca-connect:rca-connect 640" ] ||
    fail "the local CA certificate is $(field connect-ca), not rca-connect:rca-connect 640"
[ "$(field connect-get)" = "hello from the upstream" ] || fail "no page through rca-connect.service"
case "$(field connect-outcome)" in
*refused | "flag=acknowledged; identity=none"*) fail "through rca-connect.service: $(field connect-outcome)" ;;
"flag=acknowledged; identity="*) ;;
*) fail "through rca-connect.service, the flag was not acknowledged: $(field connect-outcome)" ;;
esac
[ "$(field connect-stop)" = 0 ] || fail "systemctl stop rca-connect"
[ "$(field stop)" = 0 ] || fail "systemctl stop rca-proxy"
[ "$(field result)" = success ] || fail "the service stopped with $(field result)"
case "$(field broken-start)" in
"failed/failed after "[1-5]" restarts") ;;
*) fail "a configuration that does not load: $(field broken-start), not failed for good after five starts" ;;
esac
say "the packaged unit starts, serves on :443 as rca-proxy, reloads, refuses a reload it cannot load, logs to a file that logrotate rotates, serves a bot through rca-connect.service, stops, and gives up on a configuration that does not load, under systemd"
