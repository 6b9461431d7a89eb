-- Online parent schools (issue 17 item 4): a join link per online/mixed session, online attendance as the online
-- platform reports it (minutes connected), and lecturer-group membership that can end.
ALTER TABLE parent_school_sessions ADD COLUMN join_url text;
ALTER TABLE session_attendance ADD COLUMN online boolean NOT NULL DEFAULT false;
ALTER TABLE session_attendance ADD COLUMN online_minutes int;
ALTER TABLE lecturers ADD COLUMN active boolean NOT NULL DEFAULT true;
