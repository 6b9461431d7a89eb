-- After a bulk load the import refreshes a directory table's statistics (store/upserts.py). Only a table's owner
-- may ANALYZE it (PostgreSQL 15 has no MAINTAIN privilege) and the service role owns nothing: for anyone else
-- ANALYZE skips the table with a warning. This runs it with the owner's rights, on the directory's tables only.
CREATE FUNCTION analyze_directory_table(entity text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT AS $$
BEGIN
    IF entity NOT IN ('org_units', 'staff', 'families', 'guardians', 'students') THEN
        RAISE EXCEPTION 'not a directory table: %', entity;
    END IF;
    EXECUTE format('ANALYZE %I', entity);
END $$;
