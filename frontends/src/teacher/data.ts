// The teacher's own data, downloaded when online (incrementally after the first time) and kept in IndexedDB for
// offline use: their launched campaigns (with the checklist), their assignments (ids of the family and children
// only — no names or addresses leave the services for this screen), and the guidance-topic vocabulary.
import { allPages, type AssignmentOut, type CampaignDetailOut, type Label, ok, type VisitsClient } from "../api/client";
import { cacheGet, cachePut } from "../queue";

export interface CampaignWork {
  campaign: CampaignDetailOut;
  assignments: AssignmentOut[];
  /** the newest `updated_at` among the assignments downloaded: the next download asks for changes after it */
  synced?: string | undefined;
}

export interface TeacherData {
  campaigns: CampaignWork[];
  topics: Label[];
}

const key = (owner: string): string => `teacher:${owner}`;

export async function cached(owner: string): Promise<{ value: TeacherData; at: number } | null> {
  return cacheGet<TeacherData>(key(owner));
}

/** How far a download has got: assignments received out of the teacher's total (for a large first sync). */
export type OnProgress = (received: number, total: number) => void;

// A change committed just before the newest one seen may carry an earlier `updated_at` (a transaction's start
// time): the next download asks again from this long before the newest (a few assignments arrive twice, harmlessly).
const MARGIN_MS = 5 * 60 * 1000;

/**
 * The teacher's own campaigns (`GET /me/assignments`: those where they have families, with their count) and
 * assignments. The first time, every page of each campaign's assignments (only the teacher's: visits scopes it);
 * after that only what changed since the newest change seen (`changed_since`), removed ones dropped. The
 * teacher's count from visits checks the result: a family reassigned to a colleague is not among the changes
 * the teacher can see, so a count that does not match means a full download of that campaign.
 */
export async function download(
  owner: string,
  client: VisitsClient,
  onProgress: OnProgress = () => undefined,
): Promise<TeacherData> {
  const before = (await cached(owner))?.value;
  const me = ok(await client.GET("/api/v1/me/assignments"));
  const total = me.campaigns.reduce((n, c) => n + c.target, 0);
  let received = 0;
  onProgress(0, total);
  const campaigns: CampaignWork[] = [];
  for (const mine of me.campaigns) {
    const id = mine.campaign_id;
    const known = before?.campaigns.find((w) => w.campaign.campaign_id === id);
    const campaign =
      known?.campaign ?? ok(await client.GET("/api/v1/campaigns/{campaign_id}", { params: { path: { campaign_id: id } } }));
    const fetch = (changedSince?: string) =>
      allPages((cursor) => {
        const query = { limit: 500, ...(cursor ? { cursor } : {}), ...(changedSince ? { changed_since: changedSince } : {}) };
        return client.GET("/api/v1/campaigns/{campaign_id}/assignments", { params: { path: { campaign_id: id }, query } }).then(
          (res) => {
            received += res.data?.items.length ?? 0;
            onProgress(Math.min(received, total), total);
            return res;
          },
        );
      });
    let assignments: AssignmentOut[] | null = null;
    if (known?.synced) {
      const since = new Date(Date.parse(known.synced) - MARGIN_MS).toISOString();
      const byId = new Map(known.assignments.map((a) => [a.assignment_id, a]));
      for (const a of await fetch(since)) byId.set(a.assignment_id, a);
      const live = [...byId.values()].filter((a) => a.status !== "removed" && a.teacher_id === me.teacher_id);
      if (live.length === mine.target) assignments = live;
    }
    assignments ??= await fetch();
    const synced = [known?.synced ?? "", ...assignments.map((a) => a.updated_at)].reduce((x, y) =>
      Date.parse(y) > (Date.parse(x) || 0) ? y : x,
    );
    campaigns.push({ campaign, assignments: sortByFamily(assignments), synced: synced || undefined });
  }
  const topics = await client.GET("/api/v1/guidance-topics");
  const data: TeacherData = { campaigns, topics: topics.data?.items ?? [] };
  await cachePut(key(owner), data);
  return data;
}

function sortByFamily(list: AssignmentOut[]): AssignmentOut[] {
  return [...list].sort((a, b) => (a.family_id < b.family_id ? -1 : a.family_id > b.family_id ? 1 : 0));
}

/** Done / target for a campaign: completed visits against the campaign's target per teacher. */
export function progress(work: CampaignWork): { done: number; target: number } {
  const done = work.assignments.filter((a) => a.status === "completed").length;
  const live = work.assignments.filter((a) => a.status !== "removed").length;
  return { done, target: Math.min(work.campaign.target_per_teacher, live) || live };
}
