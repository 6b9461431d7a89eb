// Typed clients generated from the services' OpenAPI documents (docs/openapi/*.json → src/api/generated/ by
// openapi-typescript, at build time) with openapi-fetch: every path, parameter and body below is checked by tsc.
import createClient, { type Client } from "openapi-fetch";
import type { components as CommitteesComponents, paths as CommitteesPaths } from "./generated/committees";
import type { components as OutreachComponents, paths as OutreachPaths } from "./generated/outreach";
import type { components as ReportingComponents, paths as ReportingPaths } from "./generated/reporting";
import type { components as VisitsComponents, paths as VisitsPaths } from "./generated/visits";

export type VisitIn = VisitsComponents["schemas"]["VisitIn"];
export type FindingIn = VisitsComponents["schemas"]["FindingIn"];
export type ChecklistAnswerIn = VisitsComponents["schemas"]["ChecklistAnswerIn"];
export type AssignmentOut = VisitsComponents["schemas"]["AssignmentOut"];
export type CampaignDetailOut = VisitsComponents["schemas"]["CampaignDetailOut"];
export type Label = VisitsComponents["schemas"]["Label"];
export type BatchOut = VisitsComponents["schemas"]["BatchOut"];
export type AssignmentState = VisitsComponents["schemas"]["AssignmentState"];
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

/** A client of one service's API on the page's own origin (the gateway), with the bearer token. */
function onGateway<Paths extends {}>(token: string): Client<Paths> {
  return createClient<Paths>({ baseUrl: location.origin, headers: { Authorization: `Bearer ${token}` } });
}

/** Clients on the page's own origin (the gateway), with the bearer token. */
export function visitsClient(token: string): VisitsClient {
  return onGateway<VisitsPaths>(token);
}

// ------------------------------------------------------------------ outreach: cases and referrals

export type CaseSummary = OutreachComponents["schemas"]["CaseSummary"];
export type CaseDetail = OutreachComponents["schemas"]["CaseDetail"];
export type ContactIn = OutreachComponents["schemas"]["ContactIn"];
export type CloseIn = OutreachComponents["schemas"]["CloseIn"];
export type ReferralOut = OutreachComponents["schemas"]["ReferralOut"];
export type ReferralDetail = OutreachComponents["schemas"]["ReferralDetail"];
export type OutreachClient = Client<OutreachPaths>;

export const CLOSE_REASONS: CloseIn["reason_code"][] = [
  "resolved",
  "needs_met_by_department",
  "moved_away",
  "no_longer_at_risk",
  "other",
];

export function outreachClient(token: string): OutreachClient {
  return onGateway<OutreachPaths>(token);
}

/** A list answer's items, whether the route answers a bare list or a cursor page ({items, next_cursor}). */
export function itemsOf<T>(data: T[] | { items: T[] }): T[] {
  return Array.isArray(data) ? data : data.items;
}

/** A fresh Idempotency-Key for one user action (a double click or a retry of it is one action). */
export function actionKey(): { "Idempotency-Key": string } {
  return { "Idempotency-Key": crypto.randomUUID() };
}

// ------------------------------------------------------------------ committees and reporting: the school's console

export type CommitteeSummary = CommitteesComponents["schemas"]["CommitteeSummary"];
export type CommitteeOut = CommitteesComponents["schemas"]["CommitteeOut"];
export type ParentSchoolOut = CommitteesComponents["schemas"]["ParentSchoolOut"];
export type SessionOut = CommitteesComponents["schemas"]["SessionOut"];
export type GuardianCompletionOut = CommitteesComponents["schemas"]["GuardianCompletionOut"];
export type StaffOut = CommitteesComponents["schemas"]["StaffOut"];
export type ProgressOut = VisitsComponents["schemas"]["ProgressOut"];
export type CampaignOut = VisitsComponents["schemas"]["CampaignOut"];
export type TeachersBehind = ReportingComponents["schemas"]["TeachersBehind"];
export type CommitteesClient = Client<CommitteesPaths>;
export type ReportingClient = Client<ReportingPaths>;
export type { ReportingComponents };

export function committeesClient(token: string): CommitteesClient {
  return onGateway<CommitteesPaths>(token);
}

export function reportingClient(token: string): ReportingClient {
  return onGateway<ReportingPaths>(token);
}

/** A failed call: the HTTP status and the problem+json body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: unknown,
  ) {
    super(`HTTP ${status}`);
  }
}

/** The data of an answer, or an ApiError. */
export function ok<T>(res: { data?: T; error?: unknown; response: Response }): T {
  if (res.data === undefined) throw new ApiError(res.response.status, res.error);
  return res.data;
}

/** Every item of a cursor-paged list (Page[T]): follows `next_cursor` to the last page, not only the first. */
export async function allPages<T>(
  page: (cursor: string | undefined) => Promise<{
    data?: { items: T[]; next_cursor?: string | null };
    error?: unknown;
    response: Response;
  }>,
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const data = ok(await page(cursor));
    items.push(...data.items);
    cursor = data.next_cursor ?? undefined;
  } while (cursor);
  return items;
}
