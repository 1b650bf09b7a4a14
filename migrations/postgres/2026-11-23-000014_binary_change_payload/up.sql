-- Change payloads are sealed as bytes rather than base64 text: the change
-- log is most of what a node writes, and base64 made every payload a third
-- larger. Rows written before keep their text-format value, now stored as
-- its UTF-8 bytes; the store opens both formats, and `rhip keys rotate`
-- rewrites them.
ALTER TABLE change_log ALTER COLUMN payload TYPE BYTEA USING convert_to(payload, 'UTF8');
