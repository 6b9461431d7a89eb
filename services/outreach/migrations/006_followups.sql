-- Follow-ups nobody forgets: a contacted case's next review is watched like its first contact (escalation_due holds
-- whichever deadline is next), and an accepted referral must be resolved by `resolve_by` or it is chased up the tree.
ALTER TABLE referrals ADD COLUMN resolve_by timestamptz;
CREATE INDEX referrals_resolve_due ON referrals (resolve_by) WHERE state = 'accepted';
