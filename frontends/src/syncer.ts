// When the outbox is sent: at once after a visit is saved, when the browser comes back online, when the service
// worker's Background Sync fires (Chromium), and on a timer — every minute while idle, with exponential backoff
// (5 s doubling to 5 min, with jitter) after a failure. One tab sends at a time (Web Locks).
import type { VisitsClient } from "./api/client";
import { type Outcome, sendAll } from "./queue";

const IDLE_MS = 60_000;
const FIRST_RETRY_MS = 5_000;
const MAX_RETRY_MS = 300_000;

export class Syncer {
  private timer: number | undefined;
  private failures = 0;
  private running = false;
  private again = false;
  private stopped = false;
  lastOutcome: Outcome = "idle";

  constructor(
    private readonly owner: string,
    private readonly client: VisitsClient,
    private readonly onAuth: () => void,
  ) {}

  start(): void {
    window.addEventListener("online", this.onOnline);
    navigator.serviceWorker?.addEventListener("message", this.onMessage);
    void this.kick();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
    window.removeEventListener("online", this.onOnline);
    navigator.serviceWorker?.removeEventListener("message", this.onMessage);
  }

  private onOnline = (): void => {
    this.failures = 0;
    void this.kick();
  };

  private onMessage = (event: MessageEvent): void => {
    if ((event.data as { type?: string } | null)?.type === "sync") void this.kick();
  };

  /** Send now (coalesced: a kick while sending runs once more afterwards). */
  async kick(): Promise<void> {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    window.clearTimeout(this.timer);
    try {
      do {
        this.again = false;
        this.lastOutcome = await this.exclusive(() => sendAll(this.owner, this.client));
      } while (this.again && this.lastOutcome === "idle");
    } finally {
      this.running = false;
    }
    if (this.lastOutcome === "auth") {
      this.onAuth();
      return;
    }
    if (this.lastOutcome === "retry") {
      this.failures += 1;
      void registerBackgroundSync();
    } else {
      this.failures = 0;
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    const delay =
      this.failures === 0
        ? IDLE_MS
        : Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (this.failures - 1)) * (0.5 + Math.random() / 2);
    this.timer = window.setTimeout(() => void this.kick(), delay);
  }

  private async exclusive(work: () => Promise<Outcome>): Promise<Outcome> {
    if (!navigator.locks) return work();
    const result = await navigator.locks.request("hss-visit-upload", { ifAvailable: true }, async (lock) =>
      lock ? work() : null,
    );
    return result ?? "retry"; // another tab is sending: look again later
  }
}

async function registerBackgroundSync(): Promise<void> {
  try {
    const reg = (await navigator.serviceWorker?.ready) as
      | (ServiceWorkerRegistration & { sync?: { register(tag: string): Promise<void> } })
      | undefined;
    await reg?.sync?.register("hss-visits");
  } catch {
    // no Background Sync here: the online event and the timer do it
  }
}
