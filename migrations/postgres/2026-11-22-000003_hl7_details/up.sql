-- HL7 v2 details (PostgreSQL): allergies (AL1), contacts (NK1), insurance (IN1) of a person,
-- the admit reason of an encounter (PV2-3) and the person's primary care (PD1-3, PD1-4).
-- Keep in step with ../../sqlite/2026-11-22-000003_hl7_details.
--
-- Each table has a unique key per person so that a resent or repeated segment updates its row
-- instead of adding one. Key columns are NOT NULL (an absent value is stored as '') because
-- NULLs never collide in a unique key.

-- AL1: what the person is allergic to. `code` is AL1-3.1, or the allergen's text when the
-- sender gave no code.
CREATE TABLE allergies (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    code TEXT NOT NULL,
    code_system TEXT,
    display TEXT,
    severity TEXT,
    reaction TEXT,
    facility_code TEXT NOT NULL,
    submission_id TEXT REFERENCES submissions (id),
    recorded_at TIMESTAMP NOT NULL,
    hlc TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (person_id, code)
);
CREATE INDEX allergies_submission ON allergies (submission_id);

-- NK1: whom to contact about the person.
CREATE TABLE person_contacts (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    name TEXT NOT NULL,
    relationship TEXT NOT NULL DEFAULT '',
    phone TEXT,
    facility_code TEXT NOT NULL,
    submission_id TEXT REFERENCES submissions (id),
    hlc TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (person_id, name, relationship)
);
CREATE INDEX person_contacts_submission ON person_contacts (submission_id);

-- IN1: the person's insurance plans.
CREATE TABLE person_coverages (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id),
    plan TEXT NOT NULL DEFAULT '',
    company TEXT,
    member_id TEXT NOT NULL DEFAULT '',
    facility_code TEXT NOT NULL,
    submission_id TEXT REFERENCES submissions (id),
    hlc TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (person_id, plan, member_id)
);
CREATE INDEX person_coverages_submission ON person_coverages (submission_id);

ALTER TABLE encounters ADD COLUMN admit_reason TEXT;
ALTER TABLE persons ADD COLUMN primary_facility TEXT;
ALTER TABLE persons ADD COLUMN primary_provider TEXT;
