-- Optimistic concurrency (shared/versions.py): an assignment's version moves with every change of its row
-- (reassigned, removed, scheduled, a visit recorded); offline visits name the version they were recorded against.
ALTER TABLE assignments ADD COLUMN version bigint NOT NULL DEFAULT 1;
CREATE TRIGGER assignments_version BEFORE UPDATE ON assignments FOR EACH ROW EXECUTE FUNCTION bump_version();
