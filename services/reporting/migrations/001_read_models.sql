-- Reporting read models. Facts are kept at the finest grain, keyed by their ids and merged with
-- order-independent rules (last writer by occurred_at, LEAST/GREATEST), so duplicates and out-of-order
-- deliveries cannot change a figure. Figures are materialised per org node and rolled up from the leaves.

CREATE FUNCTION path_parts(p text) RETURNS text[] IMMUTABLE LANGUAGE sql AS
$$ SELECT string_to_array(trim(both '/' from p), '/') $$;

CREATE FUNCTION path_depth(p text) RETURNS int IMMUTABLE LANGUAGE sql AS
$$ SELECT coalesce(cardinality(string_to_array(trim(both '/' from p), '/')), 0) $$;

-- The path's parent ('' for the root).
CREATE FUNCTION path_parent(p text) RETURNS text IMMUTABLE LANGUAGE sql AS
$$ SELECT CASE WHEN cardinality(parts) <= 1 THEN '' ELSE '/' || array_to_string(parts[1:cardinality(parts) - 1], '/') END
   FROM (SELECT string_to_array(trim(both '/' from p), '/') AS parts) s $$;

-- Every prefix of the path, the root first and the path itself last.
CREATE FUNCTION path_ancestors(p text) RETURNS text[] IMMUTABLE LANGUAGE sql AS
$$ SELECT coalesce(array_agg('/' || array_to_string(parts[1:i], '/') ORDER BY i), '{}')
   FROM (SELECT string_to_array(trim(both '/' from p), '/') AS parts) s, generate_series(1, cardinality(parts)) i $$;

