// The app's service worker (precache list and version filled in by vite.config.ts at build time).
// The app shell is served from the cache first, so the app opens with no network at all; API calls are never
// touched here (the page queues visits in IndexedDB and sends them itself).
const VERSION = "__VERSION__";
const BASE = "__BASE__";
const ASSETS = __ASSETS__;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(VERSION)
      .then((cache) => cache.addAll(ASSETS))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== VERSION && k.startsWith("hss-app-")).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin || !url.pathname.startsWith(BASE)) return;
  if (url.pathname.endsWith("/dev-users.json")) return; // sign-in data: always from the network
  if (request.mode === "navigate") {
    event.respondWith(caches.match(BASE, { ignoreVary: true }).then((hit) => hit || fetch(request)));
    return;
  }
  // ignoreVary: the gateway answers `Vary: Origin`, and module scripts are requested with an Origin header that
  // the precache's requests did not have.
  event.respondWith(caches.match(request, { ignoreVary: true }).then((hit) => hit || fetch(request)));
});

// Background Sync (Chromium): wake an open page to send its queue (the page owns the queue and its sign-in).
self.addEventListener("sync", (event) => {
  if (event.tag !== "hss-visits") return;
  event.waitUntil(
    self.clients.matchAll({ type: "window" }).then((clients) => clients.forEach((c) => c.postMessage({ type: "sync" }))),
  );
});
