-- A refresh counts the fact rows naming a moved teacher or family at the keys the change-log rows name only
-- (entity, leaf, campaign: store/refresh.py ENTITY_DELTA_SQL), no longer every row of the entity: the entity
-- indexes lead with the entity and go on with the path and the campaign.
DROP INDEX assignments_teacher;
DROP INDEX assignments_family;
DROP INDEX visits_teacher;
DROP INDEX visits_family;
CREATE INDEX assignments_teacher ON assignments (teacher_id, org_path, campaign_id);
CREATE INDEX assignments_family ON assignments (family_id, org_path, campaign_id);
CREATE INDEX visits_teacher ON visits (teacher_id, org_path, campaign_id);
CREATE INDEX visits_family ON visits (family_id, org_path, campaign_id);
-- The teachers and families whose corrections a refresh redoes are those whose set of paths changed, found in the
-- change logs themselves (a key that left 0 or reached it): the handlers' marks are gone.
DROP TABLE dirty_entities;
-- The percentiles read every case (each refresh includes the city): the overlap filter on the ancestors, and its
-- index, are gone.
DROP INDEX cases_anc;
