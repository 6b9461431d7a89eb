-- Closures waiting for a second person's approval: a case's latest proposal against its latest decision
-- (rejection or closing). Pending when proposed after the last decision and the case is not closed.
CREATE TABLE case_closures (
    case_id     text PRIMARY KEY,
    proposed_at timestamptz,
    settled_at  timestamptz
);
