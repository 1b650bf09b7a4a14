ALTER TABLE audit_log DROP COLUMN origin_region;
