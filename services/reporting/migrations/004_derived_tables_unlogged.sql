-- The materialised figures are derived: a full refresh recomputes all of them from the facts. Under a city-wide
-- campaign each refresh rewrites most of them (a million rows and more), which as logged tables also wrote as
-- much WAL. Unlogged, they skip the WAL; after a database crash PostgreSQL empties them, and the refresher then
-- recomputes them in full (see store/refresh.py: figures_lost). Facts, dirty marks and offsets stay logged.
ALTER TABLE leaf_metrics SET UNLOGGED;
ALTER TABLE node_metrics SET UNLOGGED;
ALTER TABLE node_extra SET UNLOGGED;
ALTER TABLE entity_weights SET UNLOGGED;
