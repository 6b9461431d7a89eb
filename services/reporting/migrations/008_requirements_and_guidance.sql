-- Visits' Ten Requirements facts and guidance topics: the mandatory requirements a visit broke (flagged by visits)
-- and the guidance topics given, counted per org unit. yes_items/no_items now hold the stored requirement facts
-- (derived ones as visits worked them out) when the event carries them.
ALTER TABLE visits ADD COLUMN flag_items text[] NOT NULL DEFAULT '{}',
                   ADD COLUMN guidance_topics text[] NOT NULL DEFAULT '{}';
