#!/usr/bin/env bash
# Runs a small representative workload under valgrind memcheck and reports the "definitely
# lost" blocks (and memory errors) attributable to our extension module.
#
#   bench/memcheck.sh                  # 400 requests (HTTP/1.1, errors, redirects, timeouts,
#                                      # cancellations, HTTP/2 over TLS to nginx)
#   REQUESTS=200 OUT=/tmp/mc bench/memcheck.sh
#
# The workload is bench/leak_run.py (its servers run in a child process outside valgrind).
# CPython runs with PYTHONMALLOC=malloc so valgrind sees every allocation. "Ours" means a
# loss record or error with a frame in _acurl_rs.abi3.so, which contains the Rust code and
# the statically linked libcurl, OpenSSL, nghttp2 and zlib. Exit status: 0 when nothing of
# ours is definitely lost at run time and no memory error has a frame of ours, 1 otherwise,
# 2 on setup problems. Definitely-lost blocks allocated once at import (PyO3 type objects)
# are reported but do not fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
REQUESTS=${REQUESTS:-400}
OUT=${OUT:-$(mktemp -d /tmp/acurl-memcheck.XXXXXX)}
mkdir -p "$OUT"
LOG="$OUT/memcheck.log"

command -v valgrind >/dev/null || { echo "valgrind not found" >&2; exit 2; }
[ -x "$PY" ] || { echo "no python at $PY (set PY=...)" >&2; exit 2; }

echo "memcheck: $REQUESTS requests, log in $LOG" >&2
start=$(date +%s)
set +e
PYTHONMALLOC=malloc valgrind \
    --tool=memcheck \
    --leak-check=full \
    --show-leak-kinds=definite \
    --errors-for-leak-kinds=definite \
    --num-callers=40 \
    --log-file="$LOG" \
    "$PY" bench/leak_run.py \
        --requests "$REQUESTS" --nginx \
        --concurrency 10 --round-size 100 --warmup 100 --wrapper-every 2 \
        --timeout 0.5 --cancel-after 0.05 \
        --max-rss-growth-mb 100000 --max-unexpected 1 \
    > "$OUT/leak_run.json"
workload_status=$?
set -e
echo "memcheck: workload exit $workload_status after $(( $(date +%s) - start ))s" >&2

"$PY" - "$LOG" "$OUT/leak_run.json" <<'EOF'
import json
import re
import sys

log_path, run_path = sys.argv[1], sys.argv[2]
text = open(log_path, errors="replace").read()
# Strip the "==PID== " prefixes and split into blocks separated by blank lines.
lines = [re.sub(r"^==\d+== ?", "", line) for line in text.splitlines()]
blocks, current = [], []
for line in lines:
    if line.strip():
        current.append(line)
    elif current:
        blocks.append(current)
        current = []
if current:
    blocks.append(current)

OURS = "_acurl_rs"
lost = [b for b in blocks if "definitely lost in loss record" in b[0]]
ours_lost = [b for b in lost if any(OURS in line for line in b)]
# PyO3 builds each class's type object once, at import, and keeps its method/getset tables for
# the life of the process: constant, not a leak per request.
ONE_TIME = ("create_type_object", "__pyo3_module_exec")
import_time = [b for b in ours_lost if any(m in line for line in b for m in ONE_TIME)]
runtime_lost = [b for b in ours_lost if b not in import_time]
errors = [
    b
    for b in blocks
    if re.match(r"(Invalid (read|write|free)|Conditional jump|Use of uninitialised|"
                r"Syscall param|Mismatched free|Source and destination overlap)", b[0])
]
ours_errors = [b for b in errors if any(OURS in line for line in b)]


def size(block):
    m = re.match(r"([\d,]+) (?:\(([\d,]+) direct, ([\d,]+) indirect\) )?bytes in ([\d,]+) blocks", block[0])
    return (int(m.group(1).replace(",", "")), int(m.group(4).replace(",", ""))) if m else (0, 0)


summary_lines = [l for l in lines if re.search(r"(definitely lost|indirectly lost|possibly lost|still reachable|ERROR SUMMARY):", l)]
try:
    run = json.load(open(run_path))
except (OSError, ValueError):
    run = None
report = {
    "workload": None if run is None else {k: run[k] for k in ("requests", "outcomes", "failures")},
    "valgrind_summary": summary_lines,
    "definitely_lost_records": len(lost),
    "definitely_lost_bytes": sum(size(b)[0] for b in lost),
    "ours_definitely_lost_records": len(ours_lost),
    "ours_definitely_lost_bytes": sum(size(b)[0] for b in ours_lost),
    "ours_definitely_lost_blocks": sum(size(b)[1] for b in ours_lost),
    "ours_import_time_bytes": sum(size(b)[0] for b in import_time),
    "ours_runtime_lost_records": len(runtime_lost),
    "ours_runtime_lost_bytes": sum(size(b)[0] for b in runtime_lost),
    "memory_errors": len(errors),
    "ours_memory_errors": len(ours_errors),
}
print(json.dumps(report, indent=2))
for title, found in (
    ("definitely lost (ours, at run time)", runtime_lost),
    ("definitely lost (ours, once at import)", import_time),
    ("memory errors (ours)", ours_errors),
):
    for block in found[:10]:
        print(f"\n--- {title}:")
        print("\n".join(block[:25]))
sys.exit(1 if runtime_lost or ours_errors else 0)
EOF
