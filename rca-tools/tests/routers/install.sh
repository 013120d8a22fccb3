#!/usr/bin/env bash
# Installs the real routers of rca-tools' differential test into DIR:
#   DIR/bin/nginx    -> Debian's nginx (apt-get, only when it is missing)
#   DIR/bin/lighttpd -> Debian's lighttpd (likewise), for its CGI
#   DIR/bin/php      -> Debian's php-cli (likewise), for its built-in server
#   DIR/bin/apache2  -> Debian's apache2 with mod_wsgi and mod_php (likewise)
#   DIR/bin/node     -> the machine's node
#   DIR/venv         Flask, Bottle, CherryPy, gunicorn, Starlette, uvicorn (requirements.txt)
#   DIR/node         express (package.json + package-lock.json, `npm ci`)
#   DIR/ready        written last: `name version` per line
#   DIR/install.log  what apt-get, pip and npm printed
#
# usage: install.sh DIR          (e.g. install.sh target/routers)
#
# Idempotent: when DIR/ready carries the stamp of this script and its pins and
# the installed files are there, it exits 0 at once. On failure it exits
# non-zero with one line on stderr (`routers/install.sh: <reason>`), so a
# caller can skip with that reason.
set -euo pipefail

die() {
	printf 'routers/install.sh: %s\n' "$*" >&2
	exit 1
}

