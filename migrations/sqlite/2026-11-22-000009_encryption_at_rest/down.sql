-- Removes the blind indexes. Values already sealed stay sealed: only a node
-- holding the data keys can read them, so going down is for a database that
-- will be migrated up again with the same key file.
DELETE FROM node_meta WHERE key = 'encryption_backfill';
DROP INDEX person_contacts_name_index;
ALTER TABLE person_contacts DROP COLUMN name_index;
DROP INDEX persons_name_index;
CREATE INDEX persons_name_birth ON persons (name, birth_date);
DROP INDEX persons_id_number_index;
ALTER TABLE persons DROP COLUMN name_index;
ALTER TABLE persons DROP COLUMN id_number_index;
