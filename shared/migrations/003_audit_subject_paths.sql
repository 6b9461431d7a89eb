-- Where each person in an audited answer sits, so the auditor of any unit a read touched finds it: a district
-- list of students shows in each school auditor's log, with only that school's students named.
-- subject_paths[i] is the org path of subject_ids[i]; subject_units holds every org unit path (and its
-- ancestors) of the read's org_path and of its subjects (GIN-indexed for the auditor's `@> ARRAY[unit]`).
ALTER TABLE audit_reads ADD COLUMN subject_paths text[] NOT NULL DEFAULT '{}';
ALTER TABLE audit_reads ADD COLUMN subject_units text[] NOT NULL DEFAULT '{}';
CREATE INDEX audit_reads_subject_units ON audit_reads USING gin (subject_units);
