-- Federation storage (PostgreSQL): link cursors, batches kept until acknowledged, inbound chain
-- state, replay answers, dead letters and person aliases, plus the columns applying remote changes
-- needs. Keep in step with ../../sqlite/2026-11-22-000005_federation.

-- The peer region a change arrived from (NULL = made here). Received changes keep their original
-- id, so change_log.id UNIQUE is what applies a change once per node whatever path it took.
ALTER TABLE change_log ADD COLUMN received_from TEXT;

-- Which change last set a person's demographics (its HLC and the region where it was made), so
-- every node picks the same winner: home county first, then HLC, then origin region code.
ALTER TABLE persons ADD COLUMN demographics_hlc TEXT;
ALTER TABLE persons ADD COLUMN demographics_origin TEXT;

-- A node that keeps only the index of a document stores no bytes; holder_region says where
-- they can be fetched (federated retrieval).
ALTER TABLE documents ALTER COLUMN content DROP NOT NULL;
ALTER TABLE documents ADD COLUMN holder_region TEXT;

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
    payload BYTEA NOT NULL,
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
