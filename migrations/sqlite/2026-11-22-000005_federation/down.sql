PRAGMA foreign_keys = OFF;
BEGIN;
DROP TABLE person_aliases;
DROP TABLE fed_dead_letters;
DROP TABLE fed_batches_in;
DROP TABLE fed_inbound;
DROP TABLE fed_batches_out;
DROP TABLE fed_links;
CREATE TABLE documents_old (
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
    content BLOB NOT NULL,
    supersedes TEXT REFERENCES documents (id),
    status TEXT NOT NULL DEFAULT 'current',
    source_region TEXT NOT NULL,
    hlc TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    cda_id TEXT,
    set_id TEXT,
    version_number BIGINT,
    type_system TEXT,
    kind TEXT NOT NULL DEFAULT 'emr'
);
INSERT INTO documents_old (id, person_id, encounter_id, type_code, title, effective_at, author_facility, custodian,
        confidentiality, content_type, sha256, size_bytes, content, supersedes, status, source_region, hlc, created_at,
        cda_id, set_id, version_number, type_system, kind)
    SELECT id, person_id, encounter_id, type_code, title, effective_at, author_facility, custodian,
        confidentiality, content_type, sha256, size_bytes, COALESCE(content, X''), supersedes, status, source_region,
        hlc, created_at, cda_id, set_id, version_number, type_system, kind FROM documents;
DROP TABLE documents;
ALTER TABLE documents_old RENAME TO documents;
CREATE INDEX documents_person_time ON documents (person_id, effective_at);
CREATE INDEX documents_encounter ON documents (encounter_id);
CREATE INDEX documents_sha256 ON documents (sha256);
CREATE INDEX documents_supersedes ON documents (supersedes);
CREATE UNIQUE INDEX documents_cda_id ON documents (cda_id);
CREATE INDEX documents_set_id ON documents (set_id);
ALTER TABLE persons DROP COLUMN demographics_origin;
ALTER TABLE persons DROP COLUMN demographics_hlc;
ALTER TABLE change_log DROP COLUMN received_from;
COMMIT;
PRAGMA foreign_keys = ON;
