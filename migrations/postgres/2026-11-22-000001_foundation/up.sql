-- RHIP foundation schema (PostgreSQL). Keep in step with ../../sqlite/ (same version names, same tables and columns).
-- Times are UTC. Ids are UUIDv7 text. Citizen IDs and names are plaintext here; encryption at rest comes in a later migration.

CREATE TABLE node_meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE facilities (
    code TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    region TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    hlc TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX facilities_region ON facilities (region);

CREATE TABLE households (
    id TEXT PRIMARY KEY NOT NULL,
    region TEXT NOT NULL,
    address_line TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX households_region ON households (region);

CREATE TABLE persons (
    id TEXT PRIMARY KEY NOT NULL,
    home_region TEXT NOT NULL,
    name TEXT NOT NULL,
    sex TEXT NOT NULL,
    birth_date DATE,
    id_number TEXT UNIQUE,
    ethnicity TEXT,
    marital_status TEXT,
    phone TEXT,
    address_region TEXT,
    address_line TEXT,
    household_id TEXT REFERENCES households (id),
    household_relation TEXT,
    non_resident BOOLEAN NOT NULL DEFAULT FALSE,
    status TEXT NOT NULL DEFAULT 'active',
    merged_into TEXT REFERENCES persons (id),
    origin_region TEXT NOT NULL,
    hlc TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX persons_home_region ON persons (home_region);
CREATE INDEX persons_name_birth ON persons (name, birth_date);
CREATE INDEX persons_household ON persons (household_id);
CREATE INDEX persons_merged_into ON persons (merged_into);

CREATE TABLE person_identifiers (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    system TEXT NOT NULL,
    value TEXT NOT NULL,
    type_code TEXT,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (system, value)
);
CREATE INDEX person_identifiers_person ON person_identifiers (person_id);

CREATE TABLE encounters (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    facility_code TEXT NOT NULL,
    visit_number TEXT NOT NULL,
    encounter_type TEXT NOT NULL,
    status TEXT NOT NULL,
    admitted_at TIMESTAMP,
    discharged_at TIMESTAMP,
    department TEXT,
    location TEXT,
    attending TEXT,
    source_region TEXT NOT NULL,
    hlc TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (facility_code, visit_number)
);
CREATE INDEX encounters_person ON encounters (person_id);

CREATE TABLE diagnoses (
    id TEXT PRIMARY KEY NOT NULL,
    encounter_id TEXT NOT NULL REFERENCES encounters (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES persons (id),
    code_system TEXT NOT NULL,
    code TEXT NOT NULL,
    display TEXT,
    diagnosis_type TEXT,
    diagnosed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX diagnoses_encounter ON diagnoses (encounter_id);
CREATE INDEX diagnoses_person ON diagnoses (person_id);

CREATE TABLE documents (
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
    content BYTEA NOT NULL,
    supersedes TEXT REFERENCES documents (id),
    status TEXT NOT NULL DEFAULT 'current',
    source_region TEXT NOT NULL,
    hlc TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX documents_person_time ON documents (person_id, effective_at);
CREATE INDEX documents_encounter ON documents (encounter_id);
CREATE INDEX documents_sha256 ON documents (sha256);
CREATE INDEX documents_supersedes ON documents (supersedes);

CREATE TABLE observations (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    encounter_id TEXT REFERENCES encounters (id) ON DELETE CASCADE,
    report_id TEXT,
    code_system TEXT NOT NULL,
    code TEXT NOT NULL,
    display TEXT,
    value TEXT,
    value_type TEXT,
    unit TEXT,
    reference_range TEXT,
    abnormal_flag TEXT,
    status TEXT NOT NULL DEFAULT 'final',
    observed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX observations_person ON observations (person_id, observed_at);
CREATE INDEX observations_encounter ON observations (encounter_id);

CREATE TABLE ehr_entries (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    kind TEXT NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    facility_code TEXT,
    source_region TEXT NOT NULL,
    summary TEXT NOT NULL,
    encounter_id TEXT REFERENCES encounters (id),
    document_id TEXT REFERENCES documents (id),
    hlc TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX ehr_entries_person_time ON ehr_entries (person_id, occurred_at);
CREATE INDEX ehr_entries_encounter ON ehr_entries (encounter_id);
CREATE INDEX ehr_entries_document ON ehr_entries (document_id);

-- Transactional outbox: every change that must travel is appended here in the transaction that makes it.
CREATE TABLE change_log (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    hlc TEXT NOT NULL,
    origin_region TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    op TEXT NOT NULL,
    person_id TEXT,
    home_region TEXT,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX change_log_entity ON change_log (entity, entity_id);
CREATE INDEX change_log_person ON change_log (person_id);

-- Who touched which personal data. Append-only: the triggers below refuse UPDATE and DELETE.
CREATE TABLE audit_log (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    occurred_at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    role TEXT,
    actor_region TEXT,
    facility_code TEXT,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT,
    person_id TEXT,
    purpose TEXT,
    outcome TEXT NOT NULL,
    http_status INTEGER,
    request_id TEXT,
    source_ip TEXT,
    detail TEXT
);
CREATE INDEX audit_log_person ON audit_log (person_id, occurred_at);
CREATE INDEX audit_log_actor ON audit_log (actor, occurred_at);
CREATE INDEX audit_log_time ON audit_log (occurred_at);
CREATE INDEX audit_log_facility ON audit_log (facility_code, occurred_at);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit_log is append-only'; END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    region TEXT,
    facility_code TEXT,
    person_id TEXT REFERENCES persons (id),
    password_hash TEXT,
    status TEXT NOT NULL DEFAULT 'active',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX users_person ON users (person_id);
