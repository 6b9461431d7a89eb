// The teacher's app: my assignments with progress, record a visit (offline), the outbox with each visit's status.
import { useEffect, useMemo, useState } from "preact/hooks";
import { type AssignmentOut, type VisitIn, visitsClient } from "../api/client";
import { label, t } from "../i18n";
import { Carer } from "../outreach/Carer";
import { Also } from "../outreach/common";
import {
  discard,
  enqueue,
  knownVersion,
  listVisits,
  onChange,
  type QueuedVisit,
  recordAgain,
  unsentTooLong,
} from "../queue";
import { ownerOf, type User } from "../session";
import { Syncer } from "../syncer";
import { type CampaignWork, cached, download, progress, type TeacherData } from "./data";
import { VisitForm } from "./VisitForm";

type View = "assignments" | "outbox" | "cases";

export function Teacher({ user, onAuthExpired }: { user: User; onAuthExpired: () => void }) {
  const owner = ownerOf(user);
  const client = useMemo(() => visitsClient(user.token), [user.token]);
  const [data, setData] = useState<TeacherData | null>(null);
  const [dataAt, setDataAt] = useState<number | null>(null);
  const [loadFailed, setLoadFailed] = useState(false);
  const [loading, setLoading] = useState(false);
  const [received, setReceived] = useState<{ n: number; total: number } | null>(null);
  const [outbox, setOutbox] = useState<QueuedVisit[]>([]);
  const [view, setView] = useState<View>("assignments");
  const [editing, setEditing] = useState<{ work: CampaignWork; assignment: AssignmentOut } | null>(null);
  const [notice, setNotice] = useState("");
  const syncer = useMemo(() => new Syncer(owner, client, onAuthExpired), [owner, client]);

  async function refresh(): Promise<void> {
    setLoading(true);
    try {
      const fresh = await download(owner, client, (n, total) => setReceived({ n, total }));
      setData(fresh);
      setDataAt(Date.now());
      setLoadFailed(false);
    } catch {
      setLoadFailed(true);
    } finally {
      setLoading(false);
      setReceived(null);
    }
  }

  useEffect(() => {
    void cached(owner).then((hit) => {
      if (hit) {
        setData((d) => d ?? hit.value);
        setDataAt((a) => a ?? hit.at);
      }
    });
    void refresh();
    const reload = () => void listVisits(owner).then(setOutbox);
    reload();
    const off = onChange(reload);
    syncer.start();
    window.addEventListener("online", refresh);
    return () => {
      off();
      syncer.stop();
      window.removeEventListener("online", refresh);
    };
  }, [owner, syncer]);

  async function save(body: VisitIn, text: string): Promise<void> {
    // Recorded against the assignment as this device knows it: visits answers `conflict` if it changed since.
    const version = knownVersion(body.assignment_id, editing?.assignment.version ?? 0, outbox);
    await enqueue(owner, version > 0 ? { ...body, assignment_version: version } : body, text);
    setEditing(null);
    setNotice(t("saved"));
    setView("outbox");
    void syncer.kick();
  }

  const pendingFor = new Set(
    outbox.filter((v) => v.status === "queued" || v.status === "sending").map((v) => v.body.assignment_id),
  );
  const waiting = outbox.filter((v) => v.status !== "stored").length;

  if (editing && data) {
    return (
      <VisitForm
        work={editing.work}
        assignment={editing.assignment}
        topics={data.topics}
        onSave={save}
        onCancel={() => setEditing(null)}
      />
    );
  }

  return (
    <>
      <nav class="tabs" aria-label={t("nav_assignments")}>
        <button type="button" aria-pressed={view === "assignments"} onClick={() => setView("assignments")}>
          {t("nav_assignments")}
        </button>
        <button type="button" aria-pressed={view === "outbox"} onClick={() => setView("outbox")}>
          {t("nav_outbox")} <span class="count">{waiting}</span>
        </button>
        <button type="button" aria-pressed={view === "cases"} onClick={() => setView("cases")}>
          {t("my_cases")}
        </button>
      </nav>
      <div role="status" aria-live="polite" class="notices">
        {notice && <p class="notice">{notice}</p>}
        {unsentTooLong(outbox) && <p class="warning">{t("unsent_day")}</p>}
        {loadFailed && <p class="warning">{t("load_failed")}</p>}
      </div>
      {view === "assignments" ? (
        <section aria-labelledby="assignments-title">
          <div class="row">
            <h2 id="assignments-title">{t("assignments")}</h2>
            <button type="button" class="secondary" onClick={() => void refresh()} disabled={loading}>
              {loading ? t("refreshing") : t("refresh")}
            </button>
          </div>
          {loading && received && received.total > 0 && (
            <label class="progress download">
              {t("downloading", { n: received.n, total: received.total })}
              <progress max={received.total} value={received.n} />
            </label>
          )}
          {dataAt && (
            <p class="muted">
              {t("cached_at")} {new Date(dataAt).toLocaleString()}
            </p>
          )}
          {data && data.campaigns.length === 0 && <p>{t("no_assignments")}</p>}
          {data?.campaigns.map((work) => {
            const p = progress(work);
            return (
              <article class="card" key={work.campaign.campaign_id} data-campaign={work.campaign.campaign_id}>
                <h3>{work.campaign.name}</h3>
                <label class="progress">
                  {t("progress")}: {t("done_of_target", { done: p.done, target: p.target })}
                  <progress max={p.target || 1} value={p.done} />
                </label>
                <ul class="assignments">
                  {work.assignments
                    .filter((a) => a.status !== "removed")
                    .map((a) => (
                      <li key={a.assignment_id} data-assignment={a.assignment_id}>
                        <div>
                          <strong>
                            {t("family")} {a.family_id}
                          </strong>
                          <span class="muted">
                            {" "}
                            · {t("children")}: {a.student_ids.length}
                          </span>
                          <div>
                            <span class={`badge ${a.status}`}>{label("status", a.status)}</span>
                            {pendingFor.has(a.assignment_id) && <span class="badge queued">{t("pending_upload")}</span>}
                          </div>
                        </div>
                        {a.status !== "completed" && (
                          <button
                            type="button"
                            onClick={() => {
                              setNotice("");
                              setEditing({ work, assignment: a });
                            }}
                          >
                            {t("record_visit")}
                            <Also text={`${t("family")} ${a.family_id}`} />
                          </button>
                        )}
                      </li>
                    ))}
                </ul>
              </article>
            );
          })}
        </section>
      ) : view === "outbox" ? (
        <Outbox visits={outbox} onSend={() => void syncer.kick()} />
      ) : (
        <Carer user={user} />
      )}
    </>
  );
}

