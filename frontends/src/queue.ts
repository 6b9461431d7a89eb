// The teacher's outbox: every visit gets a client-made id and is kept in IndexedDB (survives reloads, closing the
// app and restarts) with its own status until visits has stored or refused it.
//
// Sending: visits go in batches to POST /api/v1/visits/batch, urgent and safety-risk findings first, then oldest
// first. A batch is frozen in IndexedDB (its Idempotency-Key, its visits, its exact body) BEFORE it is sent, and
// resent unchanged until an answer arrives — so a lost answer, a crash or a closed tab while sending means the
// same key and body again, and visits answers the first result instead of storing twice. Each visit's result is
// its own (stored with the receipt, rejected with the fields at fault, conflict): one bad visit never blocks the
// rest. Network errors, 429 and 5xx keep the batch and retry with backoff; the `online` event and a periodic timer
// restart it, and one tab at a time sends (Web Locks).
import { type DBSchema, type IDBPDatabase, openDB } from "idb";
import type { AssignmentState, BatchOut, VisitIn, VisitsClient } from "./api/client";

export type Status = "queued" | "sending" | "stored" | "rejected" | "conflict";

export interface Receipt {
  visit_id: string;
  finding_ids: string[];
  assignment_version: number;
}

export interface FieldFault {
  pointer: string;
  detail: string;
}

export interface QueuedVisit {
  id: string; // client-made, uuid
  owner: string; // the signed-in subject who recorded it
  body: VisitIn;
  label: string; // what the teacher sees in the outbox (family id, date)
  createdAt: number;
  updatedAt: number;
  status: Status;
  priority: number; // 2 urgent or safety risk, 1 high, 0 otherwise
  attempts: number;
  receipt?: Receipt;
  errors?: FieldFault[];
  conflict?: AssignmentState; // the assignment as it is now on the server, when it changed since the recording
}

interface Batch {
  owner: string;
  key: string; // the Idempotency-Key
  ids: string[]; // the visits, in the body's order
  body: { visits: VisitIn[] };
  createdAt: number;
}

interface Cached {
  key: string;
  value: unknown;
  at: number;
}

interface Schema extends DBSchema {
  visits: { key: string; value: QueuedVisit; indexes: { by_owner: string } };
  batches: { key: string; value: Batch };
  cache: { key: string; value: Cached };
}

export const BATCH_SIZE = 50;
const DAY_MS = 24 * 3600 * 1000;

let dbPromise: Promise<IDBPDatabase<Schema>> | null = null;

function db(): Promise<IDBPDatabase<Schema>> {
  dbPromise ??= openDB<Schema>("hss-teacher", 1, {
    upgrade(d) {
      d.createObjectStore("visits", { keyPath: "id" }).createIndex("by_owner", "owner");
      d.createObjectStore("batches", { keyPath: "owner" });
      d.createObjectStore("cache", { keyPath: "key" });
    },
  });
  return dbPromise;
}

/** The one priority rule: a finding that is urgent or a safety risk jumps the queue; high comes next. */
export function priorityOf(body: VisitIn): number {
  const findings = body.findings ?? [];
  if (findings.some((f) => f.severity === "urgent" || f.category === "safety_risk")) return 2;
  if (findings.some((f) => f.severity === "high")) return 1;
  return 0;
}

/** The next batch's visits: queued ones, highest priority first, then oldest first (stable by id). */
export function pickBatch(visits: QueuedVisit[], size = BATCH_SIZE): QueuedVisit[] {
  return visits
    .filter((v) => v.status === "queued")
    .sort((a, b) => b.priority - a.priority || a.createdAt - b.createdAt || a.id.localeCompare(b.id))
    .slice(0, size);
}

/** Whether the teacher must be warned: something recorded more than a day ago is still not sent. */
export function unsentTooLong(visits: QueuedVisit[], now = Date.now()): boolean {
  return visits.some((v) => (v.status === "queued" || v.status === "sending") && now - v.createdAt > DAY_MS);
}

export async function enqueue(owner: string, body: VisitIn, label: string): Promise<QueuedVisit> {
  const now = Date.now();
  const visit: QueuedVisit = {
    id: crypto.randomUUID(),
    owner,
    body,
    label,
    createdAt: now,
    updatedAt: now,
    status: "queued",
    priority: priorityOf(body),
    attempts: 0,
  };
  await (await db()).put("visits", visit);
  changed();
  return visit;
}

export async function listVisits(owner: string): Promise<QueuedVisit[]> {
  const all = await (await db()).getAllFromIndex("visits", "by_owner", owner);
  return all.sort((a, b) => b.createdAt - a.createdAt);
}

export async function discard(id: string): Promise<void> {
  const d = await db();
  const visit = await d.get("visits", id);
  if (visit && visit.status !== "sending") await d.delete("visits", id);
  changed();
}

/** A conflict resolved by the teacher: the visit again, recorded against the assignment as it is now. */
export async function recordAgain(id: string): Promise<void> {
  const d = await db();
  const visit = await d.get("visits", id);
  if (!visit || visit.status !== "conflict" || !visit.conflict?.may_record) return;
  const body: VisitIn = { ...visit.body, assignment_version: visit.conflict.version };
  const { conflict: _seen, errors: _none, ...rest } = visit;
  await d.put("visits", { ...rest, body, status: "queued", updatedAt: Date.now() });
  changed();
}

