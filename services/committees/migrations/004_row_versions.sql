-- Optimistic concurrency (shared/versions.py): the resources a client edits or changes the state of carry a
-- version, bumped by the kit's trigger on every update that changes the row (PATCH, import upsert, leave, dissolve).
ALTER TABLE org_units ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE staff ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE students ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE families ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE committees ADD COLUMN version bigint NOT NULL DEFAULT 1;
CREATE TRIGGER org_units_version BEFORE UPDATE ON org_units FOR EACH ROW EXECUTE FUNCTION bump_version();
CREATE TRIGGER staff_version BEFORE UPDATE ON staff FOR EACH ROW EXECUTE FUNCTION bump_version();
CREATE TRIGGER students_version BEFORE UPDATE ON students FOR EACH ROW EXECUTE FUNCTION bump_version();
CREATE TRIGGER families_version BEFORE UPDATE ON families FOR EACH ROW EXECUTE FUNCTION bump_version();
CREATE TRIGGER committees_version BEFORE UPDATE ON committees FOR EACH ROW EXECUTE FUNCTION bump_version();
