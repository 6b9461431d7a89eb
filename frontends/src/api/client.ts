// Typed clients generated from the services' OpenAPI documents (docs/openapi/*.json → src/api/generated/ by
// openapi-typescript, at build time) with openapi-fetch: every path, parameter and body below is checked by tsc.
import createClient, { type Client } from "openapi-fetch";
import type { components as VisitsComponents, paths as VisitsPaths } from "./generated/visits";

export type VisitIn = VisitsComponents["schemas"]["VisitIn"];
export type FindingIn = VisitsComponents["schemas"]["FindingIn"];
export type ChecklistAnswerIn = VisitsComponents["schemas"]["ChecklistAnswerIn"];
export type AssignmentOut = VisitsComponents["schemas"]["AssignmentOut"];
export type CampaignDetailOut = VisitsComponents["schemas"]["CampaignDetailOut"];
export type Label = VisitsComponents["schemas"]["Label"];
export type BatchOut = VisitsComponents["schemas"]["BatchOut"];
export type Problem = VisitsComponents["schemas"]["Problem"];
export type Severity = FindingIn["severity"];
export type Category = FindingIn["category"];
export type VisitMode = NonNullable<VisitIn["mode"]>;
export type MissReason = NonNullable<VisitIn["miss_reason"]>;

export const CATEGORIES: Category[] = [
  "left_behind",
  "orphaned_or_unaccompanied",
  "disability",
  "family_hardship",
  "mental_health",
  "guardianship_gap",
  "family_conflict",
  "safety_risk",
  "health_need",
  "learning_difficulty",
];
export const SEVERITIES: Severity[] = ["low", "medium", "high", "urgent"];
export const MISS_REASONS: MissReason[] = ["family_unavailable", "family_declined", "teacher_unavailable", "other"];

export type VisitsClient = Client<VisitsPaths>;

/** Clients on the page's own origin (the gateway), with the bearer token. */
export function visitsClient(token: string): VisitsClient {
  return createClient<VisitsPaths>({ baseUrl: location.origin, headers: { Authorization: `Bearer ${token}` } });
}
