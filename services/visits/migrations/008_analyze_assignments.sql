-- A launch writes a whole scope's assignments in one transaction (184,000 rows for the city). Until the table's
-- statistics know them, PostgreSQL plans a page of them as if the campaign held a few rows: it reads and sorts all of
-- them for every page (60 ms a page, the first minute after a city launch, until autovacuum's ANALYZE). The launch
-- refreshes them itself (store/campaigns.py). Only a table's owner may ANALYZE it and the service role owns nothing:
-- this runs it with the owner's rights, on this one table.
CREATE FUNCTION analyze_assignments() RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    ANALYZE assignments;
END $$;
