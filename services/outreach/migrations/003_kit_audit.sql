-- Case and referral reads move to the kit's append-only audit_reads (shared/migrations/002_audit.sql). The old
-- log kept the reader's org path; the subject's comes from the case or referral read.
INSERT INTO audit_reads (at, subject, roles, department, reader_path, org_path, action, resource_type, resource_id,
                         subject_ids, request_id)
SELECT a.at, a.subject, a.roles, a.department, a.org_path,
       coalesce(c.org_path, r.org_path, a.org_path), a.action, a.resource_type, a.resource_id,
       CASE WHEN a.student_id IS NULL THEN '{}'::text[] ELSE ARRAY[a.student_id] END, a.request_id
FROM audit_log a
LEFT JOIN cases c ON a.resource_type = 'case' AND c.case_id = a.resource_id
LEFT JOIN referrals r ON a.resource_type = 'referral' AND r.referral_id = a.resource_id
ORDER BY a.id;
DROP TABLE audit_log;
