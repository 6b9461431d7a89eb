-- Duplicate children (issue 17 item 7): a national ID belongs to one student record; a record merged into another
-- keeps its facts (inactive) and names the surviving one; likely duplicates are looked up by birth date and by
-- guardians' phones.
ALTER TABLE students ADD COLUMN merged_into text;
CREATE UNIQUE INDEX students_national_id ON students (national_id) WHERE national_id IS NOT NULL;
CREATE INDEX students_birth_date ON students (birth_date);
CREATE INDEX guardians_phone ON guardians (phone) WHERE phone IS NOT NULL;
-- What an import reports: each student it created and the records likely to be the same child.
ALTER TABLE imports ADD COLUMN duplicate_candidates jsonb;
