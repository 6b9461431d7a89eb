// The carer (mental-health teacher): my cases, overdue first then by due date; a case's history; log a contact;
// propose closure; the case's referrals and their answers.
import { useEffect, useMemo, useState } from "preact/hooks";
import {
  actionKey,
  type CaseDetail,
  type CaseSummary,
  CLOSE_REASONS,
  type CloseIn,
  type ContactIn,
  itemsOf,
  outreachClient,
  type OutreachClient,
  type VisitMode,
} from "../api/client";
import { label, t } from "../i18n";
import type { User } from "../session";
import { Also, problemText, Status, when } from "./common";

const MODES: VisitMode[] = ["in_home", "phone", "online", "at_school"];

/** Overdue first, then the earliest deadline (first contact due, else the next review), then the oldest. */
export function byDue(cases: CaseSummary[]): CaseSummary[] {
  const due = (c: CaseSummary) => c.contact_due ?? c.next_review_at ?? "9999";
  return [...cases].sort(
    (a, b) => Number(b.overdue) - Number(a.overdue) || due(a).localeCompare(due(b)) || a.opened_at.localeCompare(b.opened_at),
  );
}

export function Carer({ user }: { user: User }) {
  const client = useMemo(() => outreachClient(user.token), [user.token]);
  const [cases, setCases] = useState<CaseSummary[] | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [status, setStatus] = useState("");

  async function load(): Promise<void> {
    const res = await client.GET("/api/v1/cases", { params: { query: { mine: true } } });
    if (res.data !== undefined) setCases(byDue(itemsOf(res.data).filter((c) => c.state !== "closed")));
    else setStatus(problemText(res.error, res.response.status));
  }
  useEffect(() => void load(), [client]);

  if (open) return <CaseView client={client} caseId={open} onBack={() => (setOpen(null), void load())} />;
  return (
    <section aria-labelledby="cases-title">
      <h2 id="cases-title">{t("my_cases")}</h2>
      <Status text={status} />
      {cases && cases.length === 0 && <p>{t("no_cases")}</p>}
      <ul class="outbox">
        {cases?.map((c) => (
          <li key={c.case_id} class="card" data-case={c.case_id} data-overdue={c.overdue}>
            <div class="row">
              <strong>
                {t("student")} {c.student_id}
              </strong>
              {c.overdue && <span class="badge urgent">{t("overdue")}</span>}
              <span class={`badge ${c.risk_level === "urgent" || c.risk_level === "high" ? "urgent" : "assigned"}`}>
                {t("risk")}: {label("sev", c.risk_level)}
              </span>
            </div>
            <p class="muted">
              {c.categories.map((x) => label("cat", x)).join("、")} · {t("due")}: {when(c.contact_due ?? c.next_review_at)}
            </p>
            <button type="button" onClick={() => setOpen(c.case_id)}>
              {t("open_case")}
              <Also text={`${t("student")} ${c.student_id}`} />
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

function CaseView({ client, caseId, onBack }: { client: OutreachClient; caseId: string; onBack: () => void }) {
  const [detail, setDetail] = useState<CaseDetail | null>(null);
  const [status, setStatus] = useState("");
  const now = new Date(Date.now() - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  const [contact, setContact] = useState({ at: now, mode: "phone" as VisitMode, outcome: "", review: "" });
  const [closing, setClosing] = useState<{ reason: CloseIn["reason_code"]; note: string }>({ reason: "resolved", note: "" });

  async function load(): Promise<void> {
    const res = await client.GET("/api/v1/cases/{case_id}", { params: { path: { case_id: caseId } } });
    if (res.data !== undefined) setDetail(res.data);
    else setStatus(problemText(res.error, res.response.status));
  }
  useEffect(() => void load(), [caseId]);

  async function logContact(e: Event): Promise<void> {
    e.preventDefault();
    const body: ContactIn = {
      contacted_at: new Date(contact.at).toISOString(),
      mode: contact.mode,
      outcome: contact.outcome,
      next_review_at: contact.review ? new Date(contact.review).toISOString() : null,
    };
    const res = await client.POST("/api/v1/cases/{case_id}/contacts", {
      params: { path: { case_id: caseId }, header: actionKey() },
      body,
    });
    setStatus(res.error === undefined ? t("done") : problemText(res.error, res.response.status));
    await load();
  }

  async function proposeClosure(e: Event): Promise<void> {
    e.preventDefault();
    const res = await client.POST("/api/v1/cases/{case_id}/closure", {
      params: { path: { case_id: caseId }, header: actionKey() },
      body: { reason_code: closing.reason, note: closing.note || null },
    });
    setStatus(res.error === undefined ? t("done") : problemText(res.error, res.response.status));
    await load();
  }

  return (
    <section aria-labelledby="case-title">
      <div class="row">
        <h2 id="case-title">
          {t("case_")} · {t("student")} {detail?.student_id ?? ""}
        </h2>
        <button type="button" class="secondary" onClick={onBack}>
          {t("back")}
        </button>
      </div>
      <Status text={status} />
      {detail && (
        <>
          <div class="card">
            <p>
              {t("state")}: <strong>{label("st", detail.state)}</strong> · {t("risk")}: {label("sev", detail.risk_level)} ·{" "}
              {t("opened")} {when(detail.opened_at)}
              {detail.overdue && <span class="badge urgent">{t("overdue")}</span>}
            </p>
            {detail.pending_closure && <p class="warning">{t("pending_closure")}</p>}
          </div>
          <div class="card">
            <h3>{t("history")}</h3>
            <ul>
              {detail.findings.map((f) => (
                <li key={f.finding_id}>
                  {t("findings_count")}: {label("cat", f.category)} · {label("sev", f.severity)} · {when(f.recorded_at)}
                </li>
              ))}
              {detail.contacts.map((c) => (
                <li key={c.contact_id}>
                  {when(c.contacted_at)} · {label("mode", c.mode)} · {c.outcome}
                </li>
              ))}
            </ul>
            <h3>{t("referrals")}</h3>
            <ul>
              {detail.referrals.map((r) => (
                <li key={r.referral_id} data-referral-state={r.state}>
                  {label("dept", r.department)} · {label("st", r.state)} · {when(r.updated_at)}
                </li>
              ))}
            </ul>
          </div>
          {detail.state !== "closed" && (
            <>
              <form class="card" onSubmit={(e) => void logContact(e)} aria-labelledby="contact-title">
                <h3 id="contact-title">{t("log_contact")}</h3>
                <label>
                  {t("contacted_at")}
                  <input
                    type="datetime-local"
                    required
                    value={contact.at}
                    onInput={(e) => setContact({ ...contact, at: e.currentTarget.value })}
                  />
                </label>
                <label>
                  {t("mode")}
                  <select value={contact.mode} onChange={(e) => setContact({ ...contact, mode: e.currentTarget.value as VisitMode })}>
                    {MODES.map((m) => (
                      <option key={m} value={m}>
                        {label("mode", m)}
                      </option>
                    ))}
                  </select>
                </label>
                <label>
                  {t("outcome")}
                  <textarea
                    required
                    rows={2}
                    value={contact.outcome}
                    onInput={(e) => setContact({ ...contact, outcome: e.currentTarget.value })}
                  />
                </label>
                <label>
                  {t("next_review")}
                  <input
                    type="datetime-local"
                    value={contact.review}
                    onInput={(e) => setContact({ ...contact, review: e.currentTarget.value })}
                  />
                </label>
                <button type="submit">{t("log_contact")}</button>
              </form>
              {!detail.pending_closure && (
                <form class="card" onSubmit={(e) => void proposeClosure(e)} aria-labelledby="closure-title">
                  <h3 id="closure-title">{t("propose_closure")}</h3>
                  <label>
                    {t("close_reason")}
                    <select
                      value={closing.reason}
                      onChange={(e) => setClosing({ ...closing, reason: e.currentTarget.value as CloseIn["reason_code"] })}
                    >
                      {CLOSE_REASONS.map((r) => (
                        <option key={r} value={r}>
                          {label("close", r)}
                        </option>
                      ))}
                    </select>
                  </label>
                  <label>
                    {t("note")}
                    <input value={closing.note} onInput={(e) => setClosing({ ...closing, note: e.currentTarget.value })} />
                  </label>
                  <button type="submit">{t("propose_closure")}</button>
                </form>
              )}
            </>
          )}
        </>
      )}
    </section>
  );
}
