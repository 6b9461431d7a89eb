-- Optimistic concurrency (shared/versions.py): a case's version moves with every change of its row (a finding
-- joined, a contact, an escalation, a state change, closure), whoever made it.
ALTER TABLE cases ADD COLUMN version bigint NOT NULL DEFAULT 1;
CREATE TRIGGER cases_version BEFORE UPDATE ON cases FOR EACH ROW EXECUTE FUNCTION bump_version();
