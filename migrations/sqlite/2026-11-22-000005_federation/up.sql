-- Federation storage (SQLite): link cursors, batches kept until acknowledged, inbound chain
-- state, replay answers, dead letters and person aliases, plus the columns applying remote changes
-- needs. Keep in step with ../../postgres/2026-11-22-000005_federation.

PRAGMA foreign_keys = OFF;
BEGIN;

-- The peer region a change arrived from (NULL = made here). Received changes keep their original
-- id, so change_log.id UNIQUE is what applies a change once per node whatever path it took.
ALTER TABLE change_log ADD COLUMN received_from TEXT;

-- Which change last set a person's demographics (its HLC and the region where it was made), so
-- every node picks the same winner: home county first, then HLC, then origin region code.
ALTER TABLE persons ADD COLUMN demographics_hlc TEXT;
ALTER TABLE persons ADD COLUMN demographics_origin TEXT;

-- A node that keeps only the index of a document stores no bytes; holder_region says where
-- they can be fetched (federated retrieval).
-- SQLite cannot drop NOT NULL in place: the table is rebuilt with foreign keys off, which is why
-- this migration runs outside diesel's transaction (metadata.toml) and opens its own.
CREATE TABLE documents_new (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT REFERENCES persons (id),
    encounter_id TEXT REFERENCES encounters (id),
    type_code TEXT NOT NULL,
    title TEXT NOT NULL,
    effective_at TIMESTAMP NOT NULL,
    author_facility TEXT,
    custodian TEXT,
    confidentiality TEXT NOT NULL DEFAULT 'N',
    content_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    content BLOB,
    supersedes TEXT REFERENCES documents (id),
    status TEXT NOT NULL DEFAULT 'current',
    source_region TEXT NOT NULL,
    hlc TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    cda_id TEXT,
    set_id TEXT,
    version_number BIGINT,
    type_system TEXT,
    kind TEXT NOT NULL DEFAULT 'emr',
    holder_region TEXT
);
INSERT INTO documents_new (id, person_id, encounter_id, type_code, title, effective_at, author_facility, custodian,
        confidentiality, content_type, sha256, size_bytes, content, supersedes, status, source_region, hlc, created_at,
        cda_id, set_id, version_number, type_system, kind)
    SELECT id, person_id, encounter_id, type_code, title, effective_at, author_facility, custodian,
        confidentiality, content_type, sha256, size_bytes, content, supersedes, status, source_region, hlc, created_at,
        cda_id, set_id, version_number, type_system, kind FROM documents;
DROP TABLE documents;
ALTER TABLE documents_new RENAME TO documents;
CREATE INDEX documents_person_time ON documents (person_id, effective_at);
CREATE INDEX documents_encounter ON documents (encounter_id);
CREATE INDEX documents_sha256 ON documents (sha256);
CREATE INDEX documents_supersedes ON documents (supersedes);
CREATE UNIQUE INDEX documents_cda_id ON documents (cda_id);
CREATE INDEX documents_set_id ON documents (set_id);

-- One row per peer: the cut cursor over change_log and the acknowledged end of the batch chain.
CREATE TABLE fed_links (
    peer_region TEXT PRIMARY KEY NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('parent', 'child')),
    cut_seq BIGINT NOT NULL DEFAULT 0,
    next_seq BIGINT NOT NULL DEFAULT 1,
    last_acked_seq BIGINT NOT NULL DEFAULT 0,
    last_acked_digest TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000',
    last_sent_at TIMESTAMP,
    last_acked_at TIMESTAMP,
    last_error TEXT,
    failures BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMP NOT NULL
);

-- Batches cut for a peer, kept byte for byte until acknowledged so a resend is the same batch.
CREATE TABLE fed_batches_out (
    peer_region TEXT NOT NULL REFERENCES fed_links (peer_region),
    seq BIGINT NOT NULL,
    batch_id TEXT NOT NULL UNIQUE,
    digest TEXT NOT NULL,
    manifest TEXT NOT NULL,
    payload BLOB NOT NULL,
    record_count BIGINT NOT NULL,
    first_change_seq BIGINT NOT NULL,
    last_change_seq BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    acked_at TIMESTAMP,
    receipt TEXT,
    -- Changes the peer parked (dead-lettered) in this batch, from its receipt.
    parked_at_peer BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (peer_region, seq)
);

-- The end of each peer's chain as this node has applied it.
CREATE TABLE fed_inbound (
    peer_region TEXT PRIMARY KEY NOT NULL,
    last_seq BIGINT NOT NULL,
    last_digest TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Every applied inbound batch with the receipt it got, so a replay is answered with the same receipt.
CREATE TABLE fed_batches_in (
    peer_region TEXT NOT NULL,
    seq BIGINT NOT NULL,
    batch_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    receipt TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    PRIMARY KEY (peer_region, seq)
);

-- Remote changes the business rules refused here (unknown person, merged person, ...), kept to retry
-- with the retention (`keep`: full or index) they were received under.
CREATE TABLE fed_dead_letters (
    id TEXT PRIMARY KEY NOT NULL,
    change_id TEXT NOT NULL UNIQUE,
    peer_region TEXT NOT NULL,
    entity TEXT NOT NULL,
    op TEXT NOT NULL,
    keep TEXT NOT NULL DEFAULT 'full',
    change TEXT NOT NULL,
    reason TEXT NOT NULL,
    parked_at TIMESTAMP NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 1,
    last_attempt_at TIMESTAMP,
    resolved_at TIMESTAMP
);
CREATE INDEX fed_dead_letters_unresolved ON fed_dead_letters (parked_at) WHERE resolved_at IS NULL;

-- A person created elsewhere who is already known here under another EMPI id (same citizen ID or
-- identifier): later changes naming the remote id are applied to the local person.
CREATE TABLE person_aliases (
    remote_id TEXT PRIMARY KEY NOT NULL,
    local_id TEXT NOT NULL REFERENCES persons (id),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX person_aliases_local ON person_aliases (local_id);

COMMIT;
PRAGMA foreign_keys = ON;
