// The school admin's console (district and bureau admins too, over their subtree): a campaign's progress by
// teacher or class, the teachers behind schedule (reporting), reassigning a family to another teacher (If-Match
// with the assignment's version: a 412 is shown as a conflict, never overwritten), parent committees, parent
// schools with each session's attendance, and the case closures awaiting approval. Every list pages through to
// its last page (Page[T] next_cursor).
import { useEffect, useMemo, useState } from "preact/hooks";
import {
  allPages,
  type AssignmentOut,
  type CampaignOut,
  type CommitteeOut,
  type CommitteesClient,
  type CommitteeSummary,
  committeesClient,
  type GuardianCompletionOut,
  ok,
  type ParentSchoolOut,
  type ProgressOut,
  type ReportingClient,
  reportingClient,
  type SessionOut,
  type StaffOut,
  type TeachersBehind,
  type VisitsClient,
  visitsClient,
} from "../api/client";
import { type Key, label, t } from "../i18n";
import { Admin as Closures } from "../outreach/Admin";
import { Also, problemText, Status } from "../outreach/common";
import { errorText, Table } from "./common";
import { Dashboard } from "./Dashboard";
import type { User } from "../session";

type View = "progress" | "behind" | "reassign" | "committees" | "parent_schools" | "closures" | "dashboard";
const VIEWS: View[] = ["progress", "behind", "reassign", "committees", "parent_schools", "closures", "dashboard"];

/** The query of one page: the page size and, after the first page, the cursor. */
function paged<Q extends object>(query: Q, cursor: string | undefined, limit = 200): Q & { limit: number; cursor?: string } {
  return cursor ? { ...query, limit, cursor } : { ...query, limit };
}

export function Console({ user }: { user: User }) {
  const visits = useMemo(() => visitsClient(user.token), [user.token]);
  const committees = useMemo(() => committeesClient(user.token), [user.token]);
  const reporting = useMemo(() => reportingClient(user.token), [user.token]);
  const [view, setView] = useState<View>("progress");
  const [campaigns, setCampaigns] = useState<CampaignOut[] | null>(null);
  const [campaignId, setCampaignId] = useState("");
  const [teachers, setTeachers] = useState<StaffOut[]>([]);
  const [from, setFrom] = useState("");
  const [status, setStatus] = useState("");

  useEffect(() => {
    void (async () => {
      try {
        const all = await allPages((cursor) =>
          visits.GET("/api/v1/campaigns", { params: { query: paged({}, cursor, 100) } }),
        );
        const live = all.filter((c) => c.status !== "draft");
        setCampaigns(live);
        setCampaignId((id) => id || (live[0]?.campaign_id ?? ""));
        // The school's staff (any of them may be given a family: the service checks the campaign's scope).
        const staff = await allPages((cursor) => committees.GET("/api/v1/staff", { params: { query: paged({}, cursor) } }));
        setTeachers(staff.filter((s) => s.active));
      } catch (e) {
        setStatus(errorText(e));
      }
    })();
  }, [visits, committees]);

  const names = useMemo(() => new Map(teachers.map((s) => [s.staff_id, s.name ?? s.staff_id])), [teachers]);
  const needsCampaign = view === "progress" || view === "behind" || view === "reassign";

  return (
    <>
      <nav class="tabs wrap" aria-label={t("console")}>
        {VIEWS.map((v) => (
          <button key={v} type="button" aria-pressed={view === v} onClick={() => setView(v)}>
            {t(`view_${v}` as Key)}
          </button>
        ))}
      </nav>
      <Status text={status} />
      {needsCampaign && (
        <label>
          {t("campaign")}
          <select name="campaign" value={campaignId} onChange={(e) => setCampaignId(e.currentTarget.value)}>
            {campaigns?.map((c) => (
              <option key={c.campaign_id} value={c.campaign_id}>
                {c.name} · {label("cstatus", c.status)} · {c.starts_on} – {c.ends_on}
              </option>
            ))}
          </select>
        </label>
      )}
      {campaigns && campaigns.length === 0 && needsCampaign && <p>{t("no_campaigns")}</p>}
      {view === "progress" && campaignId && (
        <Progress client={visits} committees={committees} campaignId={campaignId} names={names} />
      )}
      {view === "behind" && campaignId && (
        <Behind
          client={reporting}
          campaignId={campaignId}
          names={names}
          onReassign={(teacherId) => {
            setFrom(teacherId);
            setView("reassign");
          }}
        />
      )}
      {view === "reassign" && campaignId && (
        <Reassign client={visits} campaignId={campaignId} teachers={teachers} from={from} onFrom={setFrom} />
      )}
      {view === "committees" && <Committees client={committees} />}
      {view === "parent_schools" && <ParentSchools client={committees} />}
      {view === "closures" && <Closures user={user} />}
      {view === "dashboard" && <Dashboard client={reporting} />}
    </>
  );
}

