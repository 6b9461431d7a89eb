-- Optimistic concurrency (shared/versions.py): a campaign's version moves with every change of its row (launched,
-- closed); `If-Match` on launch and close.
ALTER TABLE campaigns ADD COLUMN version bigint NOT NULL DEFAULT 1;
CREATE TRIGGER campaigns_version BEFORE UPDATE ON campaigns FOR EACH ROW EXECUTE FUNCTION bump_version();
