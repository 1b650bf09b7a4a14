ALTER TABLE persons DROP COLUMN primary_provider;
ALTER TABLE persons DROP COLUMN primary_facility;
ALTER TABLE encounters DROP COLUMN admit_reason;
DROP TABLE person_coverages;
DROP TABLE person_contacts;
DROP TABLE allergies;
