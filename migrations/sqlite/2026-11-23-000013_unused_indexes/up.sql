-- Indexes no query uses, which every insert into the change log still paid
-- for: the change log is read by sequence and by change id only (the
-- federation's apply writes a change-log row per change).
DROP INDEX change_log_entity;
DROP INDEX change_log_person;
