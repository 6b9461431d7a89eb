#!/usr/bin/env bash
# Create or rotate the departments' SCRAM users and grant each one read access to its own referral topic only.
#   KAFKA_HOME=/opt/kafka deploy/kafka/department-access.sh kafka-0.kafka.hss.svc:9092 admin.properties < passwords
# `passwords` has one line per department: "<department> <password>" (from your secret store; never a command line).
# admin.properties holds the admin client's TLS settings (a super user). Add --revoke to withdraw the ACLs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bootstrap="$1" config="$2"
shift 2
exec java -cp "${KAFKA_HOME:?set KAFKA_HOME to the Kafka installation}/libs/*" "$here/DepartmentAccess.java" \
  --bootstrap-server "$bootstrap" --command-config "$config" \
  --topic-template 'outreach.referral.{department}.events' "$@"
