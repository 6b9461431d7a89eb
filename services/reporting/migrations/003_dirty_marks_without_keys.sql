-- Dirty marks are appended, never merged. With a unique key, a handler whose mark already existed inserted
-- nothing (ON CONFLICT DO NOTHING takes no lock), so a refresh that deleted that mark and recomputed before the
-- handler committed lost the handler's change until the leaf was touched again; and handlers marking the same
-- hot school/district row waited on each other and on the refresher. Now every transaction adds its own rows;
-- a refresh deletes only the rows its DELETE can see (committed before it), so a later commit stays marked.
ALTER TABLE dirty_leaves DROP CONSTRAINT dirty_leaves_pkey;
ALTER TABLE dirty_entities DROP CONSTRAINT dirty_entities_pkey;
CREATE INDEX dirty_leaves_path ON dirty_leaves (path);
