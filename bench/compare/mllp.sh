#!/usr/bin/env bash
# `rhip bench mllp` against two listeners on this machine, one after the other:
#   1. bench/compare/mllp_ack_server.py: python-hl7's asyncio MLLP server that
#      parses each message and answers AA, storing nothing;
#   2. a fresh `rhip serve` node (SQLite in a temporary folder, facility
#      H330106001 registered), which commits every message before its ACK.
#
#   bench/compare/mllp.sh N C          e.g. bench/compare/mllp.sh 10000 8
#
# N messages over C connections, the same synthetic ADT^A04/A01 stream for both
# (made by the rhip client). Environment: RHIP (rhip binary, default
# target/release/rhip of this checkout), PYTHON (default python3). Prints one labelled JSON
# line per listener on stdout; progress on stderr. Both listeners are stopped
# (SIGTERM, by their process id) on exit.
set -euo pipefail

usage() { echo "usage: $0 N C   (N messages >= 1, C connections >= 1)" >&2; exit 2; }
[[ $# -eq 2 && $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ && $1 -ge 1 && $2 -ge 1 ]] || usage
N=$1
C=$2
RHIP=${RHIP:-$(cd "$(dirname "$0")/../.." && pwd)/target/release/rhip}
PYTHON=${PYTHON:-python3}
FACILITY=H330106001
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
unset RHIP_DATABASE_URL   # would override the node's SQLite URL
[[ -x $RHIP ]] || { echo "rhip binary $RHIP not found or not executable (set RHIP=...)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rhip-cmp-mllp.XXXXXX")
PIDS=()
CLIENT=""
stop() {  # stop one server we started, by pid: SIGTERM, then SIGKILL after 10 s
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local status=$?
    set +e
    [[ -n $CLIENT ]] && stop "$CLIENT"
    for pid in "${PIDS[@]}"; do stop "$pid"; done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[mllp] $*" >&2; }

# Waits until FILE holds a line with "mllp HOST:PORT" and prints HOST:PORT.
await_mllp() {
    local file=$1 pid=$2 address=""
    for _ in $(seq 300); do
        address=$(grep -o 'mllp [0-9.]*:[0-9]*' "$file" 2>/dev/null | head -n1 | cut -d' ' -f2 || true)
        [[ -n $address ]] && { echo "$address"; return 0; }
        kill -0 "$pid" 2>/dev/null || { echo "server exited early:" >&2; cat "$file" "$file.err" >&2 2>/dev/null; return 1; }
        sleep 0.1
    done
    echo "no 'mllp HOST:PORT' line after 30 s:" >&2
    cat "$file" >&2
    return 1
}

# Runs the bench against ADDRESS and prints its JSON line with a label.
bench() {
    local label=$1 address=$2 out status=0
    # In the background and waited for, so that a SIGTERM/SIGINT to this
    # script is handled at once (bash defers traps while a foreground child runs).
    "$RHIP" bench mllp --to "$address" --facility "$FACILITY" --messages "$N" --connections "$C" >"$WORK/bench.out" &
    CLIENT=$!
    wait "$CLIENT" || status=$?
    CLIENT=""
    out=$(cat "$WORK/bench.out")
    local json
    json=$(grep '^{' <<<"$out" | tail -n1 || true)
    [[ -n $json ]] || { echo "rhip bench mllp against $label printed no JSON (exit $status): $out" >&2; return 1; }
    jq -c --arg target "$label" --argjson exit "$status" '{target: $target, exit_status: $exit} + .' <<<"$json"
    [[ $status -eq 0 ]] || log "rhip bench mllp against $label exited $status (ACK codes other than AA?)"
}

# --- 1. python-hl7 ACK server ------------------------------------------------
"$PYTHON" "$HERE/mllp_ack_server.py" --port 0 >"$WORK/python.out" 2>"$WORK/python.out.err" &
PIDS+=($!)
PY_ADDRESS=$(await_mllp "$WORK/python.out" "${PIDS[-1]}")
PY_VERSION=$("$PYTHON" -c 'import platform; from importlib.metadata import version; print("python-hl7", version("hl7"), "on", platform.python_implementation(), platform.python_version())')
log "python-hl7 ACK server at $PY_ADDRESS ($PY_VERSION)"
bench "python-hl7 ACK server ($PY_VERSION, stores nothing)" "$PY_ADDRESS"
stop "${PIDS[-1]}"
log "python server: $(tail -n1 "$WORK/python.out.err")"

# --- 2. rhip node on SQLite ----------------------------------------------------
"$RHIP" init --region 330106 --dir "$WORK/node" >/dev/null
"$RHIP" facility add --config "$WORK/node/node.toml" --code "$FACILITY" --name bench >/dev/null
RUST_LOG=${RUST_LOG:-warn} "$RHIP" serve --config "$WORK/node/node.toml" >"$WORK/rhip.out" 2>"$WORK/rhip.out.err" &
PIDS+=($!)
RHIP_ADDRESS=$(await_mllp "$WORK/rhip.out" "${PIDS[-1]}")
log "rhip node at $RHIP_ADDRESS ($("$RHIP" --version 2>/dev/null || echo rhip))"
bench "rhip serve (SQLite, $("$RHIP" --version 2>/dev/null || echo rhip), commits before ACK)" "$RHIP_ADDRESS"
stop "${PIDS[-1]}"
