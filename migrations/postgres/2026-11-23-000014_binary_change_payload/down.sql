-- Back to a text column, each value in the text format an older build
-- reads: a payload sealed in the binary format (`RHIPENC1`, key-id length,
-- key id, sealed bytes) is the same ciphertext as `enc1:<key id>:<base64>`,
-- so it is re-encoded, not decrypted (PostgreSQL's base64 breaks lines,
-- which the text format does not).
ALTER TABLE change_log ALTER COLUMN payload TYPE TEXT USING
    CASE WHEN substring(payload FROM 1 FOR 8) = 'RHIPENC1'::bytea THEN
        'enc1:'
        || convert_from(substring(payload FROM 10 FOR get_byte(payload, 8)), 'UTF8')
        || ':'
        || translate(encode(substring(payload FROM 10 + get_byte(payload, 8)), 'base64'), E'\n', '')
    ELSE convert_from(payload, 'UTF8') END;
