-- CDA documents (SQLite): document identity and versions, and the coded
-- entries extracted from documents. Keep in step with ../../postgres/.

-- The CDA header's identity of a document: id (root|extension), setId and
-- versionNumber; the type's code system and kind (emr / ehr).
ALTER TABLE documents ADD COLUMN cda_id TEXT;
ALTER TABLE documents ADD COLUMN set_id TEXT;
ALTER TABLE documents ADD COLUMN version_number BIGINT;
ALTER TABLE documents ADD COLUMN type_system TEXT;
ALTER TABLE documents ADD COLUMN kind TEXT NOT NULL DEFAULT 'emr';
CREATE UNIQUE INDEX documents_cda_id ON documents (cda_id);
CREATE INDEX documents_set_id ON documents (set_id);

-- Diagnoses may come from a document with no encounter (a problem list), and
-- remember the document they came from. SQLite cannot drop NOT NULL in place.
CREATE TABLE diagnoses_new (
    id TEXT PRIMARY KEY NOT NULL,
    encounter_id TEXT REFERENCES encounters (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES persons (id),
    code_system TEXT NOT NULL,
    code TEXT NOT NULL,
    display TEXT,
    diagnosis_type TEXT,
    diagnosed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    document_id TEXT REFERENCES documents (id)
);
INSERT INTO diagnoses_new (id, encounter_id, person_id, code_system, code, display, diagnosis_type, diagnosed_at, created_at)
    SELECT id, encounter_id, person_id, code_system, code, display, diagnosis_type, diagnosed_at, created_at FROM diagnoses;
DROP TABLE diagnoses;
ALTER TABLE diagnoses_new RENAME TO diagnoses;
CREATE INDEX diagnoses_encounter ON diagnoses (encounter_id);
CREATE INDEX diagnoses_person ON diagnoses (person_id);
CREATE INDEX diagnoses_document ON diagnoses (document_id);

ALTER TABLE observations ADD COLUMN document_id TEXT REFERENCES documents (id);
CREATE INDEX observations_document ON observations (document_id);

-- Medications (prescriptions and administrations) extracted from documents.
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
