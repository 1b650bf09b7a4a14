-- Back to a text column, each value in the text format an older build
-- reads: a payload sealed in the binary format (`RHIPENC1`, key-id length,
-- key id, sealed bytes) is the same ciphertext as `enc1:<key id>:<base64>`,
-- so it is re-encoded, not decrypted. SQLite has no base64 function: the
-- recursive query below encodes three bytes per step.
CREATE TABLE change_log_old (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    hlc TEXT NOT NULL,
    origin_region TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    op TEXT NOT NULL,
    person_id TEXT,
    home_region TEXT,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    received_from TEXT
);
INSERT INTO change_log_old (seq, id, hlc, origin_region, entity, entity_id, op, person_id, home_region, payload, created_at, received_from)
    SELECT seq, id, hlc, origin_region, entity, entity_id, op, person_id, home_region,
        CASE WHEN substr(payload, 1, 8) <> CAST('RHIPENC1' AS BLOB) THEN CAST(payload AS TEXT) ELSE (
            WITH RECURSIVE
                head(k) AS (
                    SELECT (instr('0123456789ABCDEF', substr(hex(substr(payload, 9, 1)), 1, 1)) - 1) * 16
                         + instr('0123456789ABCDEF', substr(hex(substr(payload, 9, 1)), 2, 1)) - 1
                ),
                body(key, h, n) AS (
                    SELECT CAST(substr(payload, 10, k) AS TEXT), hex(substr(payload, 10 + k)), length(substr(payload, 10 + k))
                    FROM head
                ),
                enc(pos, out) AS (
                    SELECT 0, ''
                    UNION ALL
                    SELECT pos + 3, out
                        || substr('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', (((instr('0123456789ABCDEF', substr(h, 2 * pos + 1, 1)) - 1) * 16 + instr('0123456789ABCDEF', substr(h, 2 * pos + 2, 1)) - 1) >> 2) + 1, 1)
                        || substr('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', (((((instr('0123456789ABCDEF', substr(h, 2 * pos + 1, 1)) - 1) * 16 + instr('0123456789ABCDEF', substr(h, 2 * pos + 2, 1)) - 1) & 3) << 4) | ((CASE WHEN pos + 1 < n THEN ((instr('0123456789ABCDEF', substr(h, 2 * pos + 3, 1)) - 1) * 16 + instr('0123456789ABCDEF', substr(h, 2 * pos + 4, 1)) - 1) ELSE 0 END) >> 4)) + 1, 1)
                        || CASE WHEN pos + 1 < n THEN substr('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', ((((CASE WHEN pos + 1 < n THEN ((instr('0123456789ABCDEF', substr(h, 2 * pos + 3, 1)) - 1) * 16 + instr('0123456789ABCDEF', substr(h, 2 * pos + 4, 1)) - 1) ELSE 0 END) & 15) << 2) | ((CASE WHEN pos + 2 < n THEN ((instr('0123456789ABCDEF', substr(h, 2 * pos + 5, 1)) - 1) * 16 + instr('0123456789ABCDEF', substr(h, 2 * pos + 6, 1)) - 1) ELSE 0 END) >> 6)) + 1, 1) ELSE '=' END
                        || CASE WHEN pos + 2 < n THEN substr('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', ((CASE WHEN pos + 2 < n THEN ((instr('0123456789ABCDEF', substr(h, 2 * pos + 5, 1)) - 1) * 16 + instr('0123456789ABCDEF', substr(h, 2 * pos + 6, 1)) - 1) ELSE 0 END) & 63) + 1, 1) ELSE '=' END
                    FROM enc, body WHERE pos < n
                )
            SELECT 'enc1:' || key || ':' || (SELECT out FROM enc ORDER BY pos DESC LIMIT 1) FROM body
        ) END,
        created_at, received_from
    FROM change_log;
DELETE FROM sqlite_sequence WHERE name = 'change_log_old';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'change_log_old', seq FROM sqlite_sequence WHERE name = 'change_log';
DROP TABLE change_log;
ALTER TABLE change_log_old RENAME TO change_log;
