// A local OpenID Connect provider (oidc-provider, pinned by package-lock.json) for development and the browser
// tests — the stand-in for the bureau's identity provider. The app signs in by authorization code + PKCE as a
// public client; the access token is an ES256 JWT for the platform's API (audience hss-platform) carrying the
// claims the services map to roles and scope (roles, org_path, staff_id, department); the services verify it with
// this provider's JWKS (/jwks). Users come from a JSON file (IDP_USERS, re-read at each sign-in): sub, username,
// password (scrypt: "scrypt$<salt b64>$<hash b64>", N=16384 r=8 p=1, 32 bytes), name, roles, org_path,
// staff_id?, department?. Written by shared/devstack/idp.py, which starts this process.
//   IDP_HTTP_PORT (9000) IDP_ISSUER (http://127.0.0.1:<port>) IDP_USERS IDP_KEY_FILE (the signing key, made on
//   first start) IDP_CLIENT_ID (hss-app) IDP_REDIRECT_URIS (comma-separated: the app's /app/ on each gateway)
import { createServer } from "node:http";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { generateKeyPairSync, randomBytes, randomUUID, scryptSync, timingSafeEqual } from "node:crypto";
import Provider from "oidc-provider";

const env = process.env;
const port = Number(env.IDP_HTTP_PORT || 9000);
const issuer = env.IDP_ISSUER || `http://127.0.0.1:${port}`;
const clientId = env.IDP_CLIENT_ID || "hss-app";
const redirectUris = (env.IDP_REDIRECT_URIS || "").split(",").filter(Boolean);
const RESOURCE = "urn:hss-platform:api"; // the platform's API, the one resource server
const AUDIENCE = "hss-platform"; // what the services check (jwt_audience)
const TOKEN_TTL = 12 * 3600; // a teacher's working day, offline included; then sign in again (visits are kept)

function users() {
  return JSON.parse(readFileSync(env.IDP_USERS, "utf8"));
}

function signingKey() {
  const file = env.IDP_KEY_FILE;
  if (file && existsSync(file)) return JSON.parse(readFileSync(file, "utf8"));
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = { ...privateKey.export({ format: "jwk" }), kid: randomUUID(), alg: "ES256", use: "sig" };
  if (file) writeFileSync(file, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}

function passwordMatches(stored, given) {
  const [scheme, salt, hash] = String(stored).split("$");
  if (scheme !== "scrypt" || !salt || !hash) return false;
  const want = Buffer.from(hash, "base64");
  const got = scryptSync(given, Buffer.from(salt, "base64"), want.length, { N: 16384, r: 8, p: 1 });
  return timingSafeEqual(want, got);
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      token_endpoint_auth_method: "none", // a public client: the code is bound to the app by PKCE
      redirect_uris: redirectUris,
      post_logout_redirect_uris: redirectUris,
      response_types: ["code"],
      grant_types: ["authorization_code"],
      id_token_signed_response_alg: "ES256", // the provider's one key is a P-256 key
    },
  ],
  jwks: { keys: [signingKey()] },
  cookies: { keys: [randomBytes(32).toString("base64url")] },
  pkce: { required: () => true },
  scopes: ["openid", "profile"],
  claims: { openid: ["sub"], profile: ["name"] },
  features: {
    devInteractions: { enabled: false }, // our own login form below
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true, // the access token is for the API, not for userinfo
      getResourceServerInfo: (_ctx, resource) => {
        if (resource !== RESOURCE) throw new Provider.errors.InvalidTarget();
        return {
          scope: "api",
          audience: AUDIENCE,
          accessTokenTTL: TOKEN_TTL,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "ES256" } },
        };
      },
    },
  },
  ttl: { AccessToken: TOKEN_TTL, IdToken: TOKEN_TTL, Session: TOKEN_TTL, Grant: TOKEN_TTL, Interaction: 3600 },
  async findAccount(_ctx, sub) {
    const user = users().find((u) => u.sub === sub);
    if (!user) return undefined;
    return { accountId: sub, claims: async () => ({ sub, name: user.name }) };
  },
  async extraTokenClaims(_ctx, token) {
    // The claims the services read (shared/auth.py): roles, org_path, and for teachers and departments theirs.
    const user = users().find((u) => u.sub === token.accountId);
    if (!user) return undefined;
    const claims = { roles: user.roles, org_path: user.org_path };
    if (user.staff_id) claims.staff_id = user.staff_id;
    if (user.department) claims.department = user.department;
    return claims;
  },
  renderError(ctx, out) {
    ctx.type = "html";
    ctx.body = page("错误 · Error", `<p role="alert">${escape(out.error)}: ${escape(out.error_description || "")}</p>`);
  },
});
provider.on("server_error", (_ctx, err) => console.error("server_error", err));

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:26rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}
button{margin-top:1rem;padding:.6rem 1.2rem;font-size:1rem;background:#0b5394;color:#fff;border:0;border-radius:4px}
[role=alert]{color:#9c0006}</style></head><body><main>${body}</main></body></html>`;
}

function loginForm(uid, error) {
  return page(
    "统一身份认证 · Sign in",
    `<h1>统一身份认证 <span lang="en">· Sign in</span></h1>
${error ? `<p role="alert">${escape(error)}</p>` : ""}
<form method="post" action="/interaction/${uid}/login" autocomplete="off">
<label for="username">用户名 <span lang="en">· Username</span></label>
<input id="username" name="username" required autocapitalize="off">
<label for="password">密码 <span lang="en">· Password</span></label>
<input id="password" name="password" type="password" required>
<button type="submit">登录 <span lang="en">· Sign in</span></button></form>`,
  );
}

async function formBody(req) {
  let raw = "";
  for await (const chunk of req) {
    raw += chunk;
    if (raw.length > 8192) throw new Error("form too large");
  }
  return new URLSearchParams(raw);
}

function send(res, status, html) {
  res.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
  res.end(html);
}

// Interactions: the login form, then consent — granted at once, the app being the bureau's own (first-party) client.
async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, page("Error", "<p role=alert>interaction mismatch</p>"));
  const { prompt, params, session } = details;
  if (prompt.name === "login") {
    if (req.method === "GET") return send(res, 200, loginForm(uid));
    if (action !== "login") return send(res, 404, page("Not found", "<p>not found</p>"));
    const form = await formBody(req);
    const user = users().find((u) => u.username === form.get("username"));
    if (!user || !passwordMatches(user.password, form.get("password") || "")) {
      return send(res, 401, loginForm(uid, "用户名或密码不正确 · Wrong username or password"));
    }
    return provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
  }
  if (prompt.name === "consent") {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(" "));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(" "));
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return send(res, 400, page("Error", `<p role=alert>unexpected prompt ${escape(prompt.name)}</p>`));
}

const handle = provider.callback();
createServer(async (req, res) => {
  const match = /^\/interaction\/([\w-]+)(?:\/(login))?$/.exec(new URL(req.url, issuer).pathname);
  if (!match) return handle(req, res);
  try {
    await interaction(req, res, match[1], match[2]);
  } catch (err) {
    console.error("interaction failed", err);
    if (!res.headersSent) send(res, 400, page("Error", `<p role=alert>${escape(err.message)}</p>`));
  }
}).listen(port, "127.0.0.1", () => console.log(`identity provider ${issuer} listening on 127.0.0.1:${port}`));
