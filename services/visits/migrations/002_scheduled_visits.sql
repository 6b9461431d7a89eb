-- Scheduled visits: a planned date and mode; the visit row turns completed or missed when recorded, or
-- cancelled when its assignment is removed.
ALTER TABLE visits DROP CONSTRAINT visits_status_check;
ALTER TABLE visits ADD CONSTRAINT visits_status_check CHECK (status IN ('scheduled', 'completed', 'missed', 'cancelled'));
CREATE UNIQUE INDEX visits_one_scheduled ON visits (assignment_id) WHERE status = 'scheduled';
ALTER TABLE assignments ADD COLUMN planned_on date, ADD COLUMN planned_mode text;
