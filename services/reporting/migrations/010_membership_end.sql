-- A membership counts while it is current: registered (or registered again) after it last ended. Both times are
-- the newest seen of each (events merge in any order); rows from before this column have registered_at NULL and
-- count until an end arrives.
ALTER TABLE memberships ADD COLUMN IF NOT EXISTS registered_at timestamptz;
ALTER TABLE memberships ADD COLUMN IF NOT EXISTS ended_at timestamptz;