/** The version a new visit of this assignment is recorded against: the newest this device knows — the downloaded
 * assignment's, or a later one from a receipt of a visit this device stored since. */
export function knownVersion(assignmentId: string, downloaded: number, visits: QueuedVisit[]): number {
  return visits
    .filter((v) => v.body.assignment_id === assignmentId && v.receipt)
    .reduce((max, v) => Math.max(max, v.receipt?.assignment_version ?? 0), downloaded);
}

export async function cacheGet<T>(key: string): Promise<{ value: T; at: number } | null> {
  const hit = await (await db()).get("cache", key);
  return hit ? { value: hit.value as T, at: hit.at } : null;
}

export async function cachePut(key: string, value: unknown): Promise<void> {
  await (await db()).put("cache", { key, value, at: Date.now() });
}

// ------------------------------------------------------------------ sending

export type Outcome = "idle" | "retry" | "auth";

/** The owner's frozen batch, or a new one made from the queue (written before anything is sent). */
async function currentBatch(owner: string): Promise<Batch | null> {
  const d = await db();
  const tx = d.transaction(["visits", "batches"], "readwrite");
  const frozen = await tx.objectStore("batches").get(owner);
  if (frozen) {
    await tx.done;
    return frozen;
  }
  const picked = pickBatch(await tx.objectStore("visits").index("by_owner").getAll(owner));
  if (picked.length === 0) {
    await tx.done;
    return null;
  }
  const batch: Batch = {
    owner,
    key: crypto.randomUUID(),
    ids: picked.map((v) => v.id),
    body: { visits: picked.map((v) => v.body) },
    createdAt: Date.now(),
  };
  await tx.objectStore("batches").put(batch);
  for (const v of picked) await tx.objectStore("visits").put({ ...v, status: "sending", updatedAt: Date.now() });
  await tx.done;
  return batch;
}

type ItemResult = BatchOut["results"][number];

/** Each visit of an answered batch gets its own result; the batch is done. */
async function settle(batch: Batch, results: ItemResult[] | null, whole: FieldFault[] | null): Promise<void> {
  const d = await db();
  const tx = d.transaction(["visits", "batches"], "readwrite");
  const store = tx.objectStore("visits");
  for (const [index, id] of batch.ids.entries()) {
    const visit = await store.get(id);
    if (!visit) continue;
    const r = results?.find((x) => x.index === index);
    const next: QueuedVisit = { ...visit, updatedAt: Date.now(), attempts: visit.attempts + 1 };
    if (r?.result === "stored") {
      next.status = "stored";
      next.receipt = { visit_id: r.visit_id, finding_ids: r.finding_ids, assignment_version: r.assignment_version };
      delete next.errors;
      delete next.conflict;
    } else if (r?.result === "conflict") {
      next.status = "conflict";
      next.conflict = r.current;
    } else if (r?.result === "rejected") {
      next.status = "rejected";
      next.errors = r.errors.map((e) => ({ pointer: e.pointer, detail: e.detail }));
    } else {
      next.status = "rejected";
      next.errors = whole ?? [{ pointer: "", detail: "no result for this visit in the answer" }];
    }
    await store.put(next);
  }
  await tx.objectStore("batches").delete(batch.owner);
  await tx.done;
  changed();
}

/** Send batches until the queue is empty or the network/server says stop. */
export async function sendAll(owner: string, client: VisitsClient): Promise<Outcome> {
  for (;;) {
    // Offline, nothing is frozen: visits recorded meanwhile still sort into the first batch by priority.
    if (!navigator.onLine) return "retry";
    const batch = await currentBatch(owner);
    if (batch === null) return "idle";
    changed();
    let answer;
    try {
      answer = await client.POST("/api/v1/visits/batch", {
        body: batch.body,
        params: { header: { "Idempotency-Key": batch.key } },
      });
    } catch {
      return "retry"; // no answer (offline, connection lost, answer lost): the same batch goes again
    }
    const status = answer.response.status;
    if (answer.data !== undefined) {
      await settle(batch, answer.data.results as ItemResult[], null);
      continue;
    }
    if (status === 401) return "auth";
    if (status === 409 || status === 429 || status === 408 || status >= 500) return "retry";
    // The whole batch was refused (403, 413, 422...): every visit gets the reason, none is sent again by itself.
    const problem = answer.error as { detail?: string; title?: string; errors?: FieldFault[] } | undefined;
    const detail = problem?.detail ?? problem?.title ?? `HTTP ${status}`;
    await settle(batch, null, problem?.errors?.length ? problem.errors : [{ pointer: "", detail }]);
  }
}

// ------------------------------------------------------------------ change notifications

const listeners = new Set<() => void>();
const channel = typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel("hss-queue");
channel?.addEventListener("message", () => listeners.forEach((fn) => fn()));

function changed(): void {
  listeners.forEach((fn) => fn());
  channel?.postMessage("changed");
}

export function onChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => void listeners.delete(fn);
}
