-- Closing a case takes two people: a carer (or administrator) proposes, another administrator approves or
-- rejects. At most one proposal per case waits for a decision.
CREATE TABLE case_closure_proposals (
    proposal_id          text PRIMARY KEY,
    case_id              text NOT NULL REFERENCES cases,
    reason_code          text NOT NULL,
    note                 text,
    proposed_by          text NOT NULL,
    proposed_by_staff_id text,
    proposed_by_role     text NOT NULL,
    proposed_at          timestamptz NOT NULL,
    decision             text CHECK (decision IN ('approved', 'rejected')),
    decided_by           text,
    decided_by_role      text,
    decided_at           timestamptz,
    decision_note        text
);
CREATE UNIQUE INDEX case_closure_one_pending ON case_closure_proposals (case_id) WHERE decision IS NULL;
CREATE INDEX case_closure_case ON case_closure_proposals (case_id, proposed_at);
