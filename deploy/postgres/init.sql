-- Runs once, when the postgres container initialises an empty data volume.
-- One database per service: no service reads another's tables (DESIGN §2).
-- Each service creates its own tables through its migrations at start-up.
CREATE DATABASE committees;
CREATE DATABASE visits;
CREATE DATABASE outreach;
CREATE DATABASE reporting;
