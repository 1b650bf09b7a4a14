-- Keys of the nodes whose tokens this node accepts: its own (current and
-- before a rotation) and its ancestors', which travel down the tree as
-- reference data (`issuer_key` changes). A token signed by an ancestor is
-- accepted within the ancestor's jurisdiction; revocations travel too (as
-- `token_revocation` changes into revoked_tokens).
CREATE TABLE issuer_keys (
    key_id TEXT PRIMARY KEY NOT NULL,
    region TEXT NOT NULL,
    public_key TEXT NOT NULL,
    received_from TEXT,
    recorded_at TIMESTAMP NOT NULL
);
CREATE INDEX issuer_keys_region ON issuer_keys (region);