-- ---------------------------------------------------------------- facts
CREATE TABLE org_units (
    org_unit_id text PRIMARY KEY,
    org_path    text NOT NULL,
    level       text NOT NULL,
    name        text NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX org_units_path ON org_units (org_path);

CREATE TABLE campaigns (
    campaign_id        text PRIMARY KEY,
    name               text,
    org_path           text NOT NULL,
    starts_on          date,
    ends_on            date,
    target_per_teacher int,
    checklist_item_ids text[],
    occurred_at        timestamptz,         -- of the launch
    closed_at          timestamptz
);

CREATE TABLE assignments (
    assignment_id text PRIMARY KEY,
    campaign_id   text NOT NULL,
    teacher_id    text NOT NULL,
    family_id     text NOT NULL,
    org_path      text NOT NULL,
    active        boolean NOT NULL,
    occurred_at   timestamptz NOT NULL,
    rank          int NOT NULL
);
CREATE INDEX assignments_path ON assignments (org_path);
CREATE INDEX assignments_teacher ON assignments (teacher_id);
CREATE INDEX assignments_family ON assignments (family_id);

CREATE TABLE visits (
    visit_id      text PRIMARY KEY,
    campaign_id   text NOT NULL,
    assignment_id text NOT NULL,
    teacher_id    text NOT NULL,
    family_id     text NOT NULL,
    org_path      text NOT NULL,
    status        text NOT NULL,          -- completed | missed
    mode          text,
    visited_on    date,
    yes_items     text[] NOT NULL DEFAULT '{}',
    no_items      text[] NOT NULL DEFAULT '{}',
    occurred_at   timestamptz NOT NULL,
    rank          int NOT NULL
);
CREATE INDEX visits_path ON visits (org_path);
CREATE INDEX visits_teacher ON visits (teacher_id);
CREATE INDEX visits_family ON visits (family_id);

CREATE TABLE findings (
    finding_id  text PRIMARY KEY,
    student_id  text NOT NULL,
    visit_id    text NOT NULL,
    campaign_id text NOT NULL,
    category    text NOT NULL,
    severity    text NOT NULL,
    org_path    text NOT NULL,
    visited_on  date NOT NULL,
    recorded_at timestamptz NOT NULL
);
CREATE INDEX findings_path ON findings (org_path);

CREATE TABLE memberships (
    membership_id text PRIMARY KEY,
    student_id    text NOT NULL,
    grp           text NOT NULL,
    org_path      text NOT NULL,
    path_at       timestamptz NOT NULL,
    verified      boolean,
    verified_at   timestamptz
);
CREATE INDEX memberships_path ON memberships (org_path);

-- A case row can be created by any of its events; the columns each merge on their own rule.
CREATE TABLE cases (
    case_id             text PRIMARY KEY,
    student_id          text NOT NULL,
    org_path            text NOT NULL,
    path_at             timestamptz NOT NULL,
    finding_id          text,
    finding_recorded_at timestamptz,
    opened_at           timestamptz,
    first_contact_due   timestamptz,
    due_at              timestamptz,      -- occurred_at of the event that set first_contact_due
    first_contact_at    timestamptz,
    state               text NOT NULL,    -- open | closed
    state_at            timestamptz NOT NULL,
    closed_at           timestamptz
);
CREATE INDEX cases_path ON cases (org_path);

CREATE TABLE referrals (
    referral_id text PRIMARY KEY,
    case_id     text NOT NULL,
    department  text NOT NULL,
    category    text NOT NULL,
    org_path    text NOT NULL,
    state       text NOT NULL,
    state_rank  int NOT NULL,
    state_at    timestamptz NOT NULL
);
CREATE INDEX referrals_path ON referrals (org_path);
CREATE INDEX referrals_case ON referrals (case_id);

CREATE TABLE committees (
    committee_id text PRIMARY KEY,
    org_unit_id  text NOT NULL,
    org_path     text NOT NULL,
    level        text,
    active       boolean NOT NULL,
    state_at     timestamptz NOT NULL,
    rank         int NOT NULL
);
CREATE INDEX committees_path ON committees (org_path);

CREATE TABLE sessions (
    session_id       text PRIMARY KEY,
    parent_school_id text NOT NULL,
    org_path         text NOT NULL,
    held_on          date NOT NULL,
    enrolled         int NOT NULL,
    occurred_at      timestamptz NOT NULL
);
CREATE INDEX sessions_path ON sessions (org_path);

CREATE TABLE attendance (
    session_id  text NOT NULL,
    guardian_id text NOT NULL,
    org_path    text NOT NULL,
    attended    boolean NOT NULL,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (session_id, guardian_id)
);
CREATE INDEX attendance_path ON attendance (org_path);

CREATE TABLE teams (
    team_id     text PRIMARY KEY,
    org_path    text NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX teams_path ON teams (org_path);

CREATE TABLE team_members (
    team_id     text NOT NULL,
    member_id   text NOT NULL,
    org_path    text NOT NULL,
    role        text,
    active      boolean NOT NULL,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (team_id, member_id)
);
CREATE INDEX team_members_path ON team_members (org_path);

CREATE TABLE lectures (
    lecture_id text PRIMARY KEY,
    org_path   text NOT NULL,
    topic      text NOT NULL,
    headcount  int NOT NULL,
    given_on   date NOT NULL
);
CREATE INDEX lectures_path ON lectures (org_path);

-- ---------------------------------------------------------------- what changed since the last refresh
CREATE TABLE dirty_leaves (path text PRIMARY KEY);
CREATE TABLE dirty_entities (kind text NOT NULL, entity_id text NOT NULL, PRIMARY KEY (kind, entity_id));

-- ---------------------------------------------------------------- materialised figures
-- Additive figures of the facts whose org_path is exactly `leaf`; scope '' = all campaigns.
CREATE TABLE leaf_metrics (
    scope  text NOT NULL,
    leaf   text NOT NULL,
    metric text NOT NULL,
    dim    text NOT NULL,
    value  numeric NOT NULL,
    PRIMARY KEY (leaf, scope, metric, dim)
);

-- Additive figures per node (class → city) = the node's own leaf rows + its children's rows.
CREATE TABLE node_metrics (
    scope  text NOT NULL,
    node   text NOT NULL,
    parent text NOT NULL,
    metric text NOT NULL,
    dim    text NOT NULL,
    value  numeric NOT NULL,
    PRIMARY KEY (node, scope, metric, dim)
);
CREATE INDEX node_metrics_parent ON node_metrics (parent, scope);

-- Distinct entities (teachers, families) made additive: an entity found at the paths P gets weight 1 - k(N) at
-- every node N of the tree spanned by P (k = N's children in that tree), so any subtree sums to 1 exactly when
-- the entity occurs inside it. An entity at one path (the usual case) is a single row of weight 1.
CREATE TABLE entity_weights (
    kind      text NOT NULL,
    entity_id text NOT NULL,
    scope     text NOT NULL,
    metric    text NOT NULL,
    node      text NOT NULL,
    weight    int NOT NULL,
    PRIMARY KEY (kind, entity_id, scope, metric, node)
);
CREATE INDEX entity_weights_node ON entity_weights (node);

-- Non-additive figures per node: percentiles.
CREATE TABLE node_extra (
    scope  text NOT NULL,
    node   text NOT NULL,
    parent text NOT NULL,
    metric text NOT NULL,
    value  numeric,
    PRIMARY KEY (node, scope, metric)
);
CREATE INDEX node_extra_parent ON node_extra (parent, scope);

CREATE TABLE refresh_state (
    id           int PRIMARY KEY DEFAULT 1,
    generation   bigint NOT NULL DEFAULT 0,
    refreshed_at timestamptz
);
INSERT INTO refresh_state (id) VALUES (1);

-- Offsets of a rebuild replay, kept in the rebuilt schema itself.
CREATE TABLE rebuild_offsets (
    topic       text NOT NULL,
    partition   int NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (topic, partition)
);
