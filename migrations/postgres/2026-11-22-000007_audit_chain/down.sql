DROP TRIGGER audit_log_no_delete ON audit_log;
DROP TRIGGER audit_log_no_update ON audit_log;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
DROP TRIGGER audit_archives_no_truncate ON audit_archives;
DROP TRIGGER audit_archives_no_change ON audit_archives;
DROP TRIGGER audit_seals_no_truncate ON audit_seals;
DROP TRIGGER audit_seals_no_change ON audit_seals;
DROP TRIGGER audit_chain_no_truncate ON audit_chain;
DROP TRIGGER audit_chain_no_delete ON audit_chain;
DROP TRIGGER audit_chain_no_update ON audit_chain;
DROP FUNCTION audit_log_delete_archived_only();
DROP FUNCTION audit_chain_delete_archived_only();
DROP FUNCTION rhip_append_only();
DROP TABLE audit_archives;
DROP TABLE audit_seals;
DROP TABLE audit_chain;
DELETE FROM node_meta WHERE key = 'audit_chain_watermark';
