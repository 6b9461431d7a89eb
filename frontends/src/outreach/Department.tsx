// The department partner: the referral inbox of their department — acknowledge, accept, decline, resolve — with
// the minimal child details their role may see (the detail read is audited by outreach).
import { useEffect, useMemo, useState } from "preact/hooks";
import { actionKey, itemsOf, outreachClient, type ReferralDetail, type ReferralOut } from "../api/client";
import { label, t } from "../i18n";
import type { User } from "../session";
import { Also, problemText, Status, when } from "./common";

type Action = "acknowledge" | "accept" | "decline" | "resolve";
const NEXT: Record<string, Action[]> = {
  requested: ["acknowledge"],
  acknowledged: ["accept", "decline"],
  accepted: ["resolve"],
};

export function Department({ user }: { user: User }) {
  const client = useMemo(() => outreachClient(user.token), [user.token]);
  const [inbox, setInbox] = useState<ReferralOut[] | null>(null);
  const [open, setOpen] = useState<ReferralDetail | null>(null);
  const [note, setNote] = useState("");
  const [status, setStatus] = useState("");

  async function load(): Promise<void> {
    const res = await client.GET("/api/v1/referrals", { params: { query: {} } });
    if (res.data === undefined) return setStatus(problemText(res.error, res.response.status));
    const order = (r: ReferralOut) => (NEXT[r.state] ? 0 : 1);
    setInbox(itemsOf(res.data).sort((a, b) => order(a) - order(b) || a.acknowledge_by.localeCompare(b.acknowledge_by)));
  }
  useEffect(() => void load(), [client]);

  async function show(id: string): Promise<void> {
    const res = await client.GET("/api/v1/referrals/{referral_id}", { params: { path: { referral_id: id } } });
    if (res.data !== undefined) setOpen(res.data);
    else setStatus(problemText(res.error, res.response.status));
  }

  async function act(id: string, action: Action): Promise<void> {
    const params = { path: { referral_id: id }, header: actionKey() };
    const body = { note: note || null };
    const res =
      action === "acknowledge"
        ? await client.POST("/api/v1/referrals/{referral_id}/acknowledge", { params })
        : action === "accept"
          ? await client.POST("/api/v1/referrals/{referral_id}/accept", { params, body })
          : action === "decline"
            ? await client.POST("/api/v1/referrals/{referral_id}/decline", { params, body })
            : await client.POST("/api/v1/referrals/{referral_id}/resolve", { params, body });
    setStatus(res.error === undefined ? t("done") : problemText(res.error, res.response.status));
    setNote("");
    await load();
    await show(id);
  }

  return (
    <section aria-labelledby="inbox-title">
      <h2 id="inbox-title">{t("referral_inbox")}</h2>
      <Status text={status} />
      {open && (
        <div class="card" data-referral={open.referral_id} data-state={open.state}>
          <div class="row">
            <h3>
              {label("cat", open.category)} · {t("student")} {open.child.student_id}
            </h3>
            <button type="button" class="secondary" onClick={() => setOpen(null)}>
              {t("back")}
            </button>
          </div>
          <p>
            {t("state")}: <strong>{label("st", open.state)}</strong> · {t("urgency")}: {label("sev", open.urgency)} ·{" "}
            {t("acknowledge_by")} {when(open.acknowledge_by)}
          </p>
          <p class="muted">
            {t("living")}: {open.child.living_arrangement ?? "—"} · {t("groups")}: {(open.child.groups ?? []).join("、") || "—"}
          </p>
          {(NEXT[open.state] ?? []).length > 0 && (
            <>
              <label>
                {t("note")}
                <input value={note} onInput={(e) => setNote(e.currentTarget.value)} />
              </label>
              <div class="actions">
                {(NEXT[open.state] ?? []).map((a) => (
                  <button key={a} type="button" onClick={() => void act(open.referral_id, a)}>
                    {t(a)}
                  </button>
                ))}
              </div>
            </>
          )}
        </div>
      )}
      {inbox && inbox.length === 0 && <p>{t("no_referrals")}</p>}
      <ul class="outbox">
        {inbox?.map((r) => (
          <li key={r.referral_id} class="card" data-referral={r.referral_id} data-state={r.state}>
            <div class="row">
              <strong>{label("cat", r.category)}</strong>
              <span class={`badge ${r.urgency === "urgent" || r.urgency === "high" ? "urgent" : "assigned"}`}>
                {label("sev", r.urgency)}
              </span>
              <span class="badge stored">{label("st", r.state)}</span>
            </div>
            <p class="muted">
              {when(r.requested_at)} · {t("acknowledge_by")} {when(r.acknowledge_by)}
            </p>
            <button type="button" onClick={() => void show(r.referral_id)}>
              {t("open_case")}
              <Also text={r.referral_id} />
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
