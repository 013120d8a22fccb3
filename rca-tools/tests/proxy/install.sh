#!/usr/bin/env bash
# Installs what rca-proxy's tests need beyond the workspace: HAProxy
# (Debian's package), the layer-4 balancer of the PROXY protocol tests.
# Prints the haproxy binary's path on stdout.
#
# usage: install.sh
#
# Quick when HAProxy is there already. On failure it exits non-zero with one
# line on stderr, so a caller can say why those tests were skipped.
set -euo pipefail

die() {
	printf 'proxy/install.sh: %s\n' "$*" >&2
	exit 1
}

haproxy=$(command -v haproxy || true)
[[ -z $haproxy && -x /usr/sbin/haproxy ]] && haproxy=/usr/sbin/haproxy
if [[ -z $haproxy ]]; then
	[[ $(id -u) -eq 0 ]] || die "haproxy is missing and installing it needs root"
	command -v apt-get >/dev/null || die "haproxy is missing and there is no apt-get"
	log=$(mktemp)
	if ! { apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends haproxy ||
		{ apt-get -o DPkg::Lock::Timeout=300 update && apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends haproxy; }; } >"$log" 2>&1; then
		tail -n 5 "$log" >&2
		die "apt-get install haproxy failed"
	fi
	haproxy=/usr/sbin/haproxy
fi
[[ -x $haproxy ]] || die "no haproxy binary at $haproxy"
printf '%s\n' "$haproxy"
