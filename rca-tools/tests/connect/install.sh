#!/usr/bin/env bash
# Installs the real clients of rca-connect's tests into DIR:
#   DIR/venv           Python with requests, httpx, Scrapy and websockets
#                      (requirements.txt)
#   DIR/bin/goclient   client.go built with Debian's Go (apt-get golang-go
#                      when `go` is missing)
#   DIR/node           undici (npm, pinned below), for client.mjs on the
#                      machine's node
#   DIR/ready          written last: `name version` per line
#   DIR/install.log    what apt-get, pip and go printed
# curl is the machine's (apt-get curl when missing).
#
# usage: install.sh DIR          (e.g. install.sh target/connect-clients)
#
# Idempotent: a DIR/ready with this script's stamp exits 0 at once. On
# failure it exits non-zero with one line on stderr, so a caller can say why
# the client tests were skipped.
set -euo pipefail

die() {
	printf 'connect/install.sh: %s\n' "$*" >&2
	exit 1
}

[[ $# -eq 1 && -n $1 ]] || die "usage: install.sh DIR"
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
mkdir -p -- "$1" 2>/dev/null || die "cannot create $1"
dest=$(cd -- "$1" && pwd)
log=$dest/install.log
stamp=$(cat "$here/install.sh" "$here/requirements.txt" "$here/client.go" "$here/client.mjs" | sha256sum | cut -c1-16)
undici=7.30.3  # the newest for Node 20 (undici 8 needs Node 22)

if [[ -f $dest/ready ]] && grep -qxF "stamp $stamp" "$dest/ready" &&
	[[ -x $dest/venv/bin/python && -x $dest/bin/goclient ]] &&
	[[ -f $dest/node/node_modules/undici/package.json && -f $dest/node/client.mjs ]]; then
	exit 0
fi
rm -f -- "$dest/ready"
: >"$log"

apt_install() {
	[[ $(id -u) -eq 0 ]] || die "$* missing and not root to apt-get it"
	{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; } >>"$log" 2>&1 ||
		die "apt-get install $* failed (see $log)"
}

command -v curl >/dev/null || apt_install curl ca-certificates
command -v go >/dev/null || apt_install golang-go

python=$(command -v python3) || die "python3 missing"
"$python" -m venv "$dest/venv" >>"$log" 2>&1 || die "python3 -m venv failed (see $log)"
"$dest/venv/bin/pip" install -q -r "$here/requirements.txt" >>"$log" 2>&1 ||
	die "pip install failed (see $log)"

mkdir -p "$dest/bin" "$dest/go-cache"
(cd "$here" && GOCACHE=$dest/go-cache GOFLAGS=-mod=mod GO111MODULE=off \
	go build -o "$dest/bin/goclient" client.go) >>"$log" 2>&1 || die "go build failed (see $log)"

command -v node >/dev/null || apt_install nodejs npm
mkdir -p "$dest/node"
npm install --prefix "$dest/node" --no-save --no-audit --no-fund "undici@$undici" >>"$log" 2>&1 ||
	die "npm install undici failed (see $log)"
# ES modules resolve packages from the script's own directory.
cp "$here/client.mjs" "$dest/node/client.mjs"

{
	echo "stamp $stamp"
	echo "curl $(curl --version | sed -n 1p | cut -d' ' -f2)"
	echo "requests $("$dest/venv/bin/python" -c 'import requests; print(requests.__version__)')"
	echo "httpx $("$dest/venv/bin/python" -c 'import httpx; print(httpx.__version__)')"
	echo "scrapy $("$dest/venv/bin/python" -c 'import scrapy; print(scrapy.__version__)')"
	echo "websockets $("$dest/venv/bin/python" -c 'import websockets; print(websockets.__version__)')"
	echo "go $(go version | cut -d' ' -f3)"
	echo "node $(node --version) undici $undici"
} >"$dest/ready.tmp"
mv "$dest/ready.tmp" "$dest/ready"
