DROP TABLE consent_subjects;
DROP TABLE person_consents;
