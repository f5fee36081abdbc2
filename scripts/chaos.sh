#!/usr/bin/env bash
# The fault, load and bad-input suite of mcas-forward (benches/src/bin/chaos.rs).
#
#   scripts/chaos.sh            the full form: 60 s of 429/503, a 30 s outage, 1M events with
#                               three kill -9, a 2 minute token outage, 5,000 idle connections
#   scripts/chaos.sh --quick    the short form (a few minutes; what CI runs)
#   scripts/chaos.sh --only kill-9,sigterm [--quick]
#
# It builds the release forwarder and the suite, runs every test on loopback against an
# in-process mcas-azure-emulator, prints one JSON line per test and "N passed, N failed",
# and exits non-zero when a test fails. Results are also appended to target/chaos/results.jsonl.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
FULL=--full
ARGS=()
while [ $# -gt 0 ]; do
    case $1 in
        --quick) FULL="" ;;
        --only) ARGS+=(--only "$2"); shift ;;
        *) echo "usage: $0 [--quick] [--only NAME[,NAME...]]" >&2; exit 2 ;;
    esac
    shift
done
# The connection flood holds thousands of sockets.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release -p mcas-forward -p mcas-benches --bin mcas-forward --bin chaos >&2
fi
mkdir -p target/chaos
echo "{\"kind\":\"run\",\"date\":\"$(date -u +%FT%TZ)\",\"form\":\"$([ -n "$FULL" ] && echo full || echo short)\",\"cores\":$(nproc)}" >> target/chaos/results.jsonl
set +e
target/release/chaos $FULL --forwarder target/release/mcas-forward --work target/chaos/work "${ARGS[@]}" \
    | tee -a target/chaos/results.jsonl
status=${PIPESTATUS[0]}
exit "$status"
