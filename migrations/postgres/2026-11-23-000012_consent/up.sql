-- Residents' consent (DESIGN §7): the sensitive categories a resident keeps
-- from leaving the home county or from other facilities. Recorded at the
-- home county node and sent to every node as reference data (`consent`
-- changes); the newest by hybrid logical clock wins.
CREATE TABLE person_consents (
    person_id TEXT PRIMARY KEY NOT NULL,
    home_region TEXT NOT NULL,
    rules TEXT NOT NULL,
    hlc TEXT NOT NULL,
    origin_region TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
-- Every id the person is known by across the federation (the home node's
-- EMPI id, the ids other nodes gave the same person and were linked to it,
-- persons merged into it): a node finds the consent of its own person by any.
CREATE TABLE consent_subjects (
    subject_id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL
);
CREATE INDEX consent_subjects_person ON consent_subjects (person_id);
