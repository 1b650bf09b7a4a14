-- The audit log's hash chain, its signed seals and its archives.
--
-- Entries are appended to audit_log inside their callers' transactions with
-- no lock; the chainer gives each committed entry its place in the chain
-- afterwards, in a short transaction of its own. `position` is the chain's
-- order (on PostgreSQL a lower seq may commit after a higher one). All three
-- tables are append-only; rows of audit_log and audit_chain may be deleted
-- only once an archive that covers their chain position has been recorded.

CREATE TABLE audit_chain (
    position INTEGER PRIMARY KEY NOT NULL,
    audit_seq BIGINT NOT NULL UNIQUE,
    entry_hash TEXT NOT NULL,
    chain_hash TEXT NOT NULL,
    chained_at TIMESTAMP NOT NULL
);

-- A seal: the node's signature (compact JWS) over the chain hash at `position`.
CREATE TABLE audit_seals (
    position INTEGER PRIMARY KEY NOT NULL,
    chain_hash TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    sealed_at TIMESTAMP NOT NULL
);

-- Chain segments written to archive files and removed from the database.
CREATE TABLE audit_archives (
    id TEXT PRIMARY KEY NOT NULL,
    from_position BIGINT NOT NULL UNIQUE,
    to_position BIGINT NOT NULL UNIQUE,
    start_prev_hash TEXT NOT NULL,
    end_chain_hash TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    archived_at TIMESTAMP NOT NULL,
    CHECK (from_position >= 1 AND to_position >= from_position)
);

CREATE TRIGGER audit_chain_no_update BEFORE UPDATE ON audit_chain
BEGIN SELECT RAISE(ABORT, 'audit_chain is append-only'); END;
CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
WHEN NOT EXISTS (
    SELECT 1 FROM audit_archives a WHERE OLD.position BETWEEN a.from_position AND a.to_position
)
BEGIN SELECT RAISE(ABORT, 'audit_chain is append-only: only archived positions may be removed'); END;

CREATE TRIGGER audit_seals_no_update BEFORE UPDATE ON audit_seals
BEGIN SELECT RAISE(ABORT, 'audit_seals is append-only'); END;
CREATE TRIGGER audit_seals_no_delete BEFORE DELETE ON audit_seals
BEGIN SELECT RAISE(ABORT, 'audit_seals is append-only'); END;

CREATE TRIGGER audit_archives_no_update BEFORE UPDATE ON audit_archives
BEGIN SELECT RAISE(ABORT, 'audit_archives is append-only'); END;
CREATE TRIGGER audit_archives_no_delete BEFORE DELETE ON audit_archives
BEGIN SELECT RAISE(ABORT, 'audit_archives is append-only'); END;

-- audit_log: a row may now be deleted, but only when its chain position is
-- covered by a recorded archive.
DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN NOT EXISTS (
    SELECT 1 FROM audit_chain c JOIN audit_archives a ON c.position BETWEEN a.from_position AND a.to_position
    WHERE c.audit_seq = OLD.seq
)
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: only archived entries may be removed'); END;
