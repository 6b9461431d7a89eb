-- Optimistic concurrency (shared/versions.py) on the cooperation records a client changes the state of: a parent
-- school, its sessions (held), an instructor team and its members (removed), a lecturer (leaves). The kit's trigger
-- bumps the version on every update that changes the row, whichever statement made it.
ALTER TABLE parent_schools ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE parent_school_sessions ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE instructor_teams ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE team_members ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE lecturers ADD COLUMN version bigint NOT NULL DEFAULT 1;
CREATE TRIGGER parent_schools_version BEFORE UPDATE ON parent_schools FOR EACH ROW EXECUTE FUNCTION bump_version();
CREATE TRIGGER parent_school_sessions_version BEFORE UPDATE ON parent_school_sessions
    FOR EACH ROW EXECUTE FUNCTION bump_version();
CREATE TRIGGER instructor_teams_version BEFORE UPDATE ON instructor_teams FOR EACH ROW EXECUTE FUNCTION bump_version();
CREATE TRIGGER team_members_version BEFORE UPDATE ON team_members FOR EACH ROW EXECUTE FUNCTION bump_version();
CREATE TRIGGER lecturers_version BEFORE UPDATE ON lecturers FOR EACH ROW EXECUTE FUNCTION bump_version();
