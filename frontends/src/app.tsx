// The shell: header (language, network, who is signed in), sign-in, then the screen of the user's role.
import { useEffect, useState } from "preact/hooks";
import { type Key, setLang, t, useLang } from "./i18n";
import { finishSignIn, returningFromProvider, signInConfig, type SignInConfig, startSignIn } from "./oidc";
import { devUsers, expired, loadSession, saveSession, type User } from "./session";
import { Console } from "./admin/Console";
import { Carer } from "./outreach/Carer";
import { Department } from "./outreach/Department";
import { Teacher } from "./teacher/Teacher";

function useOnline(): boolean {
  const [online, setOnline] = useState(navigator.onLine);
  useEffect(() => {
    const on = () => setOnline(true);
    const off = () => setOnline(false);
    window.addEventListener("online", on);
    window.addEventListener("offline", off);
    return () => {
      window.removeEventListener("online", on);
      window.removeEventListener("offline", off);
    };
  }, []);
  return online;
}

export function App({ persisted }: { persisted: Promise<boolean | null> }) {
  const language = useLang();
  const online = useOnline();
  const [user, setUser] = useState<User | null>(loadSession);
  const [stale, setStale] = useState(() => (user ? expired(user) : false));
  const [persist, setPersist] = useState<boolean | null>(null);
  useEffect(() => void persisted.then(setPersist), [persisted]);

  const signIn = (u: User) => {
    saveSession(u);
    setUser(u);
    setStale(false);
  };
  const signOut = () => {
    saveSession(null);
    setUser(null);
  };
  // Back from the identity provider with a code: exchange it (PKCE) and sign in.
  const [signInError, setSignInError] = useState<string | null>(null);
  useEffect(() => {
    if (!returningFromProvider()) return;
    void signInConfig().then(async (config) => {
      try {
        if (!config) throw new Error("no identity provider is configured");
        signIn(await finishSignIn(config));
      } catch (err) {
        setSignInError(err instanceof Error ? err.message : String(err));
      }
    });
  }, []);

  return (
    <>
      <a class="skip" href="#main">
        {t("skip")}
      </a>
      <header class="top">
        <h1>{t("app_title")}</h1>
        <span class={`net ${online ? "on" : "off"}`} role="status" aria-live="polite" data-online={online}>
          {online ? t("online") : t("offline")}
        </span>
        <button
          type="button"
          class="secondary"
          lang={language === "zh" ? "en" : "zh-CN"}
          onClick={() => setLang(language === "zh" ? "en" : "zh")}
        >
          {t("lang_switch")}
        </button>
        {user && (
          <div class="who">
            <span>
              {t("signed_in_as")}: {user.name} ({t(`role_${user.role}` as Key)})
            </span>
            <button type="button" class="secondary" onClick={signOut}>
              {t("sign_out")}
            </button>
          </div>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {persist !== null && user && (
          <p class="muted storage">{persist ? t("storage_persisted") : t("storage_not_persisted")}</p>
        )}
        {stale && <p class="warning">{t("session_expired")}</p>}
        {signInError && (
          <p class="warning" role="alert">
            {t("sign_in_failed")}: {signInError}
          </p>
        )}
        {!user || stale ? (
          <SignIn onPick={signIn} />
        ) : user.role === "teacher" ? (
          <Teacher user={user} onAuthExpired={() => setStale(true)} />
        ) : user.role === "mental_health_teacher" ? (
          <Carer user={user} />
        ) : user.role === "school_admin" || user.role === "district_admin" || user.role === "bureau_admin" ? (
          <Console user={user} />
        ) : user.role === "department_partner" ? (
          <Department user={user} />
        ) : (
          <p>{t("not_yet")}</p>
        )}
      </main>
    </>
  );
}

function SignIn({ onPick }: { onPick: (u: User) => void }) {
  const [users, setUsers] = useState<User[] | null | undefined>(undefined);
  const [provider, setProvider] = useState<SignInConfig | null | undefined>(undefined);
  useEffect(() => void devUsers().then(setUsers), []);
  useEffect(() => void signInConfig().then(setProvider), []);
  return (
    <section class="card" aria-labelledby="sign-in-title">
      <h2 id="sign-in-title">{t("sign_in")}</h2>
      {provider && (
        <p>
          <button type="button" onClick={() => void startSignIn(provider)}>
            {t("sign_in_idp")}
          </button>
        </p>
      )}
      {provider === null && users === null && <p>{t("sign_in_oidc")}</p>}
      {users && (
        <>
          <p>{t("sign_in_dev")}</p>
          <ul class="users">
            {users.map((u) => (
              <li key={u.token}>
                <button type="button" onClick={() => onPick(u)}>
                  {u.name} · {t(`role_${u.role}` as Key)}
                </button>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
