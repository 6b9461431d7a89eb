-- The Ten Requirements as stored facts: when the visit took place (if the teacher said), every requirement's answer
-- (derived from the record or declared) and the mandatory requirements it breaks (flagged, not refused).
ALTER TABLE visits ADD COLUMN visited_at timestamptz,
                   ADD COLUMN requirements jsonb NOT NULL DEFAULT '[]'::jsonb,
                   ADD COLUMN flags jsonb NOT NULL DEFAULT '[]'::jsonb;
