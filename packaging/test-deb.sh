#!/usr/bin/env bash
# Builds the Debian package and tests it on this machine, as root (.ci/run stage `deb`):
#   packaging/test-deb.sh
# release build → man pages and completions (deb-assets.sh) → cargo deb → dpkg-deb --info and
# --contents → dpkg -i → --version, man, systemd-analyze, completions → the installed binary
# run as the service user (CAP_NET_BIND_SERVICE only, the unit's umask) with the packaged
# configuration switched to a file output on loopback: send-test, rows arrive, /metrics has
# every name the dashboard and the alerts use → file modes → reinstall keeps an edited
# configuration → dpkg -r, dpkg --purge. promtool checks the alerting rules when Debian's
# prometheus package can be downloaded. Needs cargo-deb (CARGO_DEB_VERSION in .ci/run).
# It installs and purges the package mcas-forward on this machine; the mcas-forward system
# user stays, as after any purge.
set -euo pipefail

cd "$(dirname "$0")/.."
started=$(date +%s)

say() { echo "--- deb: $*"; }
skip() { echo "--- deb: SKIPPED: $*"; }
fail() {
    echo "--- deb: FAIL: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || fail "needs root (dpkg -i, a system user, setpriv)"
for tool in cargo-deb dpkg-deb curl readelf setpriv man systemd-analyze; do
    command -v "$tool" >/dev/null || fail "$tool is missing (.ci/run installs it)"
done

target_dir=$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || fail "no target directory from cargo metadata"
work=$(mktemp -d)
fwd_pid=
cleanup() {
    if [ -n "$fwd_pid" ] && kill -0 "$fwd_pid" 2>/dev/null; then
        kill -KILL "$fwd_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# A port free on 127.0.0.1 for TCP and UDP, in [lo, hi].
free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$(shuf -i "$1-$2" -n 1)
        if [ -z "$(ss -Htuln "sport = :$p" 2>/dev/null)" ]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# ---------------------------------------------------------------------------------------
say "build (release), render man pages and completions, cargo deb"
t0=$(date +%s)
cargo build --release -p mcas-forward
packaging/deb-assets.sh "$target_dir/release/mcas-forward" "$target_dir/release/deb-assets"
rm -rf "$target_dir/debian"
cargo deb -p mcas-forward --no-build --output "$target_dir/debian"
deb=$(ls "$target_dir"/debian/mcas-forward_*.deb)
ddeb=$(ls "$target_dir"/debian/mcas-forward-dbgsym_*.ddeb 2>/dev/null || true)
say "built $(basename "$deb") ($(stat -c %s "$deb") bytes) in $(($(date +%s) - t0)) s"

# ---------------------------------------------------------------------------------------
say "dpkg-deb --info"
dpkg-deb --info "$deb" | tee "$work/info"
field() { dpkg-deb --field "$deb" "$1"; }
[ "$(field Package)" = mcas-forward ] || fail "Package"
version=$(field Version)
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture"
field Depends | grep -q 'libc6' || fail "Depends lacks libc6: $(field Depends)"
field Depends | grep -q 'adduser' || fail "Depends lacks adduser: $(field Depends)"
[ "$(field Section)" = net ] || fail "Section"
dpkg-deb --ctrl-tarfile "$deb" | tar -t | sort >"$work/control-files"
for f in ./control ./conffiles ./postinst ./postrm ./prerm; do
    grep -qx "$f" "$work/control-files" || fail "control member $f missing"
done
[ "$(dpkg-deb --info "$deb" conffiles)" = /etc/mcas-forward/mcas-forward.toml ] ||
    fail "conffiles: $(dpkg-deb --info "$deb" conffiles)"
dpkg-deb --info "$deb" postinst | grep -q 'adduser --system' || fail "postinst creates no user"
dpkg-deb --info "$deb" prerm | grep -q 'deb-systemd-invoke stop' || fail "prerm does not stop the unit"
# Installed, neither enabled nor started (the configuration needs the DCR first); restarted
# on upgrade when it runs.
dpkg-deb --info "$deb" postinst >"$work/postinst"
grep -q 'deb-systemd-helper debian-installed mcas-forward.service' "$work/postinst" ||
    fail "postinst lacks the don't-enable snippet"
grep -q 'deb-systemd-invoke try-restart mcas-forward.service' "$work/postinst" ||
    fail "postinst does not restart a running service on upgrade"
if grep -q 'new installations run enable\|deb-systemd-invoke start' "$work/postinst"; then
    fail "postinst enables or starts the unit before it is configured"
fi

say "dpkg-deb --contents"
dpkg-deb --contents "$deb" | tee "$work/contents"
# mode owner path, as the package holds them.
awk '$1 !~ /^d/ { sub(/^\.\//, "/", $6); if ($2 == "0/0") $2 = "root/root"; print $1, $2, $6 }' "$work/contents" |
    sort -k3 >"$work/files"
expect() { # MODE PATH
    grep -qx -- "$1 root/root $2" "$work/files" || fail "expected $1 root/root $2 in the package"
}
expect -rwxr-xr-x /usr/bin/mcas-forward
expect -rw-r----- /etc/mcas-forward/mcas-forward.toml
expect -rw-r--r-- /usr/lib/systemd/system/mcas-forward.service
expect -rw-r--r-- /usr/share/man/man1/mcas-forward.1.gz
for sub in run validate map send-test dcr-template kql replay-dead-letter completions; do
    expect -rw-r--r-- "/usr/share/man/man1/mcas-forward-$sub.1.gz"
done
expect -rw-r--r-- /usr/share/bash-completion/completions/mcas-forward
expect -rw-r--r-- /usr/share/zsh/vendor-completions/_mcas-forward
expect -rw-r--r-- /usr/share/fish/vendor_completions.d/mcas-forward.fish
expect -rw-r--r-- /usr/share/mcas-forward/grafana/mcas-forward.json
expect -rw-r--r-- /usr/share/mcas-forward/prometheus/alerts.yml
expect -rw-r--r-- /usr/share/doc/mcas-forward/copyright
expect -rw-r--r-- /usr/share/doc/mcas-forward/deploy.md
expect -rw-r--r-- /usr/share/doc/mcas-forward/examples/mcas-forward.toml
if grep -q man-page "$work/files"; then fail "a page for the hidden man-page command"; fi

# The installed binary: stripped, at most 15 MB; its symbols in the dbgsym package.
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/bin/mcas-forward >"$work/bin"
size=$(stat -c %s "$work/bin")
say "installed binary: $size bytes ($((size / 1024 / 1024)) MiB); release build: $(stat -c %s "$target_dir/release/mcas-forward") bytes"
[ "$size" -le $((15 * 1024 * 1024)) ] || fail "the binary is over 15 MB"
# (.debug_gdb_scripts is Rust's loaded pretty-printer hook, not debug information.)
if readelf -S --wide "$work/bin" | grep -Eq '\.(symtab|debug_(info|line|abbrev|str|ranges|rnglists|loclists))[[:space:]]'; then
    fail "the binary is not stripped"
fi
if [ -n "$ddeb" ]; then
    dpkg-deb --contents "$ddeb" | grep -q '/usr/lib/debug/.build-id/.*\.debug' ||
        fail "the dbgsym package has no .debug file"
    say "debug symbols: $(basename "$ddeb") ($(stat -c %s "$ddeb") bytes)"
else
    fail "no -dbgsym package"
fi

# ---------------------------------------------------------------------------------------
say "dpkg -i"
if dpkg -s mcas-forward >/dev/null 2>&1; then
    say "an earlier mcas-forward is installed: purging it first"
    dpkg --purge mcas-forward
fi
dpkg -i "$deb"
dpkg -s mcas-forward | grep -qx 'Status: install ok installed' || fail "not installed"

say "mcas-forward --version"
v=$(mcas-forward --version)
echo "$v"
[ "$(command -v mcas-forward)" = /usr/bin/mcas-forward ] || fail "mcas-forward is $(command -v mcas-forward)"
echo "$v" | grep -Eq "^mcas-forward ${version%-*} \(commit ([0-9a-f]{12}|unknown), built ([0-9]{4}-[0-9]{2}-[0-9]{2}|unknown)\)$" ||
    fail "--version: $v"
if head=$(git rev-parse --short=12 HEAD 2>/dev/null); then
    echo "$v" | grep -q "commit $head" || fail "--version names another commit than $head"
fi

say "the system user and the modes"
getent passwd mcas-forward | tee "$work/passwd"
IFS=: read -r _ _ uid gid _ home shell <"$work/passwd"
[ "$uid" -lt 1000 ] || fail "mcas-forward is not a system user (uid $uid)"
[ "$(getent group mcas-forward | cut -d: -f3)" = "$gid" ] || fail "primary group is not mcas-forward"
[ "$home" = /var/lib/mcas-forward ] || fail "home $home"
[ "$shell" = /usr/sbin/nologin ] || fail "shell $shell"
mode() { # PATH MODE OWNER
    local got
    got=$(stat -c '%a %U:%G' "$1")
    [ "$got" = "$2 $3" ] || fail "$1: $got, expected $2 $3"
    echo "$got $1"
}
mode /etc/mcas-forward 750 root:mcas-forward
mode /etc/mcas-forward/mcas-forward.toml 640 root:mcas-forward
mode /usr/bin/mcas-forward 755 root:root
mode /usr/lib/systemd/system/mcas-forward.service 644 root:root
if runuser -u nobody -- cat /etc/mcas-forward/mcas-forward.toml >/dev/null 2>&1; then
    fail "another user can read the configuration"
fi
runuser -u mcas-forward -- mcas-forward validate --offline --config /etc/mcas-forward/mcas-forward.toml

say "man -l"
MANWIDTH=80 man -l /usr/share/man/man1/mcas-forward.1.gz 2>"$work/man.err" >"$work/man.txt"
head -n 12 "$work/man.txt"
grep -q '^NAME' "$work/man.txt" && grep -q 'send-test' "$work/man.txt" && grep -q '^FILES' "$work/man.txt" ||
    fail "man page incomplete"
cat "$work/man.err"
if grep -qi 'warning\|error' "$work/man.err"; then fail "man printed warnings"; fi
man -w mcas-forward-send-test >/dev/null || fail "man cannot find mcas-forward-send-test"

say "systemd-analyze verify"
unit=/usr/lib/systemd/system/mcas-forward.service
if systemd-analyze verify "$unit" >"$work/verify" 2>&1; then
    cat "$work/verify"
    say "verify: OK"
else
    cat "$work/verify"
    fail "systemd-analyze verify"
fi
if systemd-analyze security --offline=true --threshold=20 "$unit" >"$work/security" 2>&1; then
    tail -n 1 "$work/security"
else
    cat "$work/security"
    fail "systemd-analyze security: exposure over 2.0"
fi
[ -d /run/systemd/system ] || say "systemd is not PID 1 here: the unit is verified, not started (the run below stands in for it)"

say "completions"
bash -n /usr/share/bash-completion/completions/mcas-forward
c=$(bash -c 'source /usr/share/bash-completion/completions/mcas-forward && complete -p mcas-forward')
echo "$c"
[[ $c == "complete "*"-F _mcas"*" mcas-forward" ]] || fail "complete -p: $c"
if command -v zsh >/dev/null; then zsh -n /usr/share/zsh/vendor-completions/_mcas-forward; else skip "zsh -n: zsh is not installed"; fi
if command -v fish >/dev/null; then fish -n /usr/share/fish/vendor_completions.d/mcas-forward.fish; else skip "fish -n: fish is not installed"; fi

# ---------------------------------------------------------------------------------------
say "run the installed binary as mcas-forward, the packaged configuration on loopback"
run=$work/run
install -d -m 0750 -o mcas-forward -g mcas-forward "$run"
chmod 0711 "$work"
port=$(free_port 600 1000) || fail "no free privileged port"
mport=$(free_port 20000 59999) || fail "no free port"
awk -v rows="$run/rows.ndjson" '
    /^\[output\]$/ { print "[output]"; print "kind = \"file\""; print "path = \"" rows "\""; skip = 1; next }
    /^\[output\.auth\]$/ { skip = 1; next }
    /^\[/ { skip = 0 }
    !skip { print }
' /etc/mcas-forward/mcas-forward.toml |
    sed -e "s#^address = \"0\.0\.0\.0:514\"#address = \"127.0.0.1:$port\"#" \
        -e "s#^address = \"127\.0\.0\.1:9464\"#address = \"127.0.0.1:$mport\"#" \
        -e "s#/var/lib/mcas-forward#$run/state#g" >"$work/test.toml"
if grep -v '^[[:space:]]*#' "$work/test.toml" | grep -q '0\.0\.0\.0\|9464\|logs-ingestion\|/var/lib'; then
    fail "the test configuration still has a production value"
fi
install -m 0640 -o root -g mcas-forward "$work/test.toml" "$run/test.toml"
grep -E '^(address|kind|path|dir) ' "$run/test.toml"
# As the unit runs it: the service user, CAP_NET_BIND_SERVICE only (port $port < 1024),
# no new privileges, UMask=0027, XDG_STATE_HOME set.
as_service() {
    setpriv --reuid=mcas-forward --regid=mcas-forward --init-groups --no-new-privs \
        --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service \
        --bounding-set=-all,+net_bind_service -- "$@"
}
as_service mcas-forward validate --offline --config "$run/test.toml" >/dev/null
(
    umask 0027
    export XDG_STATE_HOME=$run/state RUST_LOG=info
    exec setpriv --reuid=mcas-forward --regid=mcas-forward --init-groups --no-new-privs \
        --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service \
        --bounding-set=-all,+net_bind_service -- \
        /usr/bin/mcas-forward run --config "$run/test.toml" 2>"$work/stderr" </dev/null
) &
fwd_pid=$!
ready=
for _ in $(seq 1 100); do
    if curl -fs "http://127.0.0.1:$mport/health" >/dev/null 2>&1; then
        ready=1
        break
    fi
    kill -0 "$fwd_pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$ready" ] || { cat "$work/stderr"; fail "the forwarder did not become ready"; }
grep -q "^Uid:.*$(id -u mcas-forward)" "/proc/$fwd_pid/status" || fail "not running as mcas-forward"
mcas-forward send-test --to "tcp://127.0.0.1:$port" --count 4
mcas-forward send-test --to "udp://127.0.0.1:$port" --count 2
rows=0
for _ in $(seq 1 100); do
    rows=$(grep -c '"DeviceVendor":"MCAS"' "$run/rows.ndjson" 2>/dev/null || true)
    [ "${rows:-0}" -ge 6 ] && break
    sleep 0.1
done
[ "${rows:-0}" -ge 6 ] || { cat "$work/stderr"; fail "$rows of 6 rows arrived"; }
say "$rows rows arrived in the file output"

say "the dashboard and the alerts against the live /metrics"
curl -fs "http://127.0.0.1:$mport/metrics" >"$work/metrics"
awk '/^# TYPE /{ print $3 }' "$work/metrics" | sort -u >"$work/exported"
missing=0
for f in packaging/grafana/mcas-forward.json packaging/prometheus/alerts.yml; do
    for name in $(grep -o 'mcas_forward_[a-z0-9_]*[a-z0-9]' "$f" | sort -u); do
        grep -qx "$name" "$work/exported" || { echo "$f: $name is not exported"; missing=1; }
    done
done
[ "$missing" -eq 0 ] || fail "metric names missing from /metrics"
say "$(grep -oh 'mcas_forward_[a-z0-9_]*[a-z0-9]' packaging/grafana/mcas-forward.json packaging/prometheus/alerts.yml | sort -u | wc -l) names used, all exported ($(wc -l <"$work/exported") families)"
grep -Eq '^mcas_forward_sent_rows_total ([6-9]|[1-9][0-9]+)$' "$work/metrics" || fail "sent_rows_total below 6"

say "stop (SIGTERM)"
kill -TERM "$fwd_pid"
rc=0
wait "$fwd_pid" || rc=$?
fwd_pid=
[ "$rc" -eq 0 ] || { cat "$work/stderr"; fail "exit status $rc after SIGTERM"; }
mode "$run/rows.ndjson" 640 mcas-forward:mcas-forward
if [ -e "$run/state" ]; then
    find "$run/state" -printf '%m %u:%g %p\n'
    if find "$run/state" -type f -perm /0007 | grep -q .; then fail "a state file is open to others"; fi
fi

# ---------------------------------------------------------------------------------------
say "an edited configuration survives a reinstall"
echo "# edited by test-deb.sh" >>/etc/mcas-forward/mcas-forward.toml
dpkg -i "$deb"
tail -n 1 /etc/mcas-forward/mcas-forward.toml | grep -qx '# edited by test-deb.sh' || fail "the edit was lost"
[ ! -e /etc/mcas-forward/mcas-forward.toml.dpkg-dist ] || fail "a .dpkg-dist appeared"
mode /etc/mcas-forward/mcas-forward.toml 640 root:mcas-forward

say "dpkg -r keeps the configuration, dpkg --purge removes it and the state"
install -d -m 0750 -o mcas-forward -g mcas-forward /var/lib/mcas-forward/spool
install -m 0600 /dev/null /etc/mcas-forward/env
dpkg -r mcas-forward
[ ! -e /usr/bin/mcas-forward ] || fail "the binary is still there after dpkg -r"
[ -f /etc/mcas-forward/mcas-forward.toml ] || fail "dpkg -r removed the configuration"
dpkg --purge mcas-forward
for p in /etc/mcas-forward /var/lib/mcas-forward /usr/lib/systemd/system/mcas-forward.service; do
    [ ! -e "$p" ] || fail "$p is still there after the purge"
done
if dpkg -s mcas-forward >/dev/null 2>&1; then fail "still known to dpkg after the purge"; fi
getent passwd mcas-forward >/dev/null && say "the mcas-forward user stays (Debian's advice for system users)"

# ---------------------------------------------------------------------------------------
say "promtool check rules"
promtool=$(command -v promtool || true)
if [ -z "$promtool" ] && [ -x "$target_dir/promtool/usr/bin/promtool" ]; then
    promtool=$target_dir/promtool/usr/bin/promtool
fi
if [ -z "$promtool" ]; then
    # Only the promtool binary of Debian's prometheus package: installing the package would
    # pull in a web UI's JavaScript and start a Prometheus server.
    if (cd "$work" && { apt-get download -q prometheus >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get download -q prometheus >/dev/null 2>&1; }; }); then
        dpkg-deb -x "$work"/prometheus_*.deb "$target_dir/promtool"
        promtool=$target_dir/promtool/usr/bin/promtool
    fi
fi
if [ -n "$promtool" ] && [ -x "$promtool" ]; then
    "$promtool" check rules packaging/prometheus/alerts.yml
else
    skip "promtool check rules: Debian's prometheus package could not be downloaded"
fi

say "passed in $(($(date +%s) - started)) s"
