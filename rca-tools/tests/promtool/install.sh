#!/usr/bin/env bash
# Installs promtool, Prometheus's own checker of the metrics text format and
# of its naming conventions, for the tools' metrics tests: taken out of
# Debian's `prometheus` package into DIR (no service, no user, no
# dependencies installed: only the one binary is used). Prints its path on
# stdout.
#
# usage: install.sh DIR
#
# Quick when it is there already. On failure it exits non-zero with one
# line on stderr, so a caller can say why those tests were left out.
set -euo pipefail

die() {
	printf 'promtool/install.sh: %s\n' "$*" >&2
	exit 1
}

[[ $# -eq 1 ]] || die "usage: install.sh DIR"
dir=$1
promtool=$dir/usr/bin/promtool
if [[ ! -x $promtool ]]; then
	command -v apt-get >/dev/null || die "promtool is missing and there is no apt-get"
	mkdir -p "$dir"
	log=$(mktemp)
	work=$(mktemp -d)
	trap 'rm -rf "$work" "$log"' EXIT
	if ! (cd "$work" && { apt-get -o DPkg::Lock::Timeout=300 download prometheus ||
		{ [[ $(id -u) -eq 0 ]] && apt-get -o DPkg::Lock::Timeout=300 update && apt-get download prometheus; }; }) >"$log" 2>&1; then
		tail -n 5 "$log" >&2
		die "apt-get download prometheus failed"
	fi
	dpkg-deb -x "$work"/prometheus_*.deb "$work/tree" || die "cannot unpack the prometheus package"
	install -D -m 0755 "$work/tree/usr/bin/promtool" "$promtool"
fi
"$promtool" --version >/dev/null 2>&1 || die "$promtool does not run"
printf '%s\n' "$promtool"
