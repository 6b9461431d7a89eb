// Production sign-in: OpenID Connect authorization code + PKCE (oauth4webapi) with the identity provider named by
// /app/sign-in.json ({issuer, client_id}: written by devstack and the tests, mounted by the deployer). The app is a
// public client: the code is bound to this browser by the PKCE verifier kept in sessionStorage, the state and the
// nonce are checked, and the code leaves the address bar at once. The access token — a JWT for the platform's API,
// which the services verify with the provider's JWKS — is the session's bearer token; no token is ever in a URL.
import * as oauth from "oauth4webapi";
import type { User } from "./session";

export interface SignInConfig {
  issuer: string;
  client_id: string;
}

const PENDING = "hss.oidc.pending";
const SCOPE = "openid profile api"; // api: the platform's API (the provider's resource server)
// The screen a user with several roles sees first.
const ROLE_ORDER = [
  "teacher",
  "mental_health_teacher",
  "school_admin",
  "district_admin",
  "bureau_admin",
  "department_partner",
  "auditor",
];

export async function signInConfig(): Promise<SignInConfig | null> {
  try {
    const res = await fetch("/app/sign-in.json", { cache: "no-store" });
    return res.ok ? ((await res.json()) as SignInConfig) : null;
  } catch {
    return null;
  }
}

const redirectUri = () => `${location.origin}/app/`;

/** Whether the page was opened by the provider's redirect (a code or an error, and our state). */
export function returningFromProvider(): boolean {
  const params = new URL(location.href).searchParams;
  return params.has("state") && (params.has("code") || params.has("error"));
}

async function discover(config: SignInConfig) {
  const issuer = new URL(config.issuer);
  // Plain HTTP only for a provider on this machine (development and the tests); anything else must be HTTPS.
  const local = issuer.protocol === "http:" && ["127.0.0.1", "localhost"].includes(issuer.hostname);
  const options = local ? { [oauth.allowInsecureRequests]: true } : {};
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: "oidc", ...options }),
  );
  const client: oauth.Client = { client_id: config.client_id, id_token_signed_response_alg: "ES256" };
  return { as, client, options };
}

/** To the provider's sign-in page (the browser leaves the app; it comes back to /app/ with a code). */
export async function startSignIn(config: SignInConfig): Promise<void> {
  const { as } = await discover(config);
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, nonce }));
  const url = new URL(as.authorization_endpoint!);
  url.search = new URLSearchParams({
    client_id: config.client_id,
    redirect_uri: redirectUri(),
    response_type: "code",
    scope: SCOPE,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
  }).toString();
  location.assign(url.href);
}

/** Back from the provider: check the state, exchange the code with the PKCE verifier, and the signed-in user. */
export async function finishSignIn(config: SignInConfig): Promise<User> {
  const here = new URL(location.href);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? "null") as {
    verifier: string;
    state: string;
    nonce: string;
  } | null;
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", redirectUri()); // the code and state leave the address bar and the history
  if (!pending) throw new Error("no sign-in was started on this page");
  const { as, client, options } = await discover(config);
  const params = oauth.validateAuthResponse(as, client, here, pending.state);
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    oauth.None(),
    params,
    redirectUri(),
    pending.verifier,
    options,
  );
  const result = await oauth.processAuthorizationCodeResponse(as, client, response, {
    expectedNonce: pending.nonce,
    requireIdToken: true,
  });
  const id = oauth.getValidatedIdTokenClaims(result)!;
  const access = tokenClaims(result.access_token);
  const roles = Array.isArray(access.roles) ? access.roles.map(String) : [];
  const role = ROLE_ORDER.find((r) => roles.includes(r)) ?? roles[0] ?? "";
  const user: User = { name: String(id.name ?? id.sub), role, token: result.access_token };
  if (typeof access.org_path === "string") user.org_path = access.org_path;
  if (typeof access.staff_id === "string") user.staff_id = access.staff_id;
  if (typeof access.department === "string") user.department = access.department;
  return user;
}

/** A JWT's claims, unverified: for showing who signed in (the services verify the token on every call). */
function tokenClaims(token: string): Record<string, unknown> {
  const part = token.split(".")[1] ?? "";
  return JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))) as Record<string, unknown>;
}
