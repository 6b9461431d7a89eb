-- The directory copy a consuming service keeps of committees' directory (shared/directory). One shape for every
-- consumer; `occurred_at` is the source's version of the row (last writer wins). Rows are never deleted: a leaver
-- or a removed team member stays as a tombstone (`active` false), so a late older event cannot bring it back.
-- Written to converge: services whose schemas already held their own copy (visits, outreach before the kit had
-- one) get the missing columns; a fresh schema gets the tables. Every table has `active` (one upsert shape).

CREATE TABLE IF NOT EXISTS org_units (
    org_unit_id text PRIMARY KEY,
    parent_id   text,
    level       text NOT NULL,
    org_path    text NOT NULL,
    name        text NOT NULL DEFAULT '',
    active      boolean NOT NULL DEFAULT true,
    occurred_at timestamptz NOT NULL
);
ALTER TABLE org_units ADD COLUMN IF NOT EXISTS name text NOT NULL DEFAULT '';
ALTER TABLE org_units ADD COLUMN IF NOT EXISTS active boolean NOT NULL DEFAULT true;

CREATE TABLE IF NOT EXISTS staff (
    staff_id      text PRIMARY KEY,
    org_path      text NOT NULL,
    roles         text[] NOT NULL,
    class_ids     text[] NOT NULL DEFAULT '{}',
    head_class_id text,
    active        boolean NOT NULL DEFAULT true,
    occurred_at   timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS students (
    student_id  text PRIMARY KEY,
    class_id    text NOT NULL,
    org_path    text NOT NULL,
    family_id   text NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS students_family ON students (family_id);

CREATE TABLE IF NOT EXISTS families (
    family_id          text PRIMARY KEY,
    student_ids        text[] NOT NULL,
    guardian_ids       text[] NOT NULL DEFAULT '{}',
    parents_work_away  boolean NOT NULL DEFAULT false,
    living_arrangement text NOT NULL DEFAULT '',
    active             boolean NOT NULL DEFAULT true,
    occurred_at        timestamptz NOT NULL
);
ALTER TABLE families ADD COLUMN IF NOT EXISTS active boolean NOT NULL DEFAULT true;
ALTER TABLE families ADD COLUMN IF NOT EXISTS guardian_ids text[] NOT NULL DEFAULT '{}';
ALTER TABLE families ADD COLUMN IF NOT EXISTS parents_work_away boolean NOT NULL DEFAULT false;
ALTER TABLE families ADD COLUMN IF NOT EXISTS living_arrangement text NOT NULL DEFAULT '';

CREATE TABLE IF NOT EXISTS team_members (
    team_id     text NOT NULL,
    member_id   text NOT NULL,
    staff_id    text,
    org_path    text NOT NULL,
    role        text NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (team_id, member_id)
);
ALTER TABLE team_members ADD COLUMN IF NOT EXISTS active boolean NOT NULL DEFAULT true;
