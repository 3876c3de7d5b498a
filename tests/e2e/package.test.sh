#!/usr/bin/env bash
# package.test.sh - the Debian package end to end: `make deb` builds it,
# `dpkg -i` installs it into this machine, the installed /usr/bin/courant
# runs with the packaged /etc/courant/courant.conf (listen and store moved to
# a loopback port and a scratch file on the command line, which overrides the
# file), answers /healthz and streams an event published with the installed
# `courant pub`; `systemd-analyze verify` accepts the installed unit; and
# `dpkg --purge` removes every file again.
#
# It installs a package system-wide, so it runs only as root (CI runs as
# root on a throwaway machine). Otherwise, or when a courant package or a
# /usr/bin/courant is already there (someone's real installation), it is
# reported as skipped, never as passed.
name=$(basename "$0")
skip() { echo "ok - $name: the Debian package installs, runs and purges # SKIP $1"; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i)"
dpkg-query -W -f='${Status}' courant 2>/dev/null | grep -q 'install ok' && skip "a courant package is already installed here"
[ -e /usr/bin/courant ] && skip "/usr/bin/courant exists and is not ours"

source "$(dirname "$0")/lib.sh"
cd "$ROOT"

for tool in dpkg-deb dpkg-shlibdeps systemd-analyze; do
    command -v "$tool" >/dev/null || not_ok "$tool is installed (scripts/setup.sh installs it)"
done

purge() { timeout 120 dpkg --purge courant >"$TMP/purge.log" 2>&1; }
installed=0
cleanup_package() { [ "$installed" = 1 ] && purge; }
trap 'cleanup_package; finish; exit $?' EXIT

# --- build -------------------------------------------------------------------------
if deb=$(timeout 240 ./scripts/deb.sh 2>"$TMP/deb.log"); then
    ok "make deb builds $deb"
else
    not_ok "make deb" "$(tail -5 "$TMP/deb.log")"
    exit 1
fi
info=$(dpkg-deb -I "$deb")
expect_match "Depends lists the runtime libraries" "$(printf '%s\n' "$info" | grep '^ Depends:')" \
    'libc6.*libhiredis0\.14.*libjansson4.*libsqlite3-0.*libssl3'
expect_eq "/etc/courant/courant.conf is a conffile" "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)" /etc/courant/courant.conf
expect_match "files belong to root" "$(dpkg-deb -c "$deb" | awk '{print $2}' | sort -u | tr '\n' ' ')" '^root/root $'

# --- install ------------------------------------------------------------------------
if timeout 120 dpkg -i "$deb" >"$TMP/install.log" 2>&1; then
    installed=1
    ok "dpkg -i installs it"
else
    installed=1
    not_ok "dpkg -i" "$(tail -5 "$TMP/install.log")"
    exit 1
fi
for f in /usr/bin/courant /etc/courant/courant.conf /lib/systemd/system/courant.service \
         /usr/share/man/man1/courant.1.gz /usr/share/doc/courant/courant.conf.example /usr/share/doc/courant/copyright; do
    [ -e "$f" ] || not_ok "installs $f"
done
ok "installs the binary, configuration, unit, man page and docs"
expect_eq "dpkg knows the conffile" "$(dpkg-query -W -f='${Conffiles}' courant | awk 'NF {print $1}')" /etc/courant/courant.conf
expect_eq "the installed binary is the version packaged" "$(/usr/bin/courant --version)" "courant $(scripts/version.sh)"
man -w courant >/dev/null 2>&1 && ok "man courant finds the page" || not_ok "man courant finds the page"

# --- run it with the packaged configuration ---------------------------------------------
COURANT_BIN=/usr/bin/courant start_courant --config /etc/courant/courant.conf --listen 127.0.0.1:0 \
    --store "$TMP/history.db" --workers 1 || { not_ok "the installed courant starts with the packaged configuration"; exit 1; }
ok "the installed courant starts with the packaged configuration"
expect_eq "it answers /healthz" "$(curl -s --max-time 5 "$BASE/healthz")" ok
curl -s -N --max-time 5 "$BASE/.well-known/mercure?topic=https://example.com/pkg" >"$TMP/stream" &
cpid=$!
sleep 0.5
id=$(timeout 10 /usr/bin/courant pub --url "$BASE" --topic https://example.com/pkg --data 'from the package')
expect_match "the installed courant pub publishes" "$id" '^urn:uuid:'
for _ in $(seq 1 30); do grep -q 'from the package' "$TMP/stream" && break; sleep 0.1; done
kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
expect_match "the event is streamed to a subscriber" "$(tr '\n' ' ' <"$TMP/stream")" "id: $id data: from the package"
stop_courant
expect_eq "it stops cleanly" "$STOP_RC" 0

# --- the unit ----------------------------------------------------------------------------
out=$(timeout 60 systemd-analyze verify /lib/systemd/system/courant.service 2>&1); rc=$?
if [ "$rc" -eq 0 ] && ! printf '%s' "$out" | grep -q 'courant'; then ok "systemd-analyze verify accepts the unit"
else not_ok "systemd-analyze verify accepts the unit" "rc=$rc: $out"; fi
unit=$(cat /lib/systemd/system/courant.service)
for want in 'DynamicUser=yes' 'StateDirectory=courant' 'ProtectSystem=strict' 'LimitNOFILE=1048576' \
            'AmbientCapabilities=CAP_NET_BIND_SERVICE' 'NoNewPrivileges=yes' 'SystemCallFilter=@system-service' \
            'ExecReload=/bin/kill -HUP $MAINPID' 'ExecStart=/usr/bin/courant --config /etc/courant/courant.conf'; do
    printf '%s\n' "$unit" | grep -qxF -- "$want" || not_ok "the unit has $want"
done
ok "the unit is hardened (DynamicUser, ProtectSystem=strict, capabilities, system call filter)"

# --- purge --------------------------------------------------------------------------------
if purge; then
    installed=0
    ok "dpkg --purge removes it"
else
    not_ok "dpkg --purge" "$(tail -5 "$TMP/purge.log")"
fi
left=$(ls -d /usr/bin/courant /etc/courant /lib/systemd/system/courant.service /usr/share/doc/courant \
       /etc/systemd/system/multi-user.target.wants/courant.service 2>/dev/null)
expect_eq "nothing is left behind" "$left" ""
