-- Overdue as outreach states it on each case event (the contract's one definition), latest event first;
-- reporting no longer derives it from deadlines and its own clock.
ALTER TABLE cases ADD COLUMN overdue boolean, ADD COLUMN overdue_at timestamptz;
