-- Indexes no query uses any more, which every insert still paid for:
-- names are sealed at rest (a random ciphertext per row: searches go through
-- `name_index`, the blind index of name and birth date), and the change log
-- is read by sequence and by change id only (measured: the federation's apply
-- writes a change-log row per change and a person row per third).
DROP INDEX persons_name_birth;
DROP INDEX change_log_entity;
DROP INDEX change_log_person;
