#!/usr/bin/env bash
# The Debian package as an operator gets it: `cargo xtask dist`, Debian's
# own checks (dpkg-deb, lintian, systemd-analyze), then installed with apt,
# rca-proxy run from /usr/bin as the rca-proxy user with the packaged
# configuration and a throwaway PKI, real HTTPS requests through it (a
# browser's with curl, a bot's with the installed rca-probe), a reload, a
# stop, and a purge. Needs root (it installs the package). CI's container
# has no systemd as PID 1: ci/systemd.sh runs the unit under systemd, in a
# container of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
say() { echo "package: $*"; }
fail() {
    echo "package: FAILED: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || fail "needs root (dpkg, the rca-proxy user)"

# Debian's tools, with one apt-get update if any is missing. cargo-deb is
# installed by `cargo xtask dist` itself when it is missing (about a minute).
need=()
command -v lintian >/dev/null || need+=(lintian)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev) # cargo-deb's $auto Depends
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
command -v man >/dev/null || need+=(man-db)
command -v setpriv >/dev/null || need+=(util-linux)
command -v ss >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

say "cargo xtask dist"
timeout 25m cargo xtask dist | tee target/package-dist.txt
deb=$(sed -n 's/^dist: \(.*\.deb\)$/\1/p' target/package-dist.txt | tail -1)
[ -f "$deb" ] || fail "cargo xtask dist named no package"
say "built $deb in $((SECONDS - started)) s"

# The README's other install, from source: the same release build (its
# target directory), so this takes seconds once the package is built.
say "cargo install --path rca-tools --locked (the README's from-source install)"
from_source=target/dist/from-source
rm -rf "$from_source"
CARGO_TARGET_DIR=target/dist/build timeout 15m \
    cargo install --quiet --path rca-tools --locked --root "$from_source"
for tool in rca-proxy rca-connect rca-probe; do
    "$from_source/bin/$tool" --version >/dev/null || fail "cargo install gave no working $tool"
done
say "from source: $("$from_source/bin/rca-proxy" --version), rca-connect and rca-probe in $from_source/bin"
rm -rf "$from_source"

dpkg-deb --info "$deb"
dpkg-deb --contents "$deb"
contents=$(dpkg-deb --contents "$deb")
for path in ./usr/bin/rca-proxy ./usr/bin/rca-connect ./usr/bin/rca-probe \
    ./etc/rca-proxy/proxy.toml ./usr/lib/systemd/system/rca-proxy.service \
    ./usr/lib/systemd/system/rca-connect.service ./etc/default/rca-connect \
    ./etc/logrotate.d/rca-proxy \
    ./usr/share/man/man1/rca-proxy.1.gz ./usr/share/man/man1/rca-connect.1.gz \
    ./usr/share/man/man1/rca-probe.1.gz ./usr/share/doc/rca-tools/copyright \
    ./usr/share/bash-completion/completions/rca-proxy \
    ./usr/share/zsh/vendor-completions/_rca-proxy \
    ./usr/share/fish/vendor_completions.d/rca-proxy.fish; do
    grep -q " $path\$" <<<"$contents" || fail "the package lacks $path"
done

# The Markdown docs are installed side by side: every relative link in
# them must name a file installed beside them (xtask/src/installed_docs.rs
# rewrites the repository's links). Read from the package itself: images
# that leave /usr/share/doc out of installs would hide them.
docs_root=$(mktemp -d)
dpkg-deb -x "$deb" "$docs_root"
doc="$docs_root/usr/share/doc/rca-tools"
for name in README.md bot-authors.md SPECIFICATION.md; do
    [ -f "$doc/$name" ] || { rm -rf "$docs_root"; fail "the package lacks /usr/share/doc/rca-tools/$name"; }
