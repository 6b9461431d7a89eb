import { render } from "preact";
import { App } from "./app";
import "./styles.css";

// The service worker caches the app so it opens with no network; storage persistence keeps the outbox from being
// evicted (browsers may grant it only to installed or often-used apps: the answer is shown to the teacher).
if ("serviceWorker" in navigator) {
  void navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(() => undefined);
}

async function persist(): Promise<boolean | null> {
  if (!navigator.storage?.persist) return null;
  return (await navigator.storage.persisted()) || navigator.storage.persist();
}

render(<App persisted={persist()} />, document.getElementById("root")!);
