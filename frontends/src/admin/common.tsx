// Pieces the console's screens share: a problem's text from a thrown ApiError, a table that scrolls on a phone.
import type { ComponentChildren } from "preact";
import { ApiError } from "../api/client";
import { t } from "../i18n";
import { problemText } from "../outreach/common";

export function errorText(e: unknown): string {
  return e instanceof ApiError ? problemText(e.problem, e.status) : `${t("failed")}: ${String(e)}`;
}

/** A table that scrolls sideways on a phone (a focusable, labelled region: keyboard users can scroll it). */
export function Table({ caption, children }: { caption: string; children: ComponentChildren }) {
  return (
    <div class="table-wrap" role="region" aria-label={caption} tabIndex={0}>
      <table>
        <caption>{caption}</caption>
        {children}
      </table>
    </div>
  );
}
