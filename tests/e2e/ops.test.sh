#!/usr/bin/env bash
# ops.test.sh - what an operator touches besides the protocol: the
# configuration file and its precedence, the generated man page and example
# file (kept in sync with --help), JSON logs, --version, SIGHUP, and
# `make install` into a staging directory.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

# --- the option names agree everywhere ------------------------------------------------
help=$("$COURANT_BIN" --help)
man=$("$COURANT_BIN" --help-man)
example=$("$COURANT_BIN" --help-config)
builtin='^(help|version|help-man|help-config)$'
help_names=$(printf '%s\n' "$help" | grep -oE '^  --[a-z0-9-]+' | sed 's/^  --//' | grep -vE "$builtin" | sort)
man_names=$(printf '%s\n' "$man" | sed -n '/^\.SH OPTIONS/,/^\.SH /p' | grep -oE '^\\fB\\-\\-[a-z0-9\\-]+' \
            | sed 's/^\\fB\\-\\-//; s/\\f.*$//; s/\\-/-/g' | grep -vE "$builtin" | sort)
example_names=$( { printf '%s\n' "$example" | grep -oE '^#[a-z0-9-]+ = ' | sed 's/^#//; s/ = $//'; echo config; } | sort -u)
[ "$(printf '%s\n' "$help_names" | wc -l)" -ge 30 ] && ok "--help lists the options ($(printf '%s\n' "$help_names" | wc -l))" \
    || not_ok "--help lists the options" "$help_names"
expect_eq "the man page documents exactly the options of --help" "$man_names" "$help_names"
expect_eq "the example configuration lists exactly the options of --help" "$example_names" "$help_names"
for cmd in token pub sub; do
    cmd_help=$("$COURANT_BIN" "$cmd" --help | grep -oE '^  --[a-z0-9-]+' | sed 's/^  --//' | grep -v '^help$' | sort)
    cmd_man=$(printf '%s\n' "$man" | sed -n "/^\\.SS courant $cmd\$/,/^\\.S[SH] /p" | grep -oE '^\\fB\\-\\-[a-z0-9\\-]+' \
              | sed 's/^\\fB\\-\\-//; s/\\f.*$//; s/\\-/-/g' | sort)
    expect_eq "the man page documents courant $cmd's options" "$cmd_man" "$cmd_help"
done
if command -v groff >/dev/null 2>&1; then
    warnings=$(printf '%s\n' "$man" | groff -man -Tutf8 -ww -z 2>&1)
    expect_eq "the man page renders without groff warnings" "$warnings" ""
else
    echo "ok - $TEST_FILE: the man page renders without groff warnings # SKIP groff is not installed"
fi
expect_match "the man page names the version" "$(printf '%s\n' "$man" | sed -n 2p)" "^\\.TH COURANT 1 \"\" \"courant [0-9]"

# --- the example file, every value uncommented, is a valid configuration ------------------
# (lines whose value is a metavariable, like "#store = PATH", stay commented)
printf '%s\n' "$example" | sed -E 's/^#([a-z0-9-]+ = )([^A-Z].*|[A-Z][a-z].*|)$/\1\2/' >"$TMP/all.conf"
n=$(grep -cE '^[a-z]' "$TMP/all.conf")
[ "$n" -ge 20 ] && ok "the example has values for most options ($n lines)" || not_ok "example values" "$n lines"
if start_courant --config "$TMP/all.conf" --listen 127.0.0.1:0; then
    ok "the example, uncommented, starts courant"
    grep -q 'history 1000' "$LOG" && ok "its values are the defaults" || not_ok "defaults" "$(cat "$LOG")"
    stop_courant
else
    not_ok "the example, uncommented, starts courant" "$(head -3 "$LOG")"
fi

# --- precedence: argv > env > file > defaults -----------------------------------------------
cat >"$TMP/courant.conf" <<'CONF'
# a test configuration
listen = 127.0.0.1:0
history = 321
workers = 1
cors-origin = https://file.example
CONF
start_courant --config "$TMP/courant.conf" || exit 1
grep -q 'courant ready: 1 workers, .* history 321' "$LOG" && ok "the file sets options" || not_ok "the file sets options" "$(cat "$LOG")"
cors=$(curl -s -i -H 'Origin: https://file.example' "$BASE/healthz" | tr -d '\r' | grep -i '^access-control-allow-origin')
expect_eq "a list from the file (cors-origin)" "$cors" "Access-Control-Allow-Origin: https://file.example"
stop_courant
COURANT_HISTORY=654 start_courant --config "$TMP/courant.conf" || exit 1
grep -q 'history 654' "$LOG" && ok "the environment overrides the file" || not_ok "env over file" "$(grep ready "$LOG")"
stop_courant
COURANT_CONFIG="$TMP/courant.conf" COURANT_HISTORY=654 start_courant --history 987 || exit 1
grep -q 'courant ready: 1 workers, .* history 987' "$LOG" && ok "the command line overrides both (COURANT_CONFIG names the file)" \
    || not_ok "argv over env" "$(grep ready "$LOG")"
stop_courant

