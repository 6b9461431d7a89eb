-- A launch COPYs one assignment per family of its scope (184,000 for the whole city). The foreign key to campaigns
-- ran one referential check per row (a query each): more than half of the COPY's time. Assignments are created
-- only by a launch or by hand, both with their campaign row locked in the same transaction, and campaigns are
-- never deleted, so the check never finds anything; the index on (campaign_id, ...) stays.
ALTER TABLE assignments DROP CONSTRAINT assignments_campaign_id_fkey;
