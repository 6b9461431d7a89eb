// A teacher's flow through the gateway with the client generated from visits' OpenAPI document
// (openapi-typescript types + openapi-fetch), compiled with tsc --strict by scripts/clients.sh and run by
// tests/e2e/test_typed_clients.py:
//   GATEWAY_URL=... TEACHER_TOKEN=... CAMPAIGN_ID=... VISITED_ON=YYYY-MM-DD node dist/teacher-flow.js
// Every body it reads is typed: `typed(value, true)` compiles only when the value's type is neither any, unknown
// nor never, and the fields used below must exist with these types, or the compilation fails.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/visits.js";

declare const process: { env: Record<string, string | undefined>; exitCode?: number };

type IsAny<T> = 0 extends 1 & T ? true : false;
type IsUnknown<T> = IsAny<T> extends true ? false : unknown extends T ? true : false;
type IsNever<T> = [T] extends [never] ? true : false;
type Typed<T> = IsAny<T> extends true ? false : IsUnknown<T> extends true ? false : IsNever<T> extends true ? false : true;
function typed<T>(value: T, _proof: Typed<T>): T {
  return value;
}

type Problem = components["schemas"]["Problem"];
type VisitIn = components["schemas"]["VisitIn"];

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function problemSummary(problem: Problem): { status: number; title: string; pointers: string[] } {
  return {
    status: problem.status,
    title: problem.title,
    pointers: (problem.errors ?? []).map((e) => e.pointer),
  };
}

async function main(): Promise<void> {
  const client = createClient<paths>({
    baseUrl: env("GATEWAY_URL"),
    headers: { Authorization: `Bearer ${env("TEACHER_TOKEN")}` },
  });
  const campaignId = env("CAMPAIGN_ID");
  const visitedOn = env("VISITED_ON");

  // 1. My open assignments (a teacher sees only their own); this client takes the first.
  const listed = await client.GET("/api/v1/campaigns/{campaign_id}/assignments", {
    params: { path: { campaign_id: campaignId }, query: { status: "assigned", limit: 100 } },
  });
  if (listed.error !== undefined) throw new Error(`list_assignments: ${typed(listed.error, true).title}`);
  const page = typed(listed.data, true);
  const mine = page.items[0];
  if (mine === undefined) throw new Error("no open assignment");
  const assignmentId: string = mine.assignment_id;
  const teacherId: string = mine.teacher_id;

  // 2. A completed visit needs the checklist answered: 422 problem+json naming the field (a typed error body).
  const incomplete: VisitIn = {
    assignment_id: assignmentId,
    status: "completed",
    visited_on: visitedOn,
    mode: "in_home",
    duration_minutes: 40,
  };
  const refused = await client.POST("/api/v1/visits", {
    body: incomplete,
    params: { header: { "Idempotency-Key": `ts-refused-${assignmentId}` } },
  });
  if (refused.error === undefined) throw new Error("a completed visit without its checklist was accepted");
  const invalid = problemSummary(typed(refused.error, true));

  // 3. Record the visit (the family was not at home) with an Idempotency-Key; the retry gets the same visit.
  const missed: VisitIn = {
    assignment_id: assignmentId,
    status: "missed",
    visited_on: visitedOn,
    miss_reason: "family_unavailable",
  };
  const key = `ts-visit-${assignmentId}`;
  const recorded = await client.POST("/api/v1/visits", { body: missed, params: { header: { "Idempotency-Key": key } } });
  if (recorded.error !== undefined) throw new Error(`record_visit: ${JSON.stringify(recorded.error)}`);
  const visitId: string = typed(recorded.data, true).visit_id;
  const again = await client.POST("/api/v1/visits", { body: missed, params: { header: { "Idempotency-Key": key } } });
  if (again.error !== undefined) throw new Error(`record_visit again: ${JSON.stringify(again.error)}`);
  const replayedId: string = typed(again.data, true).visit_id;

  // 4. Read it back.
  const read = await client.GET("/api/v1/visits/{visit_id}", { params: { path: { visit_id: visitId } } });
  if (read.error !== undefined) throw new Error(`get_visit: ${typed(read.error, true).title}`);
  const visit = typed(read.data, true);

  // 5. A visit that does not exist: 404 problem+json.
  const missing = await client.GET("/api/v1/visits/{visit_id}", { params: { path: { visit_id: "no-such-visit" } } });
  if (missing.error === undefined) throw new Error("a visit that does not exist was found");
  const notFound = problemSummary(typed(missing.error, true));

  console.log(
    JSON.stringify({
      assignment_id: assignmentId,
      teacher_id: teacherId,
      visit_id: visitId,
      replayed_visit_id: replayedId,
      read_back: { visit_id: visit.visit_id, assignment_id: visit.assignment_id, status: visit.status },
      invalid: { ...invalid, http: refused.response.status },
      not_found: { ...notFound, http: missing.response.status },
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