printf 'history = 5\n\nbogus = 1\n' >"$TMP/bad.conf"
err=$("$COURANT_BIN" --config "$TMP/bad.conf" 2>&1); rc=$?
expect_eq "a bad file: exit 2" "$rc" 2
expect_eq "a bad file: one line naming the file and the line" "$err" "courant: $TMP/bad.conf:3: unknown option bogus"
err=$("$COURANT_BIN" --config "$TMP/missing.conf" 2>&1); rc=$?
expect_match "a missing file is named" "$rc $err" "^2 courant: cannot read the configuration file $TMP/missing.conf: No such file"
expect_match "--version works whatever the file says" "$("$COURANT_BIN" --config "$TMP/bad.conf" --version)" '^courant '

# --- version -----------------------------------------------------------------------------
# (the binary under test may predate the last commit: compare the release
# part exactly, the rest by its shape)
v=$("$COURANT_BIN" --version)
want=$(scripts/version.sh)
expect_match "--version is scripts/version.sh's" "$v" "^courant ${want%%-*}(-[0-9]+)?(-g[0-9a-f]+)?(-dirty)?\$"

# --- JSON logs ---------------------------------------------------------------------------
start_courant --log-format json --workers 1 || exit 1
raw_request 127.0.0.1 "$PORT" 'GET /\x01"\\ HTTP/1.1\r\nHost: x\r\n\r\n' 1 >/dev/null
curl -s -o /dev/null "$BASE/nope"
kill -HUP "$PID"; sleep 0.3
kill -0 "$PID" 2>/dev/null && ok "SIGHUP does not stop courant" || not_ok "SIGHUP does not stop courant"
stop_courant
expect_eq "it still exits 0 on SIGTERM" "$STOP_RC" 0
check_json=$(python3 - "$LOG" <<'PY'
import json, sys
lines = open(sys.argv[1], encoding='utf-8').read().splitlines()
threads, msgs = set(), []
for i, l in enumerate(lines):
    o = json.loads(l)                     # raises on a malformed line
    assert set(o) == {"ts", "level", "thread", "msg"}, l
    assert o["level"] in ("debug", "info", "warn", "error"), l
    assert len(o["ts"]) == 24 and o["ts"].endswith("Z"), l
    threads.add(o["thread"]); msgs.append(o["msg"])
assert any(m.startswith("courant ready") for m in msgs), msgs
assert any("SIGHUP" in m for m in msgs), msgs
assert any(" refused 400 " in m for m in msgs), msgs
print(len(lines), sorted(threads))
PY
) && ok "every log line is one JSON object with ts, level, thread, msg ($check_json)" || not_ok "JSON logs" "$(head -5 "$LOG")"

# --- make install --------------------------------------------------------------------------
root="$TMP/root"
if make -s install DESTDIR="$root" PREFIX=/usr SYSCONFDIR=/etc >"$TMP/install.log" 2>&1; then
    ok "make install DESTDIR=... PREFIX=/usr SYSCONFDIR=/etc"
    for f in usr/bin/courant usr/share/man/man1/courant.1 usr/share/doc/courant/courant.conf.example \
             usr/lib/systemd/system/courant.service etc/courant/courant.conf; do
        [ -s "$root/$f" ] || not_ok "installs /$f"
    done
    ok "installs the binary, man page, example, unit and configuration"
    expect_eq "the binary is executable" "$(stat -c %a "$root/usr/bin/courant")" 755
    expect_match "the unit runs the installed binary with the installed file" \
        "$(grep '^ExecStart=' "$root/usr/lib/systemd/system/courant.service")" '^ExecStart=/usr/bin/courant --config /etc/courant/courant.conf$'
    grep -q '^store = /var/lib/courant/courant.db$' "$root/etc/courant/courant.conf" && ok "the service configuration keeps history in its StateDirectory" \
        || not_ok "store in the StateDirectory"
    echo "history = 42" >>"$root/etc/courant/courant.conf"
    make -s install DESTDIR="$root" PREFIX=/usr SYSCONFDIR=/etc >"$TMP/install.log" 2>&1
    grep -q '^history = 42$' "$root/etc/courant/courant.conf" && ok "a second install keeps an edited configuration" \
        || not_ok "a second install keeps the configuration"
    "$root/usr/bin/courant" --config "$root/etc/courant/courant.conf" --store "$TMP/x.db" --listen 127.0.0.1:0 --version >/dev/null \
        && ok "the installed configuration parses" || not_ok "the installed configuration parses"
    COURANT_BIN="$root/usr/bin/courant" start_courant --config "$root/etc/courant/courant.conf" --store "$TMP/inst.db" --listen 127.0.0.1:0 \
        && ok "the installed binary runs with the installed configuration" || not_ok "installed binary runs"
    stop_courant
    make -s uninstall DESTDIR="$root" PREFIX=/usr SYSCONFDIR=/etc >/dev/null 2>&1
    [ ! -e "$root/usr/bin/courant" ] && [ -e "$root/etc/courant/courant.conf" ] && ok "make uninstall removes the files but not the configuration" \
        || not_ok "make uninstall"
else
    not_ok "make install" "$(tail -5 "$TMP/install.log")"
fi
