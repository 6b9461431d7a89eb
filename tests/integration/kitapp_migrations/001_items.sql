CREATE TABLE items (
    item_id  text PRIMARY KEY,
    org_path text NOT NULL,
    seq      int NOT NULL
);
-- What the consumer applied: one row per event, so a double apply is visible as a duplicate key error
-- (or, with the inbox working, never happens).
CREATE TABLE applied (
    event_id uuid PRIMARY KEY,
    item_id  text NOT NULL,
    seq      int NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE applied_counts (
    item_id text PRIMARY KEY,
    n       int NOT NULL
);
