-- HL7 v2 ingest (PostgreSQL): the submission archive, the person-linking review queue and merges.
-- Keep in step with ../../sqlite/2026-11-22-000002_hl7_ingest.

-- Every received message, raw, with the ACK it got. `dedup_key` (sending facility | MSH-10) is set
-- for messages that were processed (AA or AE) so a resend gets the same ACK and is stored once.
CREATE TABLE submissions (
    id TEXT PRIMARY KEY NOT NULL,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    sending_facility TEXT NOT NULL,
    control_id TEXT NOT NULL,
    message_type TEXT,
    version TEXT,
    dedup_key TEXT UNIQUE,
    region TEXT,
    received_at TIMESTAMP NOT NULL,
    outcome TEXT NOT NULL,
    errors TEXT,
    person_id TEXT REFERENCES persons (id),
    raw BYTEA NOT NULL,
    ack BYTEA NOT NULL,
    z_segments TEXT
);
CREATE INDEX submissions_facility_time ON submissions (sending_facility, received_at);
CREATE INDEX submissions_region_time ON submissions (region, received_at);
CREATE INDEX submissions_person ON submissions (person_id);

-- Persons the linking rules could not decide about: a human looks at them.
CREATE TABLE review_queue (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    candidate_id TEXT REFERENCES persons (id),
    reason TEXT NOT NULL,
    submission_id TEXT REFERENCES submissions (id),
    status TEXT NOT NULL DEFAULT 'open',
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX review_queue_person ON review_queue (person_id);
CREATE INDEX review_queue_candidate ON review_queue (candidate_id);
CREATE INDEX review_queue_submission ON review_queue (submission_id);

-- Merges (ADT^A40): what moved from the merged person to the survivor, so a merge can be undone.
CREATE TABLE person_merges (
    id TEXT PRIMARY KEY NOT NULL,
    survivor_id TEXT NOT NULL REFERENCES persons (id),
    merged_id TEXT NOT NULL REFERENCES persons (id),
    submission_id TEXT REFERENCES submissions (id),
    actor TEXT NOT NULL,
    moved TEXT NOT NULL,
    merged_at TIMESTAMP NOT NULL,
    undone_at TIMESTAMP,
    undone_by TEXT
);
CREATE INDEX person_merges_survivor ON person_merges (survivor_id);
CREATE INDEX person_merges_merged ON person_merges (merged_id);
CREATE INDEX person_merges_submission ON person_merges (submission_id);

-- Lab results and immunizations are tied to the message that brought them.
ALTER TABLE observations ADD COLUMN submission_id TEXT REFERENCES submissions (id);
CREATE INDEX observations_submission ON observations (submission_id);
ALTER TABLE encounters ADD COLUMN prior_location TEXT;