done
links=0
for md in "$doc"/*.md; do
    while IFS= read -r target; do
        file=${target%%#*}
        [ -n "$file" ] || continue
        links=$((links + 1))
        [ -e "$doc/$file" ] || { rm -rf "$docs_root"; fail "$(basename "$md") links to $target, not installed beside it"; }
    done < <(grep -o '](\([^) ]*\))' "$md" | sed 's/^](\(.*\))$/\1/' | grep -Ev '^(mailto:|[a-z]+://)' || true)
done
rm -rf "$docs_root"
say "installed docs: README.md, bot-authors.md, SPECIFICATION.md; $links links between them, all resolve"

# The summary is one line under 80 characters (cargo-deb takes the crate's
# description; a longer one was wrapped into the long description, cut off).
summary=$(dpkg-deb -f "$deb" Description | sed -n 1p)
[ "${#summary}" -lt 80 ] || fail "the package summary has ${#summary} characters: $summary"
say "summary: $summary"

# lintian: every finding is shown. Errors fail the step except those listed
# here with the reason they do not apply to a package built outside Debian's
# archive:
#  - no-changelog: the project's changes are in CHANGELOG.md, released with
#    the source; the package carries no Debian changelog of its own.
accepted_errors='no-changelog'
say "lintian"
# --allow-root: lintian only reads the package.
lintian_out=$(lintian --allow-root --tag-display-limit 0 "$deb" 2>&1) || true
echo "$lintian_out"
errors=$(grep '^E: ' <<<"$lintian_out" | grep -Ev "^E: [^ ]+: ($accepted_errors)( |$)" || true)
[ -z "$errors" ] || fail "lintian errors:
$errors"
say "lintian: $(grep -c '^E: ' <<<"$lintian_out" || true) errors (all accepted above), $(grep -c '^W: ' <<<"$lintian_out" || true) warnings"

# A previous run that stopped half-way.
if dpkg-query -W rca-tools >/dev/null 2>&1; then
    dpkg --purge rca-tools >/dev/null
fi

pki=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$pki"
    rm -f /etc/rca-proxy/site.pem /etc/rca-proxy/site.key /etc/rca-proxy/bot-ca.pem
    if dpkg-query -W rca-tools >/dev/null 2>&1; then
        dpkg --purge rca-tools >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

say "apt-get install ./$deb"
DEBIAN_FRONTEND=noninteractive timeout 5m apt-get install -y -qq --no-install-recommends "./$deb" >/dev/null

say "systemd-analyze verify"
for service in rca-proxy rca-connect; do
    timeout 60 systemd-analyze verify "/usr/lib/systemd/system/$service.service"
    # The hardening as systemd scores it (0 best, 10 worst); for the log.
    timeout 60 systemd-analyze security --offline=yes "/usr/lib/systemd/system/$service.service" 2>/dev/null |
        tail -1 || true
    getent passwd "$service" >/dev/null || fail "no $service user"
    say "user: $(getent passwd "$service")"
    [ "$(stat -c '%U:%G %a' "/etc/$service")" = "root:$service 750" ] ||
        fail "/etc/$service is $(stat -c '%U:%G %a' "/etc/$service"), not root:$service 750"
    if systemctl is-enabled "$service" >/dev/null 2>&1; then
        fail "the package enabled $service.service"
    fi
done
[ "$(stat -c '%U:%G %a' /var/log/rca-proxy 2>&1)" = "rca-proxy:rca-proxy 750" ] ||
    fail "/var/log/rca-proxy is $(stat -c '%U:%G %a' /var/log/rca-proxy 2>&1), not rca-proxy:rca-proxy 750"
for conffile in /etc/rca-proxy/proxy.toml /etc/default/rca-connect /etc/logrotate.d/rca-proxy; do
    dpkg-query -W -f='${Conffiles}\n' rca-tools | grep " *$conffile " >/dev/null ||
        fail "$conffile is not a conffile"
done
# Images that leave manual pages out of every install (Debian's slim ones:
# a path-exclude in /etc/dpkg/dpkg.cfg.d) get the packaged page checked
# instead; anywhere else it must be installed where man finds it.
if grep -qs '^path-exclude=/usr/share/man/' /etc/dpkg/dpkg.cfg.d/*; then
    say "this image excludes manual pages from installs; rendering the packaged one"
    page=$(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/man/man1/rca-proxy.1.gz | gunzip)
    man -l - <<<"$page" 2>/dev/null | grep 'SIGHUP' >/dev/null || fail "the packaged rca-proxy.1 does not render"
    man_page="(manual pages excluded by this image)"
else
    man_page=$(man -w rca-proxy 2>&1) || true
    [ "$man_page" = /usr/share/man/man1/rca-proxy.1.gz ] || fail "man -w rca-proxy: $man_page"
    man rca-proxy 2>/dev/null | grep 'SIGHUP' >/dev/null || fail "man rca-proxy does not render"
fi
say "installed: $(/usr/bin/rca-proxy --version), $man_page, services not enabled"

# A throwaway PKI with the names the packaged configuration uses: the
# server's chain and key, and the bot CA; a bot certificate for rca-probe.
say "a throwaway PKI in /etc/rca-proxy"
ossl() { openssl "$@" 2>/dev/null; }
ca() {
    ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout "$pki/$1.key" -out "$pki/$1.pem" -subj "/CN=rca-tools package test $1"
}
leaf() { # name, CA, subject, extensions
    ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$pki/$1.key" -out "$pki/$1.csr" -subj "$3"
    ossl x509 -req -in "$pki/$1.csr" -CA "$pki/$2.pem" -CAkey "$pki/$2.key" \
        -CAcreateserial -days 2 -out "$pki/$1.pem" -extfile <(printf '%b' "$4")
}
ca server-ca
ca bot-ca
leaf site server-ca /CN=localhost \
    'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n'
leaf bot bot-ca /CN=package-test-bot \
    'subjectAltName=DNS:bot.example\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n'
install -m 0644 "$pki/site.pem" "$pki/bot-ca.pem" /etc/rca-proxy/
install -m 0640 -g rca-proxy "$pki/site.key" /etc/rca-proxy/

# As the unit runs it: the rca-proxy user, CAP_NET_BIND_SERVICE only.
as_service=(setpriv --reuid=rca-proxy --regid=rca-proxy --init-groups --no-new-privs
    --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service
    --bounding-set=-all,+net_bind_service --)
say "rca-proxy --check-config --config /etc/rca-proxy/proxy.toml (as rca-proxy)"
timeout 30 "${as_service[@]}" /usr/bin/rca-proxy --check-config --config /etc/rca-proxy/proxy.toml

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# The packaged listen address (:443, which takes the capability) when it is
# free here; else a free port.
if ss -Hltn 'sport = :443' | grep . >/dev/null; then
    port=$(free_port)
else
    port=443
fi
upstream_port=$(free_port)
mkdir "$pki/site"
echo "hello from the upstream" >"$pki/site/index.html"
python3 -m http.server --bind 127.0.0.1 --directory "$pki/site" "$upstream_port" >/dev/null 2>&1 &
pids+=($!)

say "rca-proxy --config /etc/rca-proxy/proxy.toml on :$port, upstream :$upstream_port (as rca-proxy)"
"${as_service[@]}" /usr/bin/rca-proxy --config /etc/rca-proxy/proxy.toml \
    --listen "127.0.0.1:$port" --upstream "http://127.0.0.1:$upstream_port" \
    >"$pki/access.log" 2>"$pki/proxy.err" &
proxy=$!
pids+=("$proxy")
for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$upstream_port/" &&
        ss -Hltn "sport = :$port" | grep . >/dev/null && break
    kill -0 "$proxy" 2>/dev/null || fail "rca-proxy exited: $(cat "$pki/proxy.err")"
    sleep 0.1
done

status=$(curl -sS --max-time 10 --cacert "$pki/server-ca.pem" -o "$pki/body" -w '%{http_code}' \
    "https://localhost:$port/") || fail "curl: no answer; rca-proxy said: $(cat "$pki/proxy.err")"
[ "$status" = 200 ] && grep -q hello "$pki/body" ||
    fail "curl got $status: $(cat "$pki/body"); rca-proxy said: $(cat "$pki/proxy.err")"
say "curl (a browser, no flag): $status from the upstream"

timeout 60 /usr/bin/rca-probe --ca "$pki/server-ca.pem" --cert "$pki/bot.pem" --key "$pki/bot.key" \
    "https://localhost:$port/" || fail "rca-probe (exit $?): the installed proxy does not honour the flag"
say "rca-probe (a bot, with the flag and a certificate): honoured"

kill -HUP "$proxy"
for _ in $(seq 50); do
    grep -q 'reloaded' "$pki/proxy.err" && break
    sleep 0.1
done
grep -q 'reloaded' "$pki/proxy.err" || fail "SIGHUP: no reload logged: $(cat "$pki/proxy.err")"
say "SIGHUP: $(grep -m1 'reloaded' "$pki/proxy.err")"

kill -TERM "$proxy"
for _ in $(seq 150); do
    kill -0 "$proxy" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$proxy" 2>/dev/null && fail "rca-proxy did not stop within 15 s of SIGTERM"
wait "$proxy" || fail "rca-proxy exited with $? after SIGTERM: $(cat "$pki/proxy.err")"
grep -q '"status":200' "$pki/access.log" || fail "no access-log line for the request: $(cat "$pki/access.log")"
say "stopped on SIGTERM; access log: $(grep -c . "$pki/access.log") lines"

rm -f /etc/rca-proxy/site.pem /etc/rca-proxy/site.key /etc/rca-proxy/bot-ca.pem
dpkg --purge rca-tools >/dev/null
[ ! -e /usr/bin/rca-proxy ] || fail "purge left /usr/bin/rca-proxy"
[ ! -e /etc/rca-proxy ] || fail "purge left /etc/rca-proxy: $(ls -la /etc/rca-proxy)"
! dpkg-statoverride --list /etc/rca-proxy >/dev/null || fail "purge left the statoverride"
[ ! -e /etc/rca-connect ] || fail "purge left /etc/rca-connect: $(ls -la /etc/rca-connect)"
[ ! -e /var/log/rca-proxy ] || fail "purge left /var/log/rca-proxy"
! dpkg-statoverride --list /etc/rca-connect >/dev/null || fail "purge left the statoverride of /etc/rca-connect"
say "purged (the rca-proxy and rca-connect users stay, as Debian's packages leave system users)"

say "ok in $((SECONDS - started)) s: $deb built, checked, installed, run, purged"
