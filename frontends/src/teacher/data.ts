// The teacher's own data, downloaded when online and kept in IndexedDB for offline use: their launched campaigns
// (with the checklist), their assignments (ids of the family and children only — no names or addresses leave
// the services for this screen), and the guidance-topic vocabulary.
import type { AssignmentOut, CampaignDetailOut, Label, VisitsClient } from "../api/client";
import { cacheGet, cachePut } from "../queue";

export interface CampaignWork {
  campaign: CampaignDetailOut;
  assignments: AssignmentOut[];
}

export interface TeacherData {
  campaigns: CampaignWork[];
  topics: Label[];
}

const key = (owner: string): string => `teacher:${owner}`;

export async function cached(owner: string): Promise<{ value: TeacherData; at: number } | null> {
  return cacheGet<TeacherData>(key(owner));
}

export async function download(owner: string, client: VisitsClient): Promise<TeacherData> {
  const campaigns: CampaignWork[] = [];
  const listed = await client.GET("/api/v1/campaigns", { params: { query: { limit: 100 } } });
  if (listed.data === undefined) throw new Error(listed.error?.title ?? `HTTP ${listed.response.status}`);
  for (const c of listed.data.items.filter((x) => x.status === "launched")) {
    const detail = await client.GET("/api/v1/campaigns/{campaign_id}", {
      params: { path: { campaign_id: c.campaign_id } },
    });
    if (detail.data === undefined) continue;
    const assignments: AssignmentOut[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.GET("/api/v1/campaigns/{campaign_id}/assignments", {
        params: { path: { campaign_id: c.campaign_id }, query: cursor ? { limit: 1000, cursor } : { limit: 1000 } },
      });
      if (page.data === undefined) throw new Error(page.error?.title ?? `HTTP ${page.response.status}`);
      assignments.push(...page.data.items);
      cursor = page.data.next_cursor ?? undefined;
    } while (cursor);
    campaigns.push({ campaign: detail.data, assignments });
  }
  const topics = await client.GET("/api/v1/guidance-topics");
  const data: TeacherData = { campaigns, topics: topics.data ?? [] };
  await cachePut(key(owner), data);
  return data;
}

/** Done / target for a campaign: completed visits against the campaign's target per teacher. */
export function progress(work: CampaignWork): { done: number; target: number } {
  const done = work.assignments.filter((a) => a.status === "completed").length;
  const live = work.assignments.filter((a) => a.status !== "removed").length;
  return { done, target: Math.min(work.campaign.target_per_teacher, live) || live };
}
