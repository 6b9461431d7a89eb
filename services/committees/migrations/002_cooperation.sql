-- The cooperation structure: parent committees, parent schools, instructor teams, lecturers and lectures.

CREATE TABLE committees (
    committee_id  text PRIMARY KEY,
    org_unit_id   text NOT NULL REFERENCES org_units (org_unit_id),
    org_path      text NOT NULL,
    level         text NOT NULL,
    formed_on     date NOT NULL,
    dissolved_on  date,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- One active committee per org unit (the domain checks first; this is the backstop under concurrency).
CREATE UNIQUE INDEX committees_one_active ON committees (org_unit_id) WHERE dissolved_on IS NULL;
CREATE INDEX committees_path ON committees (org_path text_pattern_ops);

CREATE TABLE committee_members (
    committee_id  text NOT NULL REFERENCES committees (committee_id),
    guardian_id   text NOT NULL REFERENCES guardians (guardian_id),
    role          text NOT NULL,
    term_start    date NOT NULL,
    term_end      date,
    active        boolean NOT NULL DEFAULT true,
    joined_at     timestamptz NOT NULL DEFAULT now(),
    left_at       timestamptz,
    PRIMARY KEY (committee_id, guardian_id)
);

CREATE TABLE parent_schools (
    parent_school_id text PRIMARY KEY,
    org_unit_id      text NOT NULL REFERENCES org_units (org_unit_id),
    org_path         text NOT NULL,
    kind             text NOT NULL,
    name             text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parent_schools_path ON parent_schools (org_path text_pattern_ops);

CREATE TABLE parent_school_sessions (
    session_id       text PRIMARY KEY,
    parent_school_id text NOT NULL REFERENCES parent_schools (parent_school_id),
    topic            text NOT NULL,
    held_on          date NOT NULL,
    mode             text NOT NULL,
    speaker          text,
    status           text NOT NULL DEFAULT 'scheduled',
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE session_enrolments (
    session_id   text NOT NULL REFERENCES parent_school_sessions (session_id),
    guardian_id  text NOT NULL REFERENCES guardians (guardian_id),
    PRIMARY KEY (session_id, guardian_id)
);

CREATE TABLE session_attendance (
    session_id   text NOT NULL REFERENCES parent_school_sessions (session_id),
    guardian_id  text NOT NULL REFERENCES guardians (guardian_id),
    attended     boolean NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, guardian_id)
);
CREATE INDEX session_attendance_guardian ON session_attendance (guardian_id);

CREATE TABLE instructor_teams (
    team_id      text PRIMARY KEY,
    org_unit_id  text NOT NULL REFERENCES org_units (org_unit_id),
    org_path     text NOT NULL,
    name         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX instructor_teams_path ON instructor_teams (org_path text_pattern_ops);

CREATE TABLE team_members (
    member_id    text PRIMARY KEY,
    team_id      text NOT NULL REFERENCES instructor_teams (team_id),
    staff_id     text REFERENCES staff (staff_id),
    name         text,
    role         text NOT NULL,
    is_lead      boolean NOT NULL DEFAULT false,
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX team_one_lead ON team_members (team_id) WHERE is_lead AND active;
CREATE UNIQUE INDEX team_staff_once ON team_members (team_id, staff_id) WHERE active AND staff_id IS NOT NULL;

CREATE TABLE lecturers (
    lecturer_id  text PRIMARY KEY,
    org_unit_id  text NOT NULL REFERENCES org_units (org_unit_id),
    org_path     text NOT NULL,
    staff_id     text REFERENCES staff (staff_id),
    name         text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE lectures (
    lecture_id          text PRIMARY KEY,
    lecturer_id         text NOT NULL REFERENCES lecturers (lecturer_id),
    org_path            text NOT NULL,
    topic               text NOT NULL,
    title               text,
    given_on            date NOT NULL,
    audience_org_paths  text[] NOT NULL,
    headcount           int NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lectures_path ON lectures (org_path text_pattern_ops);
