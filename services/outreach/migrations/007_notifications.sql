-- Notifications for carers and teachers (services/outreach/usecases/notifications.py).

-- The in-app inbox: one row per fact, recipient and kind. `source_id` is the id of the event (or the scheduler's
-- deadline) that caused it, so a redelivered event, a fresh consumer group or a second sweep adds nothing.
CREATE TABLE notifications (
    notification_id text PRIMARY KEY,
    recipient_id    text NOT NULL,
    kind            text NOT NULL,
    source_id       text NOT NULL,
    case_id         text NOT NULL,
    referral_id     text,
    link            text NOT NULL,
    created_at      timestamptz NOT NULL,
    read_at         timestamptz,
    UNIQUE (source_id, recipient_id, kind)
);
CREATE INDEX notifications_inbox ON notifications (recipient_id, created_at DESC, notification_id DESC);

-- Addresses staff gave for the email channel (their own, set through the API; the directory holds none).
CREATE TABLE notification_emails (
    staff_id   text PRIMARY KEY,
    email      text NOT NULL,
    updated_at timestamptz NOT NULL
);

-- The email channel's deliveries: one per notification (what makes a redelivered notification event send no
-- second mail); pending ones are sent by the background sender, failures retried at `next_attempt_at`.
CREATE TABLE email_deliveries (
    notification_id text PRIMARY KEY,
    recipient_id    text NOT NULL,
    kind            text NOT NULL,
    link            text NOT NULL,
    state           text NOT NULL DEFAULT 'pending',
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    sent_at         timestamptz
);
CREATE INDEX email_deliveries_due ON email_deliveries (next_attempt_at) WHERE state = 'pending';
