-- The directory: org tree, staff, families, guardians, students; and bulk imports.

CREATE TABLE org_units (
    org_unit_id  text PRIMARY KEY,
    parent_id    text REFERENCES org_units (org_unit_id),
    level        text NOT NULL,
    org_path     text NOT NULL UNIQUE,
    name         text NOT NULL,
    school_type  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX org_units_path ON org_units (org_path text_pattern_ops);
CREATE INDEX org_units_parent ON org_units (parent_id);

CREATE TABLE staff (
    staff_id      text PRIMARY KEY,
    name          text NOT NULL,
    gender        text,
    phone         text,
    org_unit_id   text NOT NULL,
    org_path      text NOT NULL,
    roles         text[] NOT NULL,
    class_ids     text[] NOT NULL DEFAULT '{}',
    head_class_id text,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX staff_path ON staff (org_path text_pattern_ops);
CREATE INDEX staff_classes ON staff USING gin (class_ids);

-- staff, guardians and students carry no foreign keys: every write joins the referenced rows in the same
-- statement and org units and families are never deleted, while per-row RI checks (which lock the referenced
-- row) would double the cost of a 200,000-student import.
-- family_no / guardian_no / student_no are the bureau's keys (kept here only); the *_id columns are our
-- pseudonymous ids, random, used by every other service and every event.
CREATE TABLE families (
    family_id          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    family_no          text NOT NULL UNIQUE,
    parents_work_away  boolean NOT NULL,
    living_arrangement text NOT NULL,
    address            text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- A hash of the facts last published for each family (registered/changed), so only real changes publish.
CREATE TABLE family_published (
    family_id  text PRIMARY KEY,
    hash       text NOT NULL
);

CREATE TABLE guardians (
    guardian_id  text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    guardian_no  text NOT NULL UNIQUE,
    family_id    text NOT NULL,
    name         text NOT NULL,
    relation     text NOT NULL,
    phone        text,
    is_primary   boolean NOT NULL DEFAULT false,
    works_away   boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX guardians_family ON guardians (family_id);

CREATE TABLE students (
    student_id   text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    student_no   text NOT NULL UNIQUE,
    name         text NOT NULL,
    gender       text,
    birth_date   date,
    national_id  text,
    class_id     text NOT NULL,
    org_path     text NOT NULL,
    family_id    text NOT NULL,
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX students_path ON students (org_path text_pattern_ops);
CREATE INDEX students_family ON students (family_id);
CREATE INDEX students_class ON students (class_id);

CREATE TABLE imports (
    import_id    text PRIMARY KEY,
    format       text NOT NULL,
    status       text NOT NULL,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    counts       jsonb,
    errors       jsonb,
    error_count  int,
    events       int,
    timings      jsonb,
    message      text
);

CREATE TABLE import_files (
    import_id  text NOT NULL REFERENCES imports (import_id) ON DELETE CASCADE,
    entity     text NOT NULL,
    content    text NOT NULL,
    PRIMARY KEY (import_id, entity)
);

-- A CloudEvents envelope built in SQL for set-based writes: the same shape as shared.events.new_envelope.
CREATE FUNCTION make_envelope(event_id uuid, type text, subject text, data jsonb, at text, correlation text,
                              causation text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'specversion', '1.0', 'id', event_id, 'source', '/services/committees', 'type', type, 'time', at,
        'subject', subject, 'datacontenttype', 'application/json', 'dataschema', 'urn:hss:schema:' || type,
        'correlationid', correlation, 'causationid', causation, 'data', data)
$$;
