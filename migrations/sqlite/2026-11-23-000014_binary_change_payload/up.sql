-- Change payloads are sealed as bytes rather than base64 text: the change
-- log is most of what a node writes (a federation batch's commit was a
-- fifth of its apply), and base64 made every payload a third larger.
-- Rows written before keep their text-format value, now stored as bytes;
-- the store opens both formats, and `rhip keys rotate` rewrites them.
-- SQLite cannot change a column's type in place: the table is rebuilt,
-- keeping its AUTOINCREMENT high-water mark so no sequence is used twice.
CREATE TABLE change_log_new (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    hlc TEXT NOT NULL,
    origin_region TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    op TEXT NOT NULL,
    person_id TEXT,
    home_region TEXT,
    payload BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL,
    received_from TEXT
);
INSERT INTO change_log_new (seq, id, hlc, origin_region, entity, entity_id, op, person_id, home_region, payload, created_at, received_from)
    SELECT seq, id, hlc, origin_region, entity, entity_id, op, person_id, home_region, CAST(payload AS BLOB), created_at, received_from
    FROM change_log;
DELETE FROM sqlite_sequence WHERE name = 'change_log_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'change_log_new', seq FROM sqlite_sequence WHERE name = 'change_log';
DROP TABLE change_log;
ALTER TABLE change_log_new RENAME TO change_log;
