-- Optimistic concurrency (shared/versions.py): a referral's and a group membership's version moves with every
-- change of its row (answered, escalated, chased; verified, moved, ended), whoever made it.
ALTER TABLE referrals ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE group_memberships ADD COLUMN version bigint NOT NULL DEFAULT 1;
CREATE TRIGGER referrals_version BEFORE UPDATE ON referrals FOR EACH ROW EXECUTE FUNCTION bump_version();
CREATE TRIGGER group_memberships_version BEFORE UPDATE ON group_memberships
    FOR EACH ROW EXECUTE FUNCTION bump_version();
