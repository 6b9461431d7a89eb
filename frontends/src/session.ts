// Sign-in. Development: pick one of the demo users the stack wrote to /app/dev-users.json (dev tokens minted by
// the demo or the tests; absent in production). Production: the identity provider, OIDC authorization code + PKCE
// (src/oidc.ts). The session lives in localStorage so the app opens signed in with no network.
export interface User {
  name: string;
  role: string;
  token: string;
  staff_id?: string;
  org_path?: string;
  department?: string;
}

const KEY = "hss.session";

export function loadSession(): User | null {
  const raw = localStorage.getItem(KEY);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as User;
  } catch {
    return null;
  }
}

export function saveSession(user: User | null): void {
  if (user) localStorage.setItem(KEY, JSON.stringify(user));
  else localStorage.removeItem(KEY);
}

/** Who owns queued data on this device: the token's subject (one device may be shared by colleagues). */
export function ownerOf(user: User): string {
  return claims(user.token).sub ?? user.name;
}

export function expired(user: User, now = Date.now()): boolean {
  const exp = claims(user.token).exp;
  return typeof exp === "number" && exp * 1000 <= now;
}

function claims(token: string): { sub?: string; exp?: number } {
  try {
    const part = token.split(".")[1] ?? "";
    return JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))) as { sub?: string; exp?: number };
  } catch {
    return {};
  }
}

export async function devUsers(): Promise<User[] | null> {
  try {
    const res = await fetch("/app/dev-users.json", { cache: "no-store" });
    if (!res.ok) return null;
    return (await res.json()) as User[];
  } catch {
    return null;
  }
}
