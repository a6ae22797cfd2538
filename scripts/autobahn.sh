#!/usr/bin/env bash
# RFC 6455 conformance: runs the Autobahn|Testsuite fuzzingclient against examples/echo
# over wss://, once in each mode of the library (events, then handler; MODES to choose),
# and prints "N passed, N failed" for all runs together. Exits non-zero on any failed case.
#
# Sections 12 and 13 (permessage-deflate) run in a second pass for each mode against
# `echo --deflate` (built with the deflate feature): DEFLATE_CASES chooses them, by default a
# representative subset that fits CI (one case of each message size and offer:
# 12.*.1 / 12.*.10 / 12.*.18 and the same in 13: 36 cases, 36 OK in 289 s on a busy
# 2-core machine); DEFLATE_CASES="12.* 13.*" runs the full sections (216 cases, 216
# OK in 816 s). Sections 9.* send messages up to 16 MiB, far beyond the small-device
# defaults (1 MiB), so the echo server runs here with --max-message/--max-frame raised
# to 16 MiB; every other case runs with default settings. PLAIN=0 runs the deflate
# passes only.
#
# The suite needs Python 2.7 (autobahntestsuite has no Python 3 release); it is
# installed once into $AUTOBAHN_VENV (default: ~/.cache/tinywss/autobahn-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

VENV=${AUTOBAHN_VENV:-$HOME/.cache/tinywss/autobahn-venv}
PY27=${PY27:-$HOME/.pyenv/versions/2.7.18/bin/python}
OUT=$(realpath -m "${AUTOBAHN_OUT:-target/autobahn}")

install_suite() {
    if [ -x "$VENV/bin/wstest" ]; then
        return
    fi
    echo "autobahn: installing the test suite into $VENV"
    if [ ! -x "$PY27" ]; then
        echo "autobahn: Python 2.7 not found at $PY27 (set PY27)" >&2
        exit 1
    fi
    python3 -m pip install --quiet "virtualenv==20.21.1"
    python3 -m virtualenv --quiet -p "$PY27" "$VENV"
    "$VENV/bin/pip" install --quiet "autobahntestsuite==25.10.1"
}

install_suite
LIMIT=$((16 * 1024 * 1024))
PASSED=0
FAILED=0

# Runs the cases (a JSON list) against the echo example started with the remaining
# arguments; NAME names the run's folder and its lines; adds to PASSED/FAILED.
run_suite() {
    local mode=$1 cases=$2 excluded=$3 out="$OUT/$1"
    shift 3
    rm -rf "$out"
    start_example echo "$out" --max-message "$LIMIT" --max-frame "$LIMIT" "$@"
    cat > "$out/spec.json" <<SPEC
{
  "outdir": "$out/reports",
  "servers": [{"agent": "tinywss", "url": "wss://127.0.0.1:$PORT", "hostname": "localhost"}],
  "cases": $cases,
  "exclude-cases": $excluded,
  "exclude-agent-cases": {}
}
SPEC
    (cd "$out" && SSL_CERT_FILE="$CA" "$VENV/bin/wstest" -m fuzzingclient -s spec.json > wstest.log 2>&1) || {
        echo "autobahn ($mode mode): wstest failed" >&2
        tail -n 30 "$out/wstest.log" >&2
        exit 1
    }
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    local counts
    counts=$(python3 - "$out/reports/index.json" "$mode" <<'PY'
import json, sys, collections
results = json.load(open(sys.argv[1]))["tinywss"]
mode = sys.argv[2]
counts = collections.Counter()
failed = []
for case, r in sorted(results.items()):
    ok = r["behavior"] in ("OK", "NON-STRICT", "INFORMATIONAL") and \
         r["behaviorClose"] in ("OK", "INFORMATIONAL")
    counts[r["behavior"]] += 1
    if not ok:
        failed.append((case, r["behavior"], r["behaviorClose"]))
for case, b, bc in failed:
    print(f"autobahn ({mode} mode): case {case} failed: behavior {b}, close {bc}", file=sys.stderr)
print(f"autobahn ({mode} mode): " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), file=sys.stderr)
print(len(results) - len(failed), len(failed))
PY
)
    PASSED=$((PASSED + ${counts% *}))
    FAILED=$((FAILED + ${counts#* }))
}

rm -rf "$OUT" && mkdir -p "$OUT"
export EXAMPLE_FEATURES=deflate
subset=""
for section in 12 13; do
    for group in 1 2 3 4 5 6 7; do
        [ "$section" = 12 ] && [ "$group" -gt 5 ] && continue
        for case in 1 10 18; do subset="$subset $section.$group.$case"; done
    done
done
deflate_cases=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' ${DEFLATE_CASES:-$subset})
for mode in ${MODES:-events handler}; do
    if [ "${PLAIN:-1}" = 1 ]; then
        run_suite "$mode" '["*"]' '["12.*", "13.*"]' --mode "$mode"
    fi
    run_suite "$mode-deflate" "$deflate_cases" '[]' --deflate --mode "$mode"
done
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
