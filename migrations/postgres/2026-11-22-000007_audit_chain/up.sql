-- The audit log's hash chain, its signed seals and its archives.
--
-- Entries are appended to audit_log inside their callers' transactions with
-- no lock; the chainer gives each committed entry its place in the chain
-- afterwards, in a short transaction of its own. `position` is the chain's
-- order (a lower seq may commit after a higher one). All three tables are
-- append-only; rows of audit_log and audit_chain may be deleted only once an
-- archive that covers their chain position has been recorded.

CREATE TABLE audit_chain (
    position BIGINT PRIMARY KEY,
    audit_seq BIGINT NOT NULL UNIQUE,
    entry_hash TEXT NOT NULL,
    chain_hash TEXT NOT NULL,
    chained_at TIMESTAMP NOT NULL
);

-- A seal: the node's signature (compact JWS) over the chain hash at `position`.
CREATE TABLE audit_seals (
    position BIGINT PRIMARY KEY,
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

-- Refuses any change: the table named by the trigger is append-only.
CREATE FUNCTION rhip_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END;
$$;

-- Lets a chain row go only when a recorded archive covers its position.
CREATE FUNCTION audit_chain_delete_archived_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM audit_archives a WHERE OLD.position BETWEEN a.from_position AND a.to_position) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_chain is append-only: only archived positions may be removed';
END;
$$;

-- Lets an audit entry go only when a recorded archive covers its chain position.
CREATE FUNCTION audit_log_delete_archived_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM audit_chain c JOIN audit_archives a ON c.position BETWEEN a.from_position AND a.to_position
        WHERE c.audit_seq = OLD.seq
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: only archived entries may be removed';
END;
$$;

CREATE TRIGGER audit_chain_no_update BEFORE UPDATE ON audit_chain
FOR EACH ROW EXECUTE FUNCTION rhip_append_only();
CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
FOR EACH ROW EXECUTE FUNCTION audit_chain_delete_archived_only();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
FOR EACH STATEMENT EXECUTE FUNCTION rhip_append_only();

CREATE TRIGGER audit_seals_no_change BEFORE UPDATE OR DELETE ON audit_seals
FOR EACH ROW EXECUTE FUNCTION rhip_append_only();
CREATE TRIGGER audit_seals_no_truncate BEFORE TRUNCATE ON audit_seals
FOR EACH STATEMENT EXECUTE FUNCTION rhip_append_only();

CREATE TRIGGER audit_archives_no_change BEFORE UPDATE OR DELETE ON audit_archives
FOR EACH ROW EXECUTE FUNCTION rhip_append_only();
CREATE TRIGGER audit_archives_no_truncate BEFORE TRUNCATE ON audit_archives
FOR EACH STATEMENT EXECUTE FUNCTION rhip_append_only();

-- audit_log: updates stay refused; a delete only of archived entries.
DROP TRIGGER audit_log_no_update ON audit_log;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_delete_archived_only();
