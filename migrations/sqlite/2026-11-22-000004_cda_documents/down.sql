DROP TABLE medications;
DROP INDEX observations_document;
ALTER TABLE observations DROP COLUMN document_id;
DELETE FROM diagnoses WHERE encounter_id IS NULL;
CREATE TABLE diagnoses_old (
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
INSERT INTO diagnoses_old SELECT id, encounter_id, person_id, code_system, code, display, diagnosis_type, diagnosed_at, created_at FROM diagnoses;
DROP TABLE diagnoses;
ALTER TABLE diagnoses_old RENAME TO diagnoses;
CREATE INDEX diagnoses_encounter ON diagnoses (encounter_id);
CREATE INDEX diagnoses_person ON diagnoses (person_id);
DROP INDEX documents_set_id;
DROP INDEX documents_cda_id;
ALTER TABLE documents DROP COLUMN kind;
ALTER TABLE documents DROP COLUMN type_system;
ALTER TABLE documents DROP COLUMN version_number;
ALTER TABLE documents DROP COLUMN set_id;
ALTER TABLE documents DROP COLUMN cda_id;
