DROP TABLE revoked_tokens;
DROP TABLE refresh_tokens;
DROP TABLE login_attempts;
DROP TABLE enrolment_codes;
DROP INDEX users_one_resident_account;
ALTER TABLE users DROP COLUMN last_login_at;
