-- Online parent schools and the lecturer group (issue 17 item 4): how a guardian attended (online or in person;
-- null for events before the field), who gave each lecture and how many org units it reached, the group itself.
ALTER TABLE attendance ADD COLUMN online boolean;
ALTER TABLE lectures ADD COLUMN lecturer_id text;
ALTER TABLE lectures ADD COLUMN audience_units int NOT NULL DEFAULT 0;

CREATE TABLE lecturers (
    lecturer_id text PRIMARY KEY,
    org_path    text NOT NULL,
    active      boolean NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX lecturers_path ON lecturers (org_path);
