#!/usr/bin/env bash
# PostgreSQL COPY as the ceiling for bulk writes, next to `rhip person import`
# on PostgreSQL, on the same N synthetic persons (`rhip synth`).
#
#   bench/compare/pg_copy.sh N            e.g. bench/compare/pg_copy.sh 20000
#
# Environment: RHIP (rhip binary, default target/release/rhip of this checkout), SEED
# (synth seed, default 7), PGHOST/PGPORT/PGUSER (default 127.0.0.1/5432/postgres,
# trust auth). Creates and at the end drops the databases rhip_cmp_import and
# rhip_cmp_copy (an existing one of those names is dropped first).
# Prints one JSON line per job on stdout; progress goes to stderr.
set -euo pipefail

usage() { echo "usage: $0 N   (N = residents for rhip synth, >= 1)" >&2; exit 2; }
[[ $# -eq 1 && $1 =~ ^[0-9]+$ && $1 -ge 1 ]] || usage
N=$1
RHIP=${RHIP:-$(cd "$(dirname "$0")/../.." && pwd)/target/release/rhip}
SEED=${SEED:-7}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
unset RHIP_DATABASE_URL   # would override the node's database URL
IMPORT_DB=rhip_cmp_import
COPY_DB=rhip_cmp_copy
[[ -x $RHIP ]] || { echo "rhip binary $RHIP not found or not executable (set RHIP=...)" >&2; exit 2; }
for tool in psql python3; do command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 2; }; done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rhip-cmp-copy.XXXXXX")
cleanup() {
    local status=$?
    set +e
    for db in "$IMPORT_DB" "$COPY_DB"; do
        psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[pg_copy] $*" >&2; }
now() { date +%s.%N; }
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

log "rhip synth --residents $N --seed $SEED into $WORK/synth"
"$RHIP" synth --out "$WORK/synth" --residents "$N" --seed "$SEED" >/dev/null
PERSONS_FILE=$WORK/synth/persons.jsonl
PERSONS=$(grep -c . "$PERSONS_FILE")
BYTES=$(stat -c %s "$PERSONS_FILE")
log "$PERSONS persons, $BYTES bytes of JSON lines"

# --- (a) rhip person import on PostgreSQL -----------------------------------
psql_q -d postgres -c "DROP DATABASE IF EXISTS $IMPORT_DB WITH (FORCE)" -c "CREATE DATABASE $IMPORT_DB"
"$RHIP" init --region 330106 --dir "$WORK/node" \
    --db "postgres://$PGUSER@$PGHOST:$PGPORT/$IMPORT_DB" >/dev/null
# Migrations outside the timing (import would otherwise apply them first).
"$RHIP" migrate --config "$WORK/node/node.toml" >/dev/null
db_size() { psql_q -tA -d "$1" -c "SELECT pg_database_size(current_database())"; }
IMPORT_DB_BEFORE=$(db_size "$IMPORT_DB")
log "timing rhip person import"
started=$(now)
"$RHIP" person import --config "$WORK/node/node.toml" --file "$PERSONS_FILE" >"$WORK/import.out"
finished=$(now)
IMPORT_SECONDS=$(echo "$finished - $started" | bc -l)
IMPORT_DB_BYTES=$(db_size "$IMPORT_DB")

# --- (b) psql \copy into a plain table --------------------------------------
psql_q -d postgres -c "DROP DATABASE IF EXISTS $COPY_DB WITH (FORCE)" -c "CREATE DATABASE $COPY_DB"
psql_q -d "$COPY_DB" <<'SQL'
CREATE TABLE persons (
    id             uuid PRIMARY KEY,
    name           text NOT NULL,
    sex            text,
    birth_date     date,
    id_number      text,
    ethnicity      text,
    marital_status text,
    phone          text,
    address_region text,
    address_line   text,
    home_region    text
);
CREATE UNIQUE INDEX persons_id_number ON persons (id_number);
SQL
COPY_DB_BEFORE=$(db_size "$COPY_DB")
COLUMNS="id,name,sex,birth_date,id_number,ethnicity,marital_status,phone,address_region,address_line,home_region"
log "converting persons.jsonl to CSV (not timed)"
started=$(now)
python3 - "$PERSONS_FILE" "$WORK/persons.csv" "$COLUMNS" <<'PY'
import json, sys, uuid
src, dst, columns = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
known = set(columns) | {"identifiers"}
with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8", newline="") as out:
    def cell(value):
        # Absent or null -> unquoted empty (NULL in COPY csv); any string, even "", is quoted.
        if value is None:
            return ""
        return '"' + str(value).replace('"', '""') + '"'
    for n, line in enumerate(f, 1):
        if not line.strip():
            continue
        row = json.loads(line)
        extra = set(row) - known
        if extra:
            sys.exit(f"line {n}: fields {sorted(extra)} have no column")
        row["id"] = str(uuid.uuid4())
        out.write(",".join(cell(row.get(c)) for c in columns) + "\n")
PY
CONVERT_SECONDS=$(echo "$(now) - $started" | bc -l)
log "timing \\copy"
started=$(now)
psql_q -d "$COPY_DB" -c "\\copy persons ($COLUMNS) FROM '$WORK/persons.csv' WITH (FORMAT csv)" >/dev/null
finished=$(now)
COPY_SECONDS=$(echo "$finished - $started" | bc -l)
COPIED=$(psql_q -tA -d "$COPY_DB" -c "SELECT count(*) FROM persons")
COPY_DB_BYTES=$(db_size "$COPY_DB")
[[ $COPIED -eq $PERSONS ]] || { echo "COPY loaded $COPIED rows, expected $PERSONS" >&2; exit 1; }

PG_VERSION=$(psql_q -tA -d postgres -c "SHOW server_version")
python3 - "$PERSONS" "$IMPORT_SECONDS" "$((IMPORT_DB_BYTES - IMPORT_DB_BEFORE))" "$COPY_SECONDS" "$((COPY_DB_BYTES - COPY_DB_BEFORE))" \
    "$CONVERT_SECONDS" "$PG_VERSION" "$("$RHIP" --version 2>/dev/null || echo rhip)" "$(cat "$WORK/import.out")" <<'PY'
import functools, json, sys
print = functools.partial(print, flush=True)
dumps = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))
persons, imp_s, imp_b, copy_s, copy_b, conv_s, pg, rhip, imported = sys.argv[1:]
persons = int(persons)
print(dumps({
    "benchmark": "bulk-person-write", "job": "rhip person import", "tool": rhip.strip(),
    "backend": f"PostgreSQL {pg}", "persons": persons, "seconds": float(imp_s),
    "persons_per_second": persons / float(imp_s), "database_growth_bytes": int(imp_b),
    "output": imported.strip(),
    "note": "one transaction; timing includes process start, reading and validating the JSON lines; "
            "name, citizen ID, phone and address sealed with AES-256-GCM, two blind indexes, "
            "a change-log entry per person, one audit entry; ordinary INSERTs",
}))
print(dumps({
    "benchmark": "bulk-person-write", "job": "psql \\copy", "tool": f"psql / PostgreSQL {pg}",
    "backend": f"PostgreSQL {pg}", "persons": persons, "seconds": float(copy_s),
    "persons_per_second": persons / float(copy_s), "database_growth_bytes": int(copy_b),
    "csv_conversion_seconds_not_timed": float(conv_s),
    "note": "plaintext columns, uuid primary key + unique index on id_number, one COPY statement; "
            "timing includes psql start; no validation, no encryption, no change log",
}))
PY
