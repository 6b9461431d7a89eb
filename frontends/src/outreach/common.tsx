// Small pieces shared by the outreach screens: dates, a problem's message, a status line.
import { lang, t } from "../i18n";

export function when(value: string | null | undefined): string {
  return value ? new Date(value).toLocaleString(lang() === "zh" ? "zh-CN" : "en") : "—";
}

/** What went wrong, from a problem+json answer (its detail and the fields at fault). */
export function problemText(error: unknown, status: number): string {
  const p = error as { title?: string; detail?: string; errors?: { pointer: string; detail: string }[] } | undefined;
  const fields = (p?.errors ?? []).map((e) => `${e.pointer} ${e.detail}`).join("; ");
  return `${t("failed")} (${status}): ${p?.detail ?? p?.title ?? ""}${fields ? ` — ${fields}` : ""}`;
}

export function Status({ text }: { text: string }) {
  return (
    <p role="status" aria-live="polite" class={text.startsWith(t("failed")) ? "warning" : "notice"} hidden={!text}>
      {text}
    </p>
  );
}

/** Words only a screen reader says after a button's label: which item it acts on (" · family F1"). */
export function Also({ text }: { text: string }) {
  return <span class="sr-only"> · {text}</span>;
}
