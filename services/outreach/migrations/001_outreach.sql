-- Outreach: directory copy, special-group register, care cases, referrals and the audit log.
-- No names, ID numbers, addresses or phone numbers are ever stored here: students are pseudonymous ids.

-- Directory copy: the kit's tables (shared/directory/migrations, applied first); the indexes outreach reads by.
CREATE INDEX staff_head_class ON staff (head_class_id) WHERE active AND head_class_id IS NOT NULL;
CREATE INDEX staff_org ON staff (org_path) WHERE active;
CREATE INDEX team_members_org ON team_members (org_path) WHERE staff_id IS NOT NULL;

-- Special-group register: one membership per student and group.
CREATE TABLE group_memberships (
    membership_id text PRIMARY KEY,
    student_id    text NOT NULL,
    grp           text NOT NULL,
    source        text NOT NULL,
    org_path      text NOT NULL,
    verified      boolean,
    verified_at   timestamptz,
    verified_by   text,
    registered_at timestamptz NOT NULL,
    ended_at      timestamptz,
    UNIQUE (student_id, grp)
);
CREATE INDEX group_memberships_org ON group_memberships (org_path text_pattern_ops);

-- Care cases. At most one open case per child, enforced by the database whatever the delivery order.
CREATE TABLE cases (
    case_id             text PRIMARY KEY,
    student_id          text NOT NULL,
    org_path            text NOT NULL,
    state               text NOT NULL,
    risk_level          text NOT NULL,
    max_severity        text NOT NULL,
    categories          text[] NOT NULL,
    opened_at           timestamptz NOT NULL,
    reopened_at         timestamptz,
    finding_recorded_at timestamptz NOT NULL,
    contact_due         timestamptz,
    first_contacted_at  timestamptz,
    last_contacted_at   timestamptz,
    next_review_at      timestamptz,
    escalation_level    int NOT NULL DEFAULT 0,
    escalation_due      timestamptz,
    escalated_to        text,
    escalated_at        timestamptz,
    overdue             boolean NOT NULL DEFAULT false,
    closed_at           timestamptz,
    close_reason        text,
    close_note          text,
    closed_by           text,
    closed_by_role      text,
    committed_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX cases_one_open_per_student ON cases (student_id) WHERE state <> 'closed';
CREATE INDEX cases_student ON cases (student_id, opened_at DESC);
CREATE INDEX cases_org ON cases (org_path text_pattern_ops);
CREATE INDEX cases_escalation_due ON cases (escalation_due) WHERE state <> 'closed' AND escalation_due IS NOT NULL;

-- Every finding applied to a case, once (the finding id makes replays and fresh consumer groups harmless).
CREATE TABLE case_findings (
    finding_id  text PRIMARY KEY,
    case_id     text NOT NULL REFERENCES cases,
    student_id  text NOT NULL,
    visit_id    text NOT NULL,
    teacher_id  text NOT NULL,
    category    text NOT NULL,
    severity    text NOT NULL,
    recorded_at timestamptz NOT NULL,
    effect      text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX case_findings_case ON case_findings (case_id);

CREATE TABLE case_carers (
    case_id     text NOT NULL REFERENCES cases,
    staff_id    text NOT NULL,
    role        text NOT NULL,
    org_path    text NOT NULL,
    assigned_at timestamptz NOT NULL,
    PRIMARY KEY (case_id, staff_id, role)
);
CREATE INDEX case_carers_staff ON case_carers (staff_id);

CREATE TABLE case_contacts (
    contact_id     text PRIMARY KEY,
    case_id        text NOT NULL REFERENCES cases,
    contacted_at   timestamptz NOT NULL,
    mode           text NOT NULL,
    staff_id       text,
    logged_by      text NOT NULL,
    outcome        text NOT NULL,
    next_review_at timestamptz,
    logged_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_contacts_case ON case_contacts (case_id);

CREATE TABLE case_escalations (
    case_id      text NOT NULL REFERENCES cases,
    level        int NOT NULL,
    escalated_to text NOT NULL,
    reason       text NOT NULL,
    due_at       timestamptz NOT NULL,
    escalated_at timestamptz NOT NULL,
    PRIMARY KEY (case_id, level, due_at)
);

-- Referrals to departments: one open referral per case, department and category.
CREATE TABLE referrals (
    referral_id      text PRIMARY KEY,
    case_id          text NOT NULL REFERENCES cases,
    student_id       text NOT NULL,
    department       text NOT NULL,
    category         text NOT NULL,
    urgency          text NOT NULL,
    org_path         text NOT NULL,
    class_path       text NOT NULL,
    state            text NOT NULL,
    requested_at     timestamptz NOT NULL,
    acknowledge_by   timestamptz NOT NULL,
    escalation_level int NOT NULL DEFAULT 0,
    escalated_to     text,
    updated_at       timestamptz NOT NULL,
    notes            jsonb NOT NULL DEFAULT '[]'::jsonb
);
CREATE UNIQUE INDEX referrals_one_open ON referrals (case_id, department, category)
    WHERE state IN ('requested', 'acknowledged', 'accepted');
CREATE INDEX referrals_department ON referrals (department, requested_at DESC);
CREATE INDEX referrals_org ON referrals (org_path text_pattern_ops);
CREATE INDEX referrals_ack_due ON referrals (acknowledge_by) WHERE state = 'requested';

-- Who read which case or referral detail, when, in which role.
CREATE TABLE audit_log (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    subject       text NOT NULL,
    roles         text[] NOT NULL,
    department    text,
    org_path      text NOT NULL,
    action        text NOT NULL,
    resource_type text NOT NULL,
    resource_id   text NOT NULL,
    student_id    text,
    request_id    text
);
CREATE INDEX audit_log_resource ON audit_log (resource_type, resource_id);
CREATE INDEX audit_log_subject ON audit_log (subject, at);
CREATE INDEX audit_log_at ON audit_log (at);
