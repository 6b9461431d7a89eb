-- Events of set-based writes are wrapped by the kit (shared.outbox.add_bulk) like every other event: the SQL
-- copy of the envelope goes.
DROP FUNCTION make_envelope(uuid, text, text, jsonb, text, text, text);
