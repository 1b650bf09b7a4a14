-- Versions of value domains (code tables) published by the national node and
-- received down the federation; a node validates against the newest version
-- it holds of a domain, and against the embedded table when it holds none.
CREATE TABLE value_domain_versions (
    domain TEXT NOT NULL,
    version TEXT NOT NULL,
    name TEXT NOT NULL,
    entries TEXT NOT NULL,
    published_by TEXT NOT NULL,
    published_at TIMESTAMP NOT NULL,
    hlc TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    PRIMARY KEY (domain, version)
);
CREATE INDEX value_domain_versions_newest ON value_domain_versions (domain, hlc);
