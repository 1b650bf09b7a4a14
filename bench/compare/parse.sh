#!/usr/bin/env bash
# HL7 v2 parsing in process: rhip's reader (`rhip bench parse --from FILE`)
# and python-hl7 (`hl7_parse.py FILE`) on the same `rhip synth` traffic file.
#
#   bench/compare/parse.sh N [REPEAT]     e.g. bench/compare/parse.sh 20000 3
#
# N residents for `rhip synth` (the traffic of county $COUNTY, default 330106,
# is the input); REPEAT timed passes for python-hl7 (default 1). Environment:
# RHIP (default target/release/rhip of this checkout), PYTHON (default python3), SEED
# (default 7), COUNTY, TRAFFIC (an existing traffic file: skips synth).
# If this rhip has no `bench parse --from`, it falls back to
# `--messages M` (its built-in synthetic ADT, M = the file's message count) and
# says so in the "input" field: then the inputs differ.
set -euo pipefail

usage() { echo "usage: $0 N [REPEAT]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 && $1 =~ ^[0-9]+$ && $1 -ge 1 ]] || usage
N=$1
REPEAT=${2:-1}
[[ $REPEAT =~ ^[0-9]+$ && $REPEAT -ge 1 ]] || usage
RHIP=${RHIP:-$(cd "$(dirname "$0")/../.." && pwd)/target/release/rhip}
PYTHON=${PYTHON:-python3}
SEED=${SEED:-7}
COUNTY=${COUNTY:-330106}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ -x $RHIP ]] || { echo "rhip binary $RHIP not found or not executable (set RHIP=...)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rhip-cmp-parse.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log() { echo "[parse] $*" >&2; }

if [[ -n ${TRAFFIC:-} ]]; then
    FILE=$TRAFFIC
else
    log "rhip synth --residents $N --seed $SEED"
    "$RHIP" synth --out "$WORK/synth" --residents "$N" --seed "$SEED" >/dev/null
    FILE=$WORK/synth/traffic/$COUNTY.hl7
fi
[[ -s $FILE ]] || { echo "$FILE is missing or empty" >&2; exit 1; }

# python-hl7 first: it also counts the messages (same splitting rules as rhip).
PY_JSON=$("$PYTHON" "$HERE/hl7_parse.py" "$FILE" --repeat "$REPEAT")
MESSAGES=$(jq -r '.messages / .repeat' <<<"$PY_JSON")
log "$MESSAGES messages in $(basename "$FILE")"

if "$RHIP" bench parse --help 2>&1 | grep -q -- '--from'; then
    INPUT="same file: $(basename "$FILE")"
    RHIP_OUT=$("$RHIP" bench parse --from "$FILE") || { echo "rhip bench parse --from failed: $RHIP_OUT" >&2; exit 1; }
else
    INPUT="rhip's built-in synthetic ADT (this rhip has no bench parse --from): not the same input"
    log "rhip bench parse has no --from; falling back to --messages $MESSAGES"
    RHIP_OUT=$("$RHIP" bench parse --messages "$MESSAGES")
fi
RHIP_JSON=$(grep '^{' <<<"$RHIP_OUT" | tail -n1)
RHIP_VERSION=$("$RHIP" --version 2>/dev/null || echo rhip)

jq -c --arg input "$INPUT" --arg tool "$RHIP_VERSION" \
    '{tool: $tool, input: $input, work: "charset detection, structure, escapes, mapping, validation"} + .' <<<"$RHIP_JSON"
jq -c --arg input "same file: $(basename "$FILE")" \
    '{input: $input, work: "hl7.parse (split into segments/fields/components) + read MSH-9, MSH-10, PID-3.1"} + .' <<<"$PY_JSON"
