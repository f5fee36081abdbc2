#!/usr/bin/env bash
# Seeds each fuzz target's corpus from the crates' test vectors (the `input` of every case),
# so a short run starts from real device lines instead of from nothing. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

seed() {
    local target=$1
    shift
    mkdir -p "corpus/$target"
    python3 - "corpus/$target" "$@" <<'PY'
import hashlib, json, sys
out = sys.argv[1]
for path in sys.argv[2:]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            data = json.loads(line)["input"].encode("utf-8")
            name = hashlib.sha1(data).hexdigest()
            with open(f"{out}/{name}", "wb") as seedfile:
                seedfile.write(data)
PY
}

# The KQL vectors carry their text in `query`, not `input`.
seed_queries() {
    local target=$1
    shift
    mkdir -p "corpus/$target"
    python3 - "corpus/$target" "$@" <<'PY'
import hashlib, json, sys
out = sys.argv[1]
for path in sys.argv[2:]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                data = json.loads(line)["query"].encode("utf-8")
                with open(f"{out}/{hashlib.sha1(data).hexdigest()}", "wb") as seedfile:
                    seedfile.write(data)
PY
}

# kql_eval takes one JSON row: every input row of the KQL vectors.
seed_rows() {
    local target=$1
    shift
    mkdir -p "corpus/$target"
    python3 - "corpus/$target" "$@" <<'PY'
import hashlib, json, sys
out = sys.argv[1]
for path in sys.argv[2:]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                for row in json.loads(line).get("input") or []:
                    data = json.dumps(row).encode("utf-8")
                    with open(f"{out}/{hashlib.sha1(data).hexdigest()}", "wb") as seedfile:
                        seedfile.write(data)
PY
}

# relp_frame takes two settings bytes (DATALEN limit / 8, chunking seed), then a RELP
# stream: rsyslog's open, each vector's input as a syslog frame, and close.
seed_relp() {
    local target=$1
    shift
    mkdir -p "corpus/$target"
    python3 - "corpus/$target" "$@" <<'PY'
import hashlib, json, sys
out = sys.argv[1]
open_data = b"relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog"
for path in sys.argv[2:]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            msg = json.loads(line)["input"].encode("utf-8")
            data = b"\xff\x07" + b"1 open %d %s\n" % (len(open_data), open_data)
            data += b"2 syslog %d" % len(msg) + (b" " + msg if msg else b"") + b"\n3 close 0\n"
            with open(f"{out}/{hashlib.sha1(data).hexdigest()}", "wb") as seedfile:
                seedfile.write(data)
PY
}

# webhook_verify takes `id \n timestamp \n signature \n body`: the published vectors.
seed_webhook() {
    local target=$1
    shift
    mkdir -p "corpus/$target"
    python3 - "corpus/$target" "$@" <<'PY'
import hashlib, json, sys
out = sys.argv[1]
with open(sys.argv[2], encoding="utf-8") as f:
    v = json.load(f)
sw, gh = v["standard_webhooks"], v["github"]
seeds = [
    (sw["msg_id"], str(sw["timestamp"]), sw["signature"], sw["payload"]),
    (sw["msg_id"], str(sw["timestamp"]), " ".join(sw["decoy_signatures"] + [sw["signature"]]), sw["payload"]),
    ("delivery-1", "", gh["signature"], gh["payload"]),
]
for seed in seeds:
    data = "\n".join(seed).encode("utf-8")
    with open(f"{out}/{hashlib.sha1(data).hexdigest()}", "wb") as seedfile:
        seedfile.write(data)
PY
}

# spool_batch takes a settings byte (low bit: recompute the header checksum), then a batch
# file: a few valid v2 files written here from the format's table (mcas-spool's docs).
seed_spool() {
    local target=$1
    mkdir -p "corpus/$target"
    python3 - "corpus/$target" <<'PY'
import gzip, hashlib, struct, sys, zlib
out = sys.argv[1]

def batch(output, route, bodies):
    output, route = output.encode(), route.encode()
    header_len = 44 + 2 + len(output) + 2 + len(route) + 25 * len(bodies) + 4
    head = b"MCASBTCH" + struct.pack("<HHIQQQI", 2, 0, header_len,
        sum(b[1] for b in bodies), sum(b[2] for b in bodies), sum(len(b[3]) for b in bodies),
        len(bodies))
    head += struct.pack("<H", len(output)) + output + struct.pack("<H", len(route)) + route
    offset = header_len
    for kind, rows, raw_len, data in bodies:
        head += struct.pack("<QIIIBI", offset, len(data), raw_len, rows, kind, zlib.crc32(data))
        offset += len(data)
    head += struct.pack("<I", zlib.crc32(head))
    return head + b"".join(b[3] for b in bodies)

rows = b'[{"Message":"a","Severity":3},{"Message":"b","Severity":5}]'
ndjson = b'{"Message":"a"}\n{"Message":"b"}\n'
gz = gzip.compress(rows, mtime=0)
files = [
    batch("sentinel", "mcas", [(0, 2, len(rows), rows)]),
    batch("sentinel", "mcas", [(1, 2, len(rows), gz), (2, 2, len(ndjson), ndjson)]),
    batch("", "", []),
]
for setting in (b"\x00", b"\x01"):
    for f in files:
        data = setting + f
        with open(f"{out}/{hashlib.sha1(data).hexdigest()}", "wb") as seedfile:
            seedfile.write(data)
PY
}

cef=../crates/cef/tests/data/cef.jsonl
syslog=../crates/syslog/tests/data/syslog.jsonl
csl=../crates/csl/tests/data/csl.jsonl

seed cef_parse "$cef" "$csl"
seed cef_roundtrip "$cef"
seed syslog_parse "$syslog" "$csl"
seed syslog_roundtrip "$syslog"
seed octet_framing "$syslog"
seed_relp relp_frame "$syslog"
seed csl_map "$csl" "$cef"
seed_queries kql_parse ../crates/kql/tests/data/kql.jsonl
seed_rows kql_eval ../crates/kql/tests/data/kql.jsonl
seed_queries kql_query ../crates/kql/tests/data/rules.jsonl ../crates/kql/tests/data/kql.jsonl
# rules_yaml takes a whole rule file: the real Sentinel rules and the example rules.
mkdir -p corpus/rules_yaml
find ../crates/rules/tests/data/sentinel ../examples/rules -name '*.yaml' -print0 |
    while IFS= read -r -d '' f; do
        cp "$f" "corpus/rules_yaml/$(sha1sum "$f" | cut -c1-40)"
    done
seed_webhook webhook_verify ../crates/webhook/tests/data/vectors.json
seed_spool spool_batch
for d in corpus/*/; do
    echo "seeded $(basename "$d"): $(find "$d" -type f | wc -l) inputs"
done
