// Vite builds the app into dist/ (served by the gateway at /app/). The service worker is written here, after the
// bundle is known: it precaches exactly the files of this build (hashed names) and is named by their digest, so a
// new build replaces the old cache and nothing stale is served.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { defineConfig, type Plugin } from "vite";

const BASE = "/app/";

function serviceWorker(): Plugin {
  return {
    name: "hss-service-worker",
    enforce: "post",
    apply: "build",
    generateBundle(_options, bundle) {
      const publicFiles = readdirSync(new URL("./public", import.meta.url)).sort();
      const files = [...Object.keys(bundle), ...publicFiles].filter((f) => !f.endsWith(".map")).sort();
      const digest = createHash("sha256");
      for (const name of Object.keys(bundle).sort()) {
        const item = bundle[name]!;
        digest.update(name).update(item.type === "chunk" ? item.code : item.source);
      }
      const template = readFileSync(new URL("./src/sw.js", import.meta.url), "utf8");
      const source = template
        .replace("__VERSION__", `hss-app-${digest.digest("hex").slice(0, 16)}`)
        .replace("__BASE__", BASE)
        .replace("__ASSETS__", JSON.stringify(["", ...files].map((f) => BASE + f)));
      this.emitFile({ type: "asset", fileName: "sw.js", source });
    },
  };
}

// `npm run dev` (hot reload) sends the API to a running gateway: GATEWAY_URL (default devstack's 8100).
const gateway = process.env.GATEWAY_URL ?? "http://127.0.0.1:8100";

export default defineConfig({
  base: BASE,
  plugins: [serviceWorker()],
  server: { proxy: { "/api": gateway, "/app/dev-users.json": gateway } },
  build: { target: "es2022", sourcemap: false, chunkSizeWarningLimit: 300 },
});
