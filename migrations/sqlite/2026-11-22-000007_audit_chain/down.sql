DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
DROP TRIGGER audit_archives_no_delete;
DROP TRIGGER audit_archives_no_update;
DROP TRIGGER audit_seals_no_delete;
DROP TRIGGER audit_seals_no_update;
DROP TRIGGER audit_chain_no_delete;
DROP TRIGGER audit_chain_no_update;
DROP TABLE audit_archives;
DROP TABLE audit_seals;
DROP TABLE audit_chain;
DELETE FROM node_meta WHERE key = 'audit_chain_watermark';
