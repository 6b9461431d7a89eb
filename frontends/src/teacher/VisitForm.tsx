// Record a visit: outcome, date, mode, duration, participants, the Ten Requirements, findings per child,
// guidance topics. Saved to the device's outbox first; it never needs the network.
import { useState } from "preact/hooks";
import {
  type AssignmentOut,
  CATEGORIES,
  type Category,
  type ChecklistAnswerIn,
  type FindingIn,
  type Label,
  MISS_REASONS,
  type MissReason,
  SEVERITIES,
  type Severity,
  type VisitIn,
  type VisitMode,
} from "../api/client";
import { label, lang, t } from "../i18n";
import type { CampaignWork } from "./data";

type Answer = ChecklistAnswerIn["answer"];
const ANSWERS: Answer[] = ["yes", "no", "not_applicable"];

interface Props {
  work: CampaignWork;
  assignment: AssignmentOut;
  topics: Label[];
  onSave: (body: VisitIn, label: string) => Promise<void>;
  onCancel: () => void;
}

const ids = (text: string): string[] =>
  text
    .split(/[,，\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);

export function VisitForm({ work, assignment, topics, onSave, onCancel }: Props) {
  const today = new Date().toISOString().slice(0, 10);
  const modes = work.campaign.required_modes as VisitMode[];
  const [status, setStatus] = useState<"completed" | "missed">("completed");
  const [visitedOn, setVisitedOn] = useState(today);
  const [mode, setMode] = useState<VisitMode>(modes[0] ?? "in_home");
  const [duration, setDuration] = useState("30");
  const [colleagues, setColleagues] = useState("");
  const [guardians, setGuardians] = useState("");
  const [answers, setAnswers] = useState<Record<string, { answer: Answer; note: string }>>({});
  const [findings, setFindings] = useState<FindingIn[]>([]);
  const [chosen, setChosen] = useState<NonNullable<VisitIn["guidance_topics"]>>([]);
  const [missReason, setMissReason] = useState<MissReason>("family_unavailable");
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const zh = lang() === "zh";

  const setFinding = (i: number, patch: Partial<FindingIn>): void =>
    setFindings(findings.map((f, n) => (n === i ? { ...f, ...patch } : f)));

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    setBusy(true);
    const body: VisitIn =
      status === "completed"
        ? {
            assignment_id: assignment.assignment_id,
            status,
            visited_on: visitedOn,
            mode,
            duration_minutes: Number(duration),
            participants: { teacher_ids: ids(colleagues), guardian_ids: ids(guardians) },
            checklist: work.campaign.checklist.map((item) => {
              const a = answers[item.id] ?? { answer: "yes" as Answer, note: "" };
              return a.note ? { item_id: item.id, answer: a.answer, note: a.note } : { item_id: item.id, answer: a.answer };
            }),
            guidance_topics: chosen,
            findings: findings.map((f) => (f.note ? f : { ...f, note: null })),
            note: note || null,
          }
        : { assignment_id: assignment.assignment_id, status, visited_on: visitedOn, miss_reason: missReason, note: note || null };
    await onSave(body, `${t("family")} ${assignment.family_id} · ${visitedOn}`);
    setBusy(false);
  }

  return (
    <form class="card visit-form" onSubmit={(e) => void submit(e)} aria-labelledby="visit-form-title">
      <h2 id="visit-form-title">
        {t("record_visit")}: {t("family")} {assignment.family_id}
      </h2>
      <fieldset>
        <legend>{t("visit_status")}</legend>
        {(["completed", "missed"] as const).map((s) => (
          <label class="choice" key={s}>
            <input type="radio" name="status" value={s} checked={status === s} onChange={() => setStatus(s)} />
            {t(s)}
          </label>
        ))}
      </fieldset>
      <label>
        {t("visited_on")}
        <input
          type="date"
          name="visited_on"
          required
          value={visitedOn}
          min={work.campaign.starts_on}
          max={work.campaign.ends_on}
          onInput={(e) => setVisitedOn(e.currentTarget.value)}
        />
      </label>
      {status === "missed" ? (
        <label>
          {t("miss_reason")}
          <select name="miss_reason" value={missReason} onChange={(e) => setMissReason(e.currentTarget.value as MissReason)}>
            {MISS_REASONS.map((r) => (
              <option key={r} value={r}>
                {label("miss", r)}
              </option>
            ))}
          </select>
        </label>
      ) : (
        <>
          <label>
            {t("mode")}
            <select name="mode" value={mode} onChange={(e) => setMode(e.currentTarget.value as VisitMode)}>
              {modes.map((m) => (
                <option key={m} value={m}>
                  {label("mode", m)}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t("duration")}
            <input
              type="number"
              name="duration"
              inputMode="numeric"
              min={1}
              max={600}
              required
              value={duration}
              onInput={(e) => setDuration(e.currentTarget.value)}
            />
          </label>
          <fieldset>
            <legend>{t("participants")}</legend>
            <label>
              {t("colleagues")}
              <input name="colleagues" value={colleagues} onInput={(e) => setColleagues(e.currentTarget.value)} />
            </label>
            <label>
              {t("guardians")}
              <input name="guardians" value={guardians} onInput={(e) => setGuardians(e.currentTarget.value)} />
            </label>
          </fieldset>
          <fieldset>
            <legend>{t("checklist")}</legend>
            <ol class="checklist">
              {work.campaign.checklist.map((item) => {
                const a = answers[item.id] ?? { answer: "yes" as Answer, note: "" };
                const set = (patch: Partial<{ answer: Answer; note: string }>) =>
                  setAnswers({ ...answers, [item.id]: { ...a, ...patch } });
                return (
                  <li key={item.id}>
                    <fieldset class="item">
                      <legend>{zh ? item.zh : item.en}</legend>
                      {ANSWERS.map((ans) => (
                        <label class="choice" key={ans}>
                          <input
                            type="radio"
                            name={`check-${item.id}`}
                            value={ans}
                            checked={a.answer === ans}
                            onChange={() => set({ answer: ans })}
                          />
                          {label("answer", ans)}
                        </label>
                      ))}
                      {a.answer === "no" && (
                        <label>
                          {t("note_why")}
                          <input
                            name={`check-note-${item.id}`}
                            required
                            value={a.note}
                            onInput={(e) => set({ note: e.currentTarget.value })}
                          />
                        </label>
                      )}
                    </fieldset>
                  </li>
                );
              })}
            </ol>
          </fieldset>
          <fieldset>
            <legend>{t("findings")}</legend>
            {assignment.student_ids.map((student) => (
              <div class="child" key={student}>
                <p>
                  {t("child")} {student}
                </p>
                {findings.map((f, i) =>
                  f.student_id !== student ? null : (
                    <fieldset class="finding" key={i}>
                      <legend>
                        {t("child")} {student}
                      </legend>
                      <label>
                        {t("category")}
                        <select
                          name={`finding-${i}-category`}
                          value={f.category}
                          onChange={(e) => setFinding(i, { category: e.currentTarget.value as Category })}
                        >
                          {CATEGORIES.map((c) => (
                            <option key={c} value={c}>
                              {label("cat", c)}
                            </option>
                          ))}
                        </select>
                      </label>
                      <label>
                        {t("severity")}
                        <select
                          name={`finding-${i}-severity`}
                          value={f.severity}
                          onChange={(e) => setFinding(i, { severity: e.currentTarget.value as Severity })}
                        >
                          {SEVERITIES.map((s) => (
                            <option key={s} value={s}>
                              {label("sev", s)}
                            </option>
                          ))}
                        </select>
                      </label>
                      <label>
                        {t("note")}
                        <input
                          name={`finding-${i}-note`}
                          value={f.note ?? ""}
                          onInput={(e) => setFinding(i, { note: e.currentTarget.value })}
                        />
                      </label>
                      <button type="button" class="secondary" onClick={() => setFindings(findings.filter((_, n) => n !== i))}>
                        {t("remove_finding")}
                      </button>
                    </fieldset>
                  ),
                )}
                <button
                  type="button"
                  class="secondary"
                  onClick={() =>
                    setFindings([...findings, { student_id: student, category: "left_behind", severity: "low", note: "" }])
                  }
                >
                  {t("add_finding")} {student}
                </button>
              </div>
            ))}
          </fieldset>
          <fieldset>
            <legend>{t("guidance")}</legend>
            {topics.map((topic) => (
              <label class="choice" key={topic.code}>
                <input
                  type="checkbox"
                  name="guidance"
                  value={topic.code}
                  checked={chosen.includes(topic.code)}
                  onChange={(e) =>
                    setChosen(e.currentTarget.checked ? [...chosen, topic.code] : chosen.filter((c) => c !== topic.code))
                  }
                />
                {zh ? topic.zh : topic.en}
              </label>
            ))}
          </fieldset>
        </>
      )}
      <label>
        {t("note")}
        <textarea name="note" rows={3} value={note} onInput={(e) => setNote(e.currentTarget.value)} />
      </label>
      <div class="actions">
        <button type="submit" disabled={busy}>
          {t("save_visit")}
        </button>
        <button type="button" class="secondary" onClick={onCancel}>
          {t("cancel")}
        </button>
      </div>
    </form>
  );
}