[[ $# -eq 1 && -n $1 ]] || die "usage: install.sh DIR"
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
mkdir -p -- "$1" 2>/dev/null || die "cannot create $1"
dest=$(cd -- "$1" && pwd)
log=$dest/install.log

# The stamp: a change to this script or to any pin reinstalls.
stamp=$(cat "$here/install.sh" "$here/requirements.txt" "$here/package.json" \
	"$here/package-lock.json" | sha256sum | cut -c1-16)

installed() {
	[[ -x $dest/bin/nginx && -x $dest/bin/node && -x $dest/bin/lighttpd && -x $dest/bin/php ]] &&
		[[ -x $dest/bin/apache2 ]] &&
		[[ -x $dest/venv/bin/gunicorn && -x $dest/venv/bin/uvicorn ]] &&
		[[ -f $dest/node/node_modules/express/package.json ]]
}

if [[ -f $dest/ready ]] && grep -qxF "stamp $stamp" "$dest/ready" && installed; then
	exit 0
fi
rm -f -- "$dest/ready"
: >"$log"

# --- nginx and lighttpd (Debian) -----------------------------------------------
# The first binary of these paths that exists.
find_bin() {
	local p
	for p in "$@"; do
		if [[ -n $p && -x $p ]]; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	return 1
}

policy=/usr/sbin/policy-rc.d
policy_added=
cleanup() {
	if [[ -n $policy_added ]]; then rm -f -- "$policy"; fi
}
trap cleanup EXIT
updated=

# apt-get install PACKAGE, as root, with the package's init script kept from
# starting its service on port 80.
apt_install() {
	[[ $EUID -eq 0 ]] || die "$1 is missing and installing it needs root (apt-get)"
	command -v apt-get >/dev/null || die "$1 is missing and there is no apt-get"
	export DEBIAN_FRONTEND=noninteractive
	if [[ -z $updated ]]; then
		echo "+ apt-get update" >>"$log"
		apt-get update >>"$log" 2>&1 || die "apt-get update failed (no network?); see $log"
		updated=1
	fi
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		policy_added=1
	fi
	echo "+ apt-get install $1" >>"$log"
	apt-get install -y --no-install-recommends "$1" >>"$log" 2>&1 ||
		die "apt-get install $1 failed (no network?); see $log"
	cleanup
	policy_added=
	# If something started the distro's service anyway, stop it (it is ours).
	local pid_file=/run/$2.pid
	if [[ -s $pid_file ]]; then
		pid=$(cat "$pid_file")
		if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
			kill -QUIT "$pid" 2>/dev/null || true
		fi
	fi
}

if ! nginx_bin=$(find_bin "$(command -v nginx 2>/dev/null || true)" /usr/sbin/nginx); then
	# In bookworm the binary is in `nginx` itself (nginx-light is only `nginx`
	# plus the echo module); nginx-light is the fallback where `nginx` is not.
	pkg=nginx
	candidate=$(apt-cache policy nginx 2>/dev/null || true)
	if [[ $candidate != *"Candidate: "[0-9]* ]]; then
		pkg=nginx-light
	fi
	apt_install "$pkg" nginx
	nginx_bin=$(find_bin /usr/sbin/nginx "$(command -v nginx 2>/dev/null || true)") ||
		die "apt-get installed $pkg but there is no nginx binary"
fi
"$nginx_bin" -V 2>&1 | grep -- '--with-http_v2_module' >/dev/null ||
	die "$nginx_bin has no http_v2 module (needed by nginx-h2c.conf.template)"
mkdir -p -- "$dest/bin"
ln -sfn -- "$nginx_bin" "$dest/bin/nginx"
nginx_version=$("$nginx_bin" -v 2>&1 | sed -n 's|.*nginx/\([^ ]*\).*|\1|p')

# lighttpd, for its CGI: it hands a request header to a CGI program with
# every character but a letter or a digit turned into `_`.
if ! lighttpd_bin=$(find_bin /usr/sbin/lighttpd "$(command -v lighttpd 2>/dev/null || true)"); then
	apt_install lighttpd lighttpd
	lighttpd_bin=$(find_bin /usr/sbin/lighttpd) ||
		die "apt-get installed lighttpd but there is no lighttpd binary"
fi
ln -sfn -- "$lighttpd_bin" "$dest/bin/lighttpd"
lighttpd_version=$("$lighttpd_bin" -v 2>&1 | sed -n 's|^lighttpd/\([^ ]*\).*|\1|p')

# PHP's command line, for its built-in server in front of a front controller
# (php/index.php): it hands `/index.php/api/crawl` to the script with
# PATH_INFO `/api/crawl`.
if ! php_bin=$(find_bin /usr/bin/php "$(command -v php 2>/dev/null || true)"); then
	apt_install php-cli php
	php_bin=$(find_bin /usr/bin/php) ||
		die "apt-get installed php-cli but there is no php binary"
fi
ln -sfn -- "$php_bin" "$dest/bin/php"
php_version=$("$php_bin" -r 'echo PHP_VERSION;' 2>>"$log") || die "$php_bin does not run; see $log"

# Apache httpd with mod_php, mod_wsgi and CGI (apache/httpd.conf.template):
# each hands a script the rest of the path as PATH_INFO.
if [[ ! -x /usr/sbin/apache2 || ! -f /usr/lib/apache2/modules/mod_wsgi.so ||
	! -f /usr/lib/apache2/modules/libphp8.2.so ]]; then
	apt_install apache2 apache2
	apt_install libapache2-mod-wsgi-py3 apache2
	apt_install libapache2-mod-php8.2 apache2
fi
[[ -x /usr/sbin/apache2 && -f /usr/lib/apache2/modules/mod_wsgi.so &&
	-f /usr/lib/apache2/modules/libphp8.2.so ]] ||
	die "apt-get installed apache2 but not with mod_wsgi and mod_php 8.2"
ln -sfn -- /usr/sbin/apache2 "$dest/bin/apache2"
apache_version=$(/usr/sbin/apache2 -v 2>>"$log" | sed -n 's|^Server version: Apache/\([^ ]*\).*|\1|p')

# --- Python ------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 is missing"
if ! "$dest/venv/bin/python" -c '' 2>/dev/null; then
	rm -rf -- "$dest/venv"
	echo "+ python3 -m venv" >>"$log"
	python3 -m venv "$dest/venv" >>"$log" 2>&1 || die "python3 -m venv failed; see $log"
fi
echo "+ pip install -r requirements.txt" >>"$log"
"$dest/venv/bin/python" -m pip install --disable-pip-version-check --no-input \
	--retries 1 --timeout 20 -r "$here/requirements.txt" >>"$log" 2>&1 ||
	die "pip install failed (no network?); see $log"

# --- Node --------------------------------------------------------------------
node_bin=$(command -v node 2>/dev/null) || die "node is missing"
command -v npm >/dev/null || die "npm is missing"
ln -sfn -- "$node_bin" "$dest/bin/node"
mkdir -p -- "$dest/node"
cp -- "$here/package.json" "$here/package-lock.json" "$dest/node/"
echo "+ npm ci" >>"$log"
npm ci --prefix "$dest/node" --no-audit --no-fund --omit=dev --fetch-retries=1 \
	--fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=5000 \
	>>"$log" 2>&1 || die "npm ci failed (no network?); see $log"

# --- ready -------------------------------------------------------------------
installed || die "installation incomplete; see $log"
{
	echo "stamp $stamp"
	echo "nginx $nginx_version"
	echo "lighttpd $lighttpd_version"
	echo "php $php_version"
	echo "apache $apache_version"
	"$dest/venv/bin/python" - <<'EOF'
import platform
from importlib.metadata import version
print("python", platform.python_version())
for name in ("flask", "werkzeug", "gunicorn", "starlette", "uvicorn", "h11", "bottle", "cherrypy", "cheroot"):
    print(name, version(name))
EOF
	"$node_bin" - "$dest/node/node_modules" <<'EOF'
const dir = process.argv[2];
console.log("node", process.versions.node);
for (const name of ["express", "router", "path-to-regexp"])
  console.log(name, require(`${dir}/${name}/package.json`).version);
EOF
} >"$dest/ready.tmp" || die "cannot read the installed versions; see $log"
mv -f -- "$dest/ready.tmp" "$dest/ready"
