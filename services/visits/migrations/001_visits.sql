-- Visits: its own read copy of the directory, campaigns, assignments, visits and findings.

-- Directory copy: the kit's tables (shared/directory/migrations, applied first); the indexes visits reads by.
CREATE INDEX staff_org_path ON staff (org_path text_pattern_ops);
CREATE INDEX students_org_path ON students (org_path text_pattern_ops);

CREATE TABLE campaigns (
    campaign_id        text PRIMARY KEY,
    name               text NOT NULL,
    org_path           text NOT NULL,
    starts_on          date NOT NULL,
    ends_on            date NOT NULL,
    target_per_teacher int NOT NULL,
    required_modes     text[] NOT NULL,
    checklist_version  text NOT NULL,
    status             text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'launched', 'closed')),
    created_by         text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    launched_at        timestamptz,
    closed_at          timestamptz,
    unassigned_families int NOT NULL DEFAULT 0
);

CREATE TABLE assignments (
    assignment_id text PRIMARY KEY,
    campaign_id   text NOT NULL REFERENCES campaigns,
    teacher_id    text NOT NULL,
    family_id     text NOT NULL,
    student_ids   text[] NOT NULL,
    org_path      text NOT NULL,  -- class of the family's first child in scope
    school_path   text NOT NULL,
    district_path text NOT NULL,
    status        text NOT NULL DEFAULT 'assigned' CHECK (status IN ('assigned', 'completed', 'missed', 'removed')),
    visit_id      text,
    visit_mode    text,
    visited_on    date,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- A family is visited once per campaign.
CREATE UNIQUE INDEX assignments_one_per_family ON assignments (campaign_id, family_id) WHERE status <> 'removed';
CREATE INDEX assignments_teacher ON assignments (campaign_id, teacher_id);
CREATE INDEX assignments_org ON assignments (campaign_id, org_path text_pattern_ops);

CREATE TABLE visits (
    visit_id         text PRIMARY KEY,
    assignment_id    text NOT NULL REFERENCES assignments,
    campaign_id      text NOT NULL,
    teacher_id       text NOT NULL,
    family_id        text NOT NULL,
    org_path         text NOT NULL,
    status           text NOT NULL CHECK (status IN ('completed', 'missed', 'cancelled')),
    mode             text,
    visited_on       date NOT NULL,
    duration_minutes int,
    participants     jsonb NOT NULL,
    checklist        jsonb NOT NULL,
    guidance_topics  jsonb NOT NULL,
    miss_reason      text,
    note             text,
    recorded_by      text NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now()
);
-- At most one completed visit per assignment (a missed one may be followed by a completed one).
CREATE UNIQUE INDEX visits_one_completed ON visits (assignment_id) WHERE status = 'completed';
CREATE INDEX visits_assignment ON visits (assignment_id);

CREATE TABLE findings (
    finding_id  text PRIMARY KEY,
    visit_id    text NOT NULL REFERENCES visits,
    campaign_id text NOT NULL,
    student_id  text NOT NULL,
    category    text NOT NULL,
    severity    text NOT NULL,
    note        text,
    org_path    text NOT NULL,
    recorded_at timestamptz NOT NULL
);
CREATE INDEX findings_visit ON findings (visit_id);
CREATE INDEX findings_student ON findings (student_id);
