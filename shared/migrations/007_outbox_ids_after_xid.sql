-- The relay walks the outbox from a lower bound it proves with transaction ids (shared/relay.py, `LowerBound`). The
-- proof needs two facts about every id:
--   * it was taken by a transaction that already had its transaction id. PostgreSQL assigns one at the first row a
--     transaction writes, which is after the row's defaults were computed: the first outbox row of a transaction
--     that wrote nothing before would take its id first and its transaction id a moment later, and that id could
--     then be newer than the relay's delete that saw a higher outbox id. `pg_current_xact_id()` assigns it at once;
--     CASE evaluates its condition before its result, so the transaction id always comes first.
--   * ids are handed out in the order they were asked for, across sessions: a sequence cache above 1 would give
--     each session its own range, and a row taken later could get a lower id.
ALTER SEQUENCE outbox_id_seq CACHE 1;
ALTER TABLE outbox ALTER COLUMN id
    SET DEFAULT CASE WHEN pg_current_xact_id() IS NOT NULL THEN nextval('outbox_id_seq'::regclass) END;
