-- CDA documents (PostgreSQL): document identity and versions, and the coded
-- entries extracted from documents. Keep in step with ../../sqlite/.

ALTER TABLE documents ADD COLUMN cda_id TEXT;
ALTER TABLE documents ADD COLUMN set_id TEXT;
ALTER TABLE documents ADD COLUMN version_number BIGINT;
ALTER TABLE documents ADD COLUMN type_system TEXT;
ALTER TABLE documents ADD COLUMN kind TEXT NOT NULL DEFAULT 'emr';
CREATE UNIQUE INDEX documents_cda_id ON documents (cda_id);
CREATE INDEX documents_set_id ON documents (set_id);

ALTER TABLE diagnoses ALTER COLUMN encounter_id DROP NOT NULL;
ALTER TABLE diagnoses ADD COLUMN document_id TEXT REFERENCES documents (id);
CREATE INDEX diagnoses_document ON diagnoses (document_id);

ALTER TABLE observations ADD COLUMN document_id TEXT REFERENCES documents (id);
CREATE INDEX observations_document ON observations (document_id);

CREATE TABLE medications (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    encounter_id TEXT REFERENCES encounters (id) ON DELETE CASCADE,
    document_id TEXT REFERENCES documents (id),
    code_system TEXT,
    code TEXT,
    name TEXT NOT NULL,
    dose TEXT,
    dose_unit TEXT,
    route TEXT,
    started_at TIMESTAMP,
    ended_at TIMESTAMP,
    source_region TEXT NOT NULL,
    hlc TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX medications_person ON medications (person_id, started_at);
CREATE INDEX medications_document ON medications (document_id);
CREATE INDEX medications_encounter ON medications (encounter_id);