// ------------------------------------------------------------------ progress by teacher or class

function Progress(props: {
  client: VisitsClient;
  committees: CommitteesClient;
  campaignId: string;
  names: Map<string, string>;
}) {
  const { client, committees, campaignId, names } = props;
  const [by, setBy] = useState<"teacher" | "class">("teacher");
  const [data, setData] = useState<ProgressOut | null>(null);
  const [classes, setClasses] = useState<Map<string, string>>(new Map());
  const [error, setError] = useState("");

  useEffect(() => {
    setData(null);
    setError("");
    void client
      .GET("/api/v1/campaigns/{campaign_id}/progress", { params: { path: { campaign_id: campaignId }, query: { by } } })
      .then((res) => setData(ok(res)))
      .catch((e: unknown) => setError(errorText(e)));
  }, [client, campaignId, by]);

  useEffect(() => {
    if (by !== "class" || classes.size) return;
    void allPages((cursor) =>
      committees.GET("/api/v1/org-units", { params: { query: paged({ level: "class" as const }, cursor, 500) } }),
    )
      .then((units) => {
        const m = new Map<string, string>();
        for (const u of units) {
          m.set(u.org_unit_id, u.name);
          m.set(u.org_path, u.name);
        }
        setClasses(m);
      })
      .catch(() => undefined); // the class's key is shown instead
  }, [committees, by]);

  const caption = t(by === "teacher" ? "progress_by_teacher" : "progress_by_class");
  return (
    <section aria-labelledby="progress-title">
      <h2 id="progress-title">{t("view_progress")}</h2>
      <label>
        {t("group_by")}
        <select name="by" value={by} onChange={(e) => setBy(e.currentTarget.value as "teacher" | "class")}>
          <option value="teacher">{t("by_teacher")}</option>
          <option value="class">{t("by_class")}</option>
        </select>
      </label>
      <Status text={error} />
      {data && (
        <>
          <p class="totals" data-assigned={data.totals.assigned} data-completed={data.totals.completed}>
            {t("totals", {
              completed: data.totals.completed,
              assigned: data.totals.assigned,
              missed: data.totals.missed,
              behind: data.behind,
            })}
          </p>
          <Table caption={caption}>
            <thead>
              <tr>
                <th scope="col">{t(by === "teacher" ? "teacher" : "class")}</th>
                <th scope="col">{t("done_col")}</th>
                <th scope="col">{t("expected_col")}</th>
                <th scope="col">{t("missed_col")}</th>
                <th scope="col">{t("state_col")}</th>
              </tr>
            </thead>
            <tbody>
              {data.units.map((u) => (
                <tr key={u.key} data-unit={u.key} data-behind={u.behind}>
                  <th scope="row">{(by === "teacher" ? names : classes).get(u.key) ?? u.key}</th>
                  <td>
                    {u.completed} / {u.assigned}
                  </td>
                  <td>{u.expected}</td>
                  <td>{u.missed}</td>
                  <td>
                    {u.behind ? (
                      <span class="badge missed">{t("behind_by", { n: u.behind_by })}</span>
                    ) : (
                      <span class="badge completed">{t("on_track")}</span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </Table>
        </>
      )}
    </section>
  );
}

// ------------------------------------------------------------------ teachers behind schedule (reporting)

function Behind(props: {
  client: ReportingClient;
  campaignId: string;
  names: Map<string, string>;
  onReassign: (teacherId: string) => void;
}) {
  const { client, campaignId, names, onReassign } = props;
  const [data, setData] = useState<TeachersBehind | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    setData(null);
    setError("");
    void client
      .GET("/api/v1/reporting/teachers-behind", { params: { query: { campaign_id: campaignId, limit: 1000 } } })
      .then((res) => setData(ok(res)))
      .catch((e: unknown) => setError(errorText(e)));
  }, [client, campaignId]);
  return (
    <section aria-labelledby="behind-title">
      <h2 id="behind-title">{t("view_behind")}</h2>
      <Status text={error} />
      {data && <p>{t("behind_count", { n: data.behind, today: data.today })}</p>}
      <ul class="outbox">
        {data?.teachers.map((x) => (
          <li key={x.teacher_id} class="card" data-teacher={x.teacher_id}>
            <div class="row">
              <strong>{names.get(x.teacher_id) ?? x.teacher_id}</strong>
              <span class="badge missed">{t("behind_by", { n: x.behind_by })}</span>
            </div>
            <p>
              {t("done_col")}: {x.completed} / {x.assigned} · {t("expected_col")}: {x.expected}
            </p>
            <button type="button" class="secondary" onClick={() => onReassign(x.teacher_id)}>
              {t("reassign_families")}
              <Also text={names.get(x.teacher_id) ?? x.teacher_id} />
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

// ------------------------------------------------------------------ reassigning a family (If-Match → 412 conflict)

function Reassign(props: {
  client: VisitsClient;
  campaignId: string;
  teachers: StaffOut[];
  from: string;
  onFrom: (teacherId: string) => void;
}) {
  const { client, campaignId, teachers, from, onFrom } = props;
  const [open, setOpen] = useState<AssignmentOut[] | null>(null);
  const [to, setTo] = useState<Record<string, string>>({});
  const [status, setStatus] = useState("");
  const [conflict, setConflict] = useState<{ assignmentId: string; mine: number; current: number } | null>(null);
  const name = (id: string) => teachers.find((s) => s.staff_id === id)?.name ?? id;

  async function load(): Promise<void> {
    if (!from) return setOpen(null);
    try {
      const all = await allPages((cursor) =>
        client.GET("/api/v1/campaigns/{campaign_id}/assignments", {
          params: { path: { campaign_id: campaignId }, query: paged({ teacher_id: from }, cursor) },
        }),
      );
      setOpen(all.filter((a) => a.status === "assigned"));
    } catch (e) {
      setStatus(errorText(e));
    }
  }
  useEffect(() => void load(), [client, campaignId, from]);

  async function reassign(a: AssignmentOut): Promise<void> {
    const target = to[a.assignment_id];
    if (!target) return;
    setConflict(null);
    const res = await client.PATCH("/api/v1/assignments/{assignment_id}", {
      params: {
        path: { assignment_id: a.assignment_id },
        header: { "If-Match": `"${a.version}"`, "Idempotency-Key": crypto.randomUUID() },
      },
      body: { teacher_id: target },
    });
    await load(); // the list as it is now, whatever the answer
    if (res.data !== undefined) {
      setStatus(t("reassigned", { family: a.family_id, teacher: name(res.data.teacher_id) }));
    } else if (res.response.status === 412) {
      // Someone changed the assignment since this list was read: nothing was changed; show both versions.
      const current = (res.error as { version?: number } | undefined)?.version ?? 0;
      setConflict({ assignmentId: a.assignment_id, mine: a.version, current });
      setStatus("");
    } else {
      setStatus(problemText(res.error, res.response.status));
    }
  }

  const others = teachers.filter((s) => s.staff_id !== from);
  return (
    <section aria-labelledby="reassign-title">
      <h2 id="reassign-title">{t("view_reassign")}</h2>
      <label>
        {t("from_teacher")}
        <select name="from" value={from} onChange={(e) => onFrom(e.currentTarget.value)}>
          <option value="">{t("choose")}</option>
          {teachers.map((s) => (
            <option key={s.staff_id} value={s.staff_id}>
              {s.name ?? s.staff_id}
            </option>
          ))}
        </select>
      </label>
      <Status text={status} />
      {conflict && (
        <div class="warning" role="alert" data-conflict={conflict.assignmentId}>
          <h3>{t("conflict_title")}</h3>
          <p>{t("reassign_conflict", { mine: conflict.mine, current: conflict.current })}</p>
        </div>
      )}
      {open && open.length === 0 && <p>{t("no_open_assignments")}</p>}
      <ul class="assignments">
        {open?.map((a) => (
          <li key={a.assignment_id} data-assignment={a.assignment_id} data-version={a.version}>
            <div>
              <strong>
                {t("family")} {a.family_id}
              </strong>
              <span class="muted">
                {" "}
                · {t("children")}: {a.student_ids.length} · {t("version")} {a.version}
              </span>
              <div>
                <span class={`badge ${a.status}`}>{label("status", a.status)}</span>
              </div>
            </div>
            <div class="reassign">
              <label>
                {t("to_teacher")}
                <Also text={`${t("family")} ${a.family_id}`} />
                <select
                  name={`to-${a.assignment_id}`}
                  value={to[a.assignment_id] ?? ""}
                  onChange={(e) => setTo({ ...to, [a.assignment_id]: e.currentTarget.value })}
                >
                  <option value="">{t("choose")}</option>
                  {others.map((s) => (
                    <option key={s.staff_id} value={s.staff_id}>
                      {s.name ?? s.staff_id}
                    </option>
                  ))}
                </select>
              </label>
              <button type="button" disabled={!to[a.assignment_id]} onClick={() => void reassign(a)}>
                {t("reassign")}
                <Also text={`${t("family")} ${a.family_id}`} />
              </button>
            </div>
          </li>
        ))}
      </ul>
    </section>
  );
}

// ------------------------------------------------------------------ parent committees

function Committees({ client }: { client: CommitteesClient }) {
  const [list, setList] = useState<CommitteeSummary[] | null>(null);
  const [open, setOpen] = useState<CommitteeOut | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    void allPages((cursor) => client.GET("/api/v1/committees", { params: { query: paged({}, cursor) } }))
      .then(setList)
      .catch((e: unknown) => setError(errorText(e)));
  }, [client]);

  async function show(id: string): Promise<void> {
    try {
      setOpen(ok(await client.GET("/api/v1/committees/{committee_id}", { params: { path: { committee_id: id } } })));
    } catch (e) {
      setError(errorText(e));
    }
  }

  return (
    <section aria-labelledby="committees-title">
      <h2 id="committees-title">{t("view_committees")}</h2>
      <Status text={error} />
      {list && <p class="muted" data-count={list.length}>{t("count_of", { n: list.length })}</p>}
      {list && list.length === 0 && <p>{t("none")}</p>}
      <ul class="outbox">
        {list?.map((c) => (
          <li key={c.committee_id} class="card" data-committee={c.committee_id}>
            <div class="row">
              <strong>
                {label("level", c.level)} · {c.org_path}
              </strong>
              <span class={`badge ${c.dissolved_on ? "missed" : "completed"}`}>
                {c.dissolved_on ? `${t("dissolved")} ${c.dissolved_on}` : `${t("formed")} ${c.formed_on}`}
              </span>
            </div>
            <button type="button" class="secondary" onClick={() => void show(c.committee_id)}>
              {t("members")}
              <Also text={c.org_path} />
            </button>
            {open?.committee_id === c.committee_id && (
              <Table caption={t("members")}>
                <thead>
                  <tr>
                    <th scope="col">{t("name")}</th>
                    <th scope="col">{t("member_role")}</th>
                    <th scope="col">{t("term")}</th>
                  </tr>
                </thead>
                <tbody>
                  {open.members.map((m) => (
                    <tr key={m.guardian_id} data-guardian={m.guardian_id}>
                      <th scope="row">{m.name ?? m.guardian_id}</th>
                      <td>{label("mrole", m.role)}</td>
                      <td>
                        {m.term_start} – {m.term_end ?? ""}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </Table>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}

// ------------------------------------------------------------------ parent schools: sessions and attendance

function ParentSchools({ client }: { client: CommitteesClient }) {
  const [list, setList] = useState<ParentSchoolOut[] | null>(null);
  const [chosen, setChosen] = useState<string>("");
  const [sessions, setSessions] = useState<SessionOut[] | null>(null);
  const [completion, setCompletion] = useState<GuardianCompletionOut[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    void allPages((cursor) =>
      client.GET("/api/v1/parent-schools", { params: { query: paged({}, cursor) } }),
    )
      .then(setList)
      .catch((e: unknown) => setError(errorText(e)));
  }, [client]);

  async function show(id: string): Promise<void> {
    setChosen(id);
    setSessions(null);
    setCompletion(null);
    try {
      const detail = ok(
        await client.GET("/api/v1/parent-schools/{parent_school_id}", { params: { path: { parent_school_id: id } } }),
      );
      const each: SessionOut[] = [];
      for (const s of detail.sessions) {
        const path = { parent_school_id: id, session_id: s.session_id };
        each.push(ok(await client.GET("/api/v1/parent-schools/{parent_school_id}/sessions/{session_id}", { params: { path } })));
      }
      setSessions(each);
      setCompletion(
        await allPages((cursor) =>
          client.GET("/api/v1/parent-schools/{parent_school_id}/completion", {
            params: { path: { parent_school_id: id }, query: paged({}, cursor) },
          }),
        ),
      );
    } catch (e) {
      setError(errorText(e));
    }
  }

  return (
    <section aria-labelledby="ps-title">
      <h2 id="ps-title">{t("view_parent_schools")}</h2>
      <Status text={error} />
      {list && list.length === 0 && <p>{t("none")}</p>}
      <ul class="outbox">
        {list?.map((p) => (
          <li key={p.parent_school_id} class="card" data-parent-school={p.parent_school_id}>
            <div class="row">
              <strong>{p.name}</strong>
              <span class="badge assigned">{label("pskind", p.kind)}</span>
            </div>
            <button type="button" class="secondary" onClick={() => void show(p.parent_school_id)}>
              {t("attendance")}
              <Also text={p.name} />
            </button>
            {chosen === p.parent_school_id && sessions && (
              <Table caption={`${p.name} · ${t("attendance")}`}>
                <thead>
                  <tr>
                    <th scope="col">{t("topic")}</th>
                    <th scope="col">{t("held_on")}</th>
                    <th scope="col">{t("enrolled")}</th>
                    <th scope="col">{t("attended")}</th>
                    <th scope="col">{t("rate")}</th>
                  </tr>
                </thead>
                <tbody>
                  {sessions.map((s) => (
                    <tr key={s.session_id} data-session={s.session_id} data-attended={s.attended}>
                      <th scope="row">
                        {s.topic} <span class="muted">({label("smode", s.mode)})</span>
                      </th>
                      <td>{s.held_on}</td>
                      <td>{s.enrolled}</td>
                      <td>{s.attended}</td>
                      <td>{s.attendance_rate === null || s.attendance_rate === undefined ? "—" : `${Math.round(s.attendance_rate * 100)}%`}</td>
                    </tr>
                  ))}
                </tbody>
              </Table>
            )}
            {chosen === p.parent_school_id && completion && (
              <p class="completion" data-guardians={completion.length}>
                {t("completion", {
                  done: completion.filter((g) => g.completed).length,
                  n: completion.length,
                })}
              </p>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
