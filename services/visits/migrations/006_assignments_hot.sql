-- Recording a visit sets its assignment's status (completed, missed). The partial unique index's predicate read
-- `status`, so no such update could be HOT: each wrote a new entry into every index of the table. The index now reads
-- a stored `removed` flag that only withdrawing an assignment changes, and the table's pages keep room for the
-- updated row (fillfactor; COPY at launch fills pages to it), so recording updates the row in its own page.
ALTER TABLE assignments ADD COLUMN removed boolean GENERATED ALWAYS AS (status = 'removed') STORED;
DROP INDEX assignments_one_per_family;
-- A family is visited once per campaign.
CREATE UNIQUE INDEX assignments_one_per_family ON assignments (campaign_id, family_id) WHERE NOT removed;
ALTER TABLE assignments SET (fillfactor = 60);
