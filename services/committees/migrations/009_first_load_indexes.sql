-- A first load of guardians or students (the table empty, a city's worth of rows) builds the table's secondary
-- indexes (those that back no constraint) once the rows are in, instead of inserting every row into each of them:
-- measured, a row's insertion into a b-tree costs several times its share of a sort-built index, and the build can
-- use parallel workers. Both run inside the import's transaction (the drop is undone if it rolls back); the table is
-- held ACCESS EXCLUSIVE from the drop until the import commits, which on an empty table hides nothing from readers
-- but makes them wait. Only the owner may drop or create an index: these run with its rights, on these two tables
-- only, and rebuild exactly the definitions they dropped (kept in a temporary table of the owner's, which the
-- service role can neither read nor write).
-- The definitions' table must be the owner's own (not one the caller made first under that name).
CREATE FUNCTION deferred_indexes_owned() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
        FROM pg_class c WHERE c.oid = 'pg_temp.deferred_directory_indexes'::regclass) THEN
        RAISE EXCEPTION 'deferred_directory_indexes is not the directory owner''s table';
    END IF;
END $$;

CREATE FUNCTION defer_directory_indexes(entity text) RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT AS $$
DECLARE
    r record;
    loaded boolean;
    n integer := 0;
BEGIN
    IF entity NOT IN ('guardians', 'students') THEN
        RAISE EXCEPTION 'not a directory table whose indexes may be deferred: %', entity;
    END IF;
    EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', entity);
    EXECUTE format('SELECT EXISTS (SELECT FROM %I)', entity) INTO loaded;
    IF loaded THEN
        RETURN 0;  -- not a first load
    END IF;
    IF to_regclass('pg_temp.deferred_directory_indexes') IS NULL THEN
        CREATE TEMP TABLE deferred_directory_indexes (entity text NOT NULL, definition text NOT NULL) ON COMMIT DROP;
    END IF;
    PERFORM deferred_indexes_owned();
    FOR r IN
        SELECT x.indexrelid::regclass::text AS name, pg_get_indexdef(x.indexrelid) AS definition
        FROM pg_index x
        WHERE x.indrelid = entity::regclass AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        ORDER BY 1
    LOOP
        INSERT INTO deferred_directory_indexes VALUES (entity, r.definition);
        EXECUTE 'DROP INDEX ' || r.name;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

CREATE FUNCTION restore_directory_indexes(entity text) RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT AS $$
DECLARE
    d text;
    n integer := 0;
BEGIN
    IF to_regclass('pg_temp.deferred_directory_indexes') IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM deferred_indexes_owned();
    FOR d IN DELETE FROM pg_temp.deferred_directory_indexes t WHERE t.entity = restore_directory_indexes.entity
             RETURNING t.definition
    LOOP
        EXECUTE d;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;
