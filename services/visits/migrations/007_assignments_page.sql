-- A page of a campaign's assignments is read in (teacher, family) order from its cursor: with the family in the
-- index, the page starts at the cursor and stops after `limit` rows instead of sorting the whole campaign. The
-- index on (campaign_id, teacher_id) is its prefix.
CREATE INDEX assignments_page ON assignments (campaign_id, teacher_id, family_id);
DROP INDEX assignments_teacher;
