#!/bin/sh
# Runs at boot inside the container ci/systemd.sh boots (a oneshot unit):
# the packaged rca-proxy.service under systemd itself, with every sandbox
# setting of the unit in force. Each step writes one "name: value" line to
# /root/result.txt, which ci/systemd.sh reads once the container is off.
exec >/root/result.txt 2>&1
cd /root || exit 1
say() { echo "$1: $2"; }
say begun 1
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout ca.key -out ca.pem -subj /CN=systemd-check-ca
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout bot-ca.key -out bot-ca.pem -subj /CN=systemd-check-bot-ca
ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout site.key -out site.csr -subj /CN=localhost
printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext
ossl x509 -req -in site.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -out site.pem -extfile ext
install -m 0644 site.pem bot-ca.pem /etc/rca-proxy/
install -m 0640 -g rca-proxy site.key /etc/rca-proxy/

# The upstream the packaged configuration names.
upstream=$(sed -n 's|^url = "http://\(127\.0\.0\.1:[0-9]*\)".*|\1|p' /etc/rca-proxy/proxy.toml | head -1)
mkdir -p site && echo "hello from the upstream" >site/index.html
busybox httpd -p "$upstream" -h /root/site

get() { curl -sS --max-time 10 --cacert ca.pem https://localhost/; }
systemctl start rca-proxy
say start $?
# Type=notify: started means listening, so the first request is answered.
say user "$(stat -c %U "/proc/$(systemctl show -p MainPID --value rca-proxy)")"
say get "$(get)"
systemctl reload rca-proxy
say reload $?
reloaded() { journalctl -u rca-proxy --no-pager | grep -c 'reloaded \[tls\]'; }
for _ in 1 2 3 4 5 6 7 8 9 10; do
    [ "$(reloaded)" -ge 1 ] && break
    sleep 1
done
say reloaded "$(reloaded)"
say state-after-reload "$(systemctl show -p ActiveState --value rca-proxy)"
say get-after-reload "$(get)"
# A reload whose configuration check fails (a key the service's user
# cannot read) fails, and the service serves on with what it had.
chmod 0600 /etc/rca-proxy/site.key
systemctl reload rca-proxy
say bad-reload $?
say state-after-bad-reload "$(systemctl show -p ActiveState --value rca-proxy)"
say get-after-bad-reload "$(get)"
chmod 0640 /etc/rca-proxy/site.key
# The access log in a file of the unit's LogsDirectory, rotated by the
# packaged logrotate configuration (which signals the proxy to reopen it).
printf '\n[log]\naccess = "/var/log/rca-proxy/access.log"\n' >>/etc/rca-proxy/proxy.toml
systemctl restart rca-proxy
say log-restart $?
lines() { grep -c '"status":200' "$1" 2>/dev/null || true; }
wait_lines() {
    for _ in $(seq 30); do
        [ "$(lines "$1")" = "$2" ] && break
        sleep 0.2
    done
}
get >/dev/null
wait_lines /var/log/rca-proxy/access.log 1
say log-owner "$(stat -c %U /var/log/rca-proxy/access.log 2>&1)"
logrotate -f /etc/logrotate.d/rca-proxy
say log-rotate $?
# The proxy makes the file again when SIGUSR1 has it reopen the name.
for _ in $(seq 50); do
    [ -e /var/log/rca-proxy/access.log ] && break
    sleep 0.2
done
get >/dev/null
wait_lines /var/log/rca-proxy/access.log 1
say log-lines "$(lines /var/log/rca-proxy/access.log)/$(lines /var/log/rca-proxy/access.log.1)"
# rca-connect.service on the same host, as a bot's clients use it: a bot
# certificate from the bot CA in /etc/rca-connect, the site's CA to verify
# rca-proxy, curl through it; the outcome header says the flag was
# acknowledged and which identity went.
ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout bot.key -out bot.csr -subj /CN=systemd-check-bot
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' >bot-ext
ossl x509 -req -in bot.csr -CA bot-ca.pem -CAkey bot-ca.key -CAcreateserial -days 2 \
    -out bot.pem -extfile bot-ext
# A minimal debootstrap has no /etc/hosts (an installed system has one):
# rca-connect resolves localhost through it, as any program but curl does.
grep -qs '^127\.0\.0\.1[[:space:]].*localhost' /etc/hosts || echo '127.0.0.1 localhost' >>/etc/hosts
install -m 0644 bot.pem ca.pem /etc/rca-connect/
install -o rca-connect -g rca-connect -m 0600 bot.key /etc/rca-connect/
sed -i 's|^RCA_CONNECT_OPTIONS=.*|RCA_CONNECT_OPTIONS="--cert /etc/rca-connect/bot.pem --key /etc/rca-connect/bot.key --ca /etc/rca-connect/ca.pem"|' \
    /etc/default/rca-connect
systemctl start rca-connect
say connect-start $?
say connect-user "$(stat -c %U "/proc/$(systemctl show -p MainPID --value rca-connect)")"
say connect-ca "$(stat -c '%U:%G %a' /var/lib/rca-connect/ca.pem 2>&1)"
body=$(curl -sS --max-time 10 --proxy http://127.0.0.1:8118 --cacert /var/lib/rca-connect/ca.pem \
    -D connect-headers.txt https://localhost/)
say connect-get "$body"
say connect-outcome "$(tr -d '\r' <connect-headers.txt | grep -i '^rca-connect-outcome:' | cut -d' ' -f2-)"
systemctl stop rca-connect
say connect-stop $?
systemctl stop rca-proxy
say stop $?
say result "$(systemctl show -p Result --value rca-proxy)"
# A configuration that does not load: five failed starts, then it stays
# failed rather than retrying for ever.
echo 'listen = "not an address"' >>/etc/rca-proxy/proxy.toml
systemctl start rca-proxy
state() { systemctl show -p ActiveState -p SubState --value rca-proxy | paste -sd/; }
for _ in $(seq 30); do
    [ "$(state)" = failed/failed ] && break
    sleep 1
done
sleep 4 # a restart would be due 2 s after a failure
say broken-start "$(state) after $(systemctl show -p NRestarts --value rca-proxy) restarts"
echo "journal:"
journalctl -u rca-proxy --no-pager | tail -20
say done 1
systemctl poweroff