function Outbox({ visits, onSend }: { visits: QueuedVisit[]; onSend: () => void }) {
  return (
    <section aria-labelledby="outbox-title">
      <div class="row">
        <h2 id="outbox-title">{t("outbox")}</h2>
        <button type="button" onClick={onSend}>
          {t("send_now")}
        </button>
      </div>
      {visits.length === 0 && <p>{t("outbox_empty")}</p>}
      <ul class="outbox">
        {visits.map((v) => (
          <li key={v.id} class="card" data-visit={v.id} data-status={v.status} data-assignment={v.body.assignment_id}>
            <div class="row">
              <strong>{v.label}</strong>
              <span class={`badge ${v.status}`}>{label("q", v.status)}</span>
            </div>
            {v.priority === 2 && <span class="badge urgent">{t("urgent")}</span>}
            <p class="muted">
              {t("recorded_at")} {new Date(v.createdAt).toLocaleString()}
            </p>
            {v.receipt && (
              <p>
                {t("receipt")}: <code>{v.receipt.visit_id}</code>
              </p>
            )}
            {v.status === "conflict" && v.conflict && <Conflict visit={v} current={v.conflict} onAgain={onSend} />}
            {v.errors && v.errors.length > 0 && (
              <ul class="errors">
                {v.errors.map((e, i) => (
                  <li key={i}>
                    {t("reason")}: <code>{e.pointer || "/"}</code> {e.detail}
                  </li>
                ))}
              </ul>
            )}
            {(v.status === "rejected" || v.status === "stored" || v.status === "conflict") && (
              <button type="button" class="secondary" onClick={() => void discard(v.id)}>
                {t("discard")}
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}

/** A visit recorded against an older version of its assignment: both versions side by side; the teacher records
 * it again against the assignment as it is now (when still theirs), or deletes it. Nothing is overwritten. */
function Conflict({
  visit,
  current,
  onAgain,
}: {
  visit: QueuedVisit;
  current: NonNullable<QueuedVisit["conflict"]>;
  onAgain: () => void;
}) {
  const mine = visit.body;
  return (
    <div class="conflict" role="group" aria-label={t("conflict_title")}>
      <p class="warning">{t("conflict_explain")}</p>
      <div class="versions">
        <div>
          <h4>{t("mine")}</h4>
          <p>
            {label("status", mine.status)} · {mine.visited_on}
            {mine.mode ? ` · ${label("mode", mine.mode)}` : ""} · {t("findings_count")}: {(mine.findings ?? []).length}
          </p>
          <p class="muted">
            {t("version")} {mine.assignment_version ?? "—"}
          </p>
        </div>
        <div>
          <h4>{t("on_server")}</h4>
          <p data-current-status={current.status}>{label("status", current.status)}</p>
          <p class="muted">
            {t("version")} {current.version}
            {current.may_record ? "" : ` · ${t("not_yours")}`}
          </p>
        </div>
      </div>
      {current.may_record && (
        <button type="button" onClick={() => void recordAgain(visit.id).then(onAgain)}>
          {t("record_again")}
        </button>
      )}
    </div>
  );
}
