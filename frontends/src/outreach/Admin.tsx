// The school admin: case closures awaiting approval in the school's subtree — approve or reject each.
import { useEffect, useMemo, useState } from "preact/hooks";
import { actionKey, type CaseDetail, itemsOf, outreachClient } from "../api/client";
import { label, t } from "../i18n";
import type { User } from "../session";
import { Also, problemText, Status, when } from "./common";

export function Admin({ user }: { user: User }) {
  const client = useMemo(() => outreachClient(user.token), [user.token]);
  const [pending, setPending] = useState<CaseDetail[] | null>(null);
  const [status, setStatus] = useState("");

  async function load(): Promise<void> {
    const res = await client.GET("/api/v1/cases", { params: { query: { closure_pending: true } } });
    if (res.data === undefined) return setStatus(problemText(res.error, res.response.status));
    const details: CaseDetail[] = [];
    for (const c of itemsOf(res.data)) {
      const d = await client.GET("/api/v1/cases/{case_id}", { params: { path: { case_id: c.case_id } } });
      if (d.data !== undefined) details.push(d.data);
    }
    setPending(details);
  }
  useEffect(() => void load(), [client]);

  async function decide(caseId: string, verdict: "approve" | "reject"): Promise<void> {
    const path = verdict === "approve" ? "/api/v1/cases/{case_id}/closure/approve" : "/api/v1/cases/{case_id}/closure/reject";
    const res = await client.POST(path, { params: { path: { case_id: caseId }, header: actionKey() }, body: null });
    setStatus(res.error === undefined ? t("done") : problemText(res.error, res.response.status));
    await load();
  }

  return (
    <section aria-labelledby="closures-title">
      <h2 id="closures-title">{t("closures")}</h2>
      <Status text={status} />
      {pending && pending.length === 0 && <p>{t("no_closures")}</p>}
      <ul class="outbox">
        {pending?.map((c) => (
          <li key={c.case_id} class="card" data-case={c.case_id}>
            <div class="row">
              <strong>
                {t("student")} {c.student_id}
              </strong>
              <span class="badge assigned">
                {t("risk")}: {label("sev", c.risk_level)}
              </span>
            </div>
            <p>
              {t("close_reason")}: {label("close", c.pending_closure?.reason_code ?? "")} · {t("proposed_by")}:{" "}
              {c.pending_closure?.proposed_by_role} · {when(c.pending_closure?.proposed_at)}
            </p>
            {c.pending_closure?.note && <p class="muted">{c.pending_closure.note}</p>}
            <div class="actions">
              <button type="button" onClick={() => void decide(c.case_id, "approve")}>
                {t("approve")}
                <Also text={`${t("student")} ${c.student_id}`} />
              </button>
              <button type="button" class="secondary" onClick={() => void decide(c.case_id, "reject")}>
                {t("reject")}
                <Also text={`${t("student")} ${c.student_id}`} />
              </button>
            </div>
          </li>
        ))}
      </ul>
    </section>
  );
}
