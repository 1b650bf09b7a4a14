-- Encryption at rest (PostgreSQL). Keep in step with ../../sqlite/.
-- Citizen IDs, names, phones and address lines (persons, person_contacts,
-- households), archived messages and documents, and change payloads are
-- sealed by the store with the node's data keys (AES-256-GCM; values carry
-- their key id). Exact lookup goes through keyed blind indexes added here:
--   persons.id_number_index  HMAC of the citizen ID; UNIQUE, it holds
--                            citizen-ID uniqueness from now on
--   persons.name_index       HMAC of normalised name + birth date (search, linking)
--   person_contacts.name_index  HMAC of the contact's name (its unique key)
-- Rows written before this migration are plaintext: the marker below makes
-- the first start seal them and fill their indexes (`Store::encrypt_plaintext_once`).
ALTER TABLE persons ADD COLUMN id_number_index TEXT;
ALTER TABLE persons ADD COLUMN name_index TEXT;
ALTER TABLE persons DROP CONSTRAINT persons_id_number_key;
CREATE UNIQUE INDEX persons_id_number_index ON persons (id_number_index);
DROP INDEX persons_name_birth;
CREATE INDEX persons_name_index ON persons (name_index);
ALTER TABLE person_contacts ADD COLUMN name_index TEXT;
ALTER TABLE person_contacts DROP CONSTRAINT person_contacts_person_id_name_relationship_key;
CREATE UNIQUE INDEX person_contacts_name_index ON person_contacts (person_id, name_index, relationship);
INSERT INTO node_meta (key, value) VALUES ('encryption_backfill', 'pending');
