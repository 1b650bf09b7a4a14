-- Audit entries about a person travel to the person's home node, so a
-- resident's access log shows every access across the federation. A
-- received entry keeps its id, time and actor; `origin_region` names the
-- node that recorded it (NULL: recorded here). It is chained and sealed
-- here like any other entry.
ALTER TABLE audit_log ADD COLUMN origin_region TEXT;
