// The app's screens and how the user moves between them. Session state lives in the Rust
// side; this holds only what is shown.
import { useCallback, useEffect, useMemo, useState } from "react";
import type { BankInfo, Overview, Remembered, SessionView, StartInfo } from "./bindings";
import { asAppError, commands, onSessionEnded, run } from "./api";
import { ErrorBox, Notice, ReminderBanner, ScreenTitle } from "./components";
import { BankContext, I18nContext, useI18n } from "./context";
import { initialLang, translate, type Lang } from "./i18n";
import { ACTIVITY_EVENTS, IdleTimer } from "./logic/idle";
import { opensKeyScreen } from "./logic/reminder";
import { AccountsScreen } from "./screens/Accounts";
import { ChangePasswordForm, KeyScreen, SettingsScreen, TotpScreen } from "./screens/Account";
import { LoginScreen, SmsCodeScreen } from "./screens/Login";
import { OrdersScreen } from "./screens/Orders";
import { QueueScreen } from "./screens/Queue";
import { StatementsScreen } from "./screens/Statements";
import { FirstLoginWizard, RecoveryWizard, ResetPasswordWizard } from "./screens/Wizards";
import { ProfileScreen } from "./screens/Profile";
import { AdminArea } from "./screens/Admin";
import { adminPages, type AdminPage } from "./logic/admin";

export type Page = "accounts" | "orders" | "queue" | "statements" | "key" | "security" | "profile" | "settings";

/** Why a session ended: the app's idle lock, the user's logout, or the bank. */
type Ended = "locked" | "logout" | "expired";
const ENDED_TEST: Record<Ended, string> = { locked: "locked", logout: "logged-out", expired: "session-ended" };

export type View =
  | { name: "login"; notice?: string }
  | { name: "first-login" }
  | { name: "recovery"; login: string; drive: string }
  | { name: "reset"; login: string; drive: string }
  | { name: "sms-code" }
  | { name: "settings" }
  | { name: "change-password" }
  | { name: "main"; page: Page }
  | { name: "admin"; page: AdminPage | null }
  | { name: "ended"; why: Ended; removeDrive: string | null; minutes: number };

/** Where a fresh session lands: the forced password change, the key screen when expiry is near, else the accounts. */
export function landing(s: SessionView): View {
  if (s.stage === "change_password") return { name: "change-password" };
  if (s.stage === "sms_code") return { name: "sms-code" };
  if (s.stage === "reconnect") return { name: "login" };
  if (s.admin) return { name: "admin", page: null };
  return { name: "main", page: opensKeyScreen(s.reminder) ? "key" : "accounts" };
}

function useIdleLock(active: boolean, seconds: number, onIdle: () => void) {
  useEffect(() => {
    if (!active) return;
    const timer = new IdleTimer(seconds, onIdle);
    const touch = () => timer.touch();
    ACTIVITY_EVENTS.forEach((e) => window.addEventListener(e, touch, { passive: true }));
    timer.touch();
    return () => {
      timer.stop();
      ACTIVITY_EVENTS.forEach((e) => window.removeEventListener(e, touch));
    };
  }, [active, seconds, onIdle]);
}

export default function App() {
  const [lang, setLangState] = useState<Lang>(() => initialLang(localStorage.getItem("tresor.lang"), navigator.language));
  const i18n = useMemo(
    () => ({
      lang,
      setLang: (l: Lang) => {
        localStorage.setItem("tresor.lang", l);
        document.documentElement.lang = l;
        setLangState(l);
      },
      t: (key: Parameters<typeof translate>[1], vars?: Record<string, string | number>) => translate(lang, key, vars),
    }),
    [lang],
  );
  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);
  return (
    <I18nContext.Provider value={i18n}>
      <Shell />
    </I18nContext.Provider>
  );
}

function Shell() {
  const { t } = useI18n();
  const [start, setStart] = useState<StartInfo | null>(null);
  const [startError, setStartError] = useState<string | null>(null);
  const [view, setView] = useState<View>({ name: "login" });
  const [session, setSession] = useState<SessionView | null>(null);
  const [overview, setOverview] = useState<Overview | null>(null);
  const [bank, setBank] = useState<BankInfo | null>(null);
  const [remembered, setRemembered] = useState<Remembered>({ login: null, drive: null });

  const load = useCallback(async () => {
    try {
      const s = await run(commands.appStart());
      setStart(s);
      // The cached helpdesk at once, then the bank's own answer if it gives one; a bank that
      // cannot be reached leaves the cache (the login says why when it is tried).
      setBank(s.bank);
      if (s.settings) run(commands.refreshBankInfo()).then(setBank, () => {});
      // The OS credential store may first ask to be unlocked: the login screen is already up
      // and fills the login and drive in when it answers.
      run(commands.remembered()).then(setRemembered, () => {});
    } catch (err) {
      setStartError(asAppError(err).message);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  const end = useCallback(async (why: Ended) => {
    const minutes = Math.max(1, Math.round((session?.idle_lock_seconds ?? 300) / 60));
    // Not through `run`: an ended session's logout must not report the end once more.
    let removeDrive: string | null = null;
    try {
      const out = await commands.logout();
      if (out.status === "ok") removeDrive = out.data.remove_drive;
    } catch {
      // Logging out cannot fail in a way the user can act on; the session is gone either way.
    }
    setSession(null);
    setOverview(null);
    setView({ name: "ended", why, removeDrive, minutes });
    void load();
  }, [session, load]);

  const lock = useCallback(() => void end("locked"), [end]);
  useIdleLock(session !== null, session?.idle_lock_seconds ?? 300, lock);
  // A session the bank has ended, noticed by whichever screen's command: one place for all.
  const loggedInNow = session !== null;
  useEffect(() => {
    if (!loggedInNow) return;
    return onSessionEnded(() => void end("expired"));
  }, [loggedInNow, end]);

  const refreshOverview = useCallback(async () => {
    try {
      setOverview(await run(commands.overview()));
    } catch {
      // An ended session is handled by `onSessionEnded`; the screen shows its own errors.
    }
  }, []);

  // Set when a key login finds no confirmed address: the profile opens first, once.
  const [welcome, setWelcome] = useState(false);
  const loggedIn = (s: SessionView) => {
    setSession(s);
    const next = landing(s);
    setView(next);
    if (next.name !== "main") return;
    void refreshOverview();
    // The first-login profile: a user without a confirmed address is asked for one.
    if (s.stage === "key" && next.page === "accounts") {
      run(commands.profile()).then(
        (p) => {
          if (p.email || !p.bank_sends_mail) return;
          setWelcome(true);
          setView({ name: "main", page: "profile" });
        },
        () => {},
      );
    }
  };

  if (startError) return <ErrorBox error={startError} />;
  if (!start) return <progress className="boot" aria-label={t("common.working")} />;

  return <BankContext.Provider value={bank}>{screen(start)}</BankContext.Provider>;

  function screen(start: StartInfo) {
  switch (view.name) {
    case "login":
      return (
        <LoginScreen
          start={start}
          remembered={remembered}
          notice={view.notice}
          onLoggedIn={loggedIn}
          onFirstLogin={() => setView({ name: "first-login" })}
          onRecover={(login, drive) => setView({ name: "recovery", login, drive })}
          onReset={(login, drive) => setView({ name: "reset", login, drive })}
          onSettings={() => setView({ name: "settings" })}
        />
      );
    case "sms-code":
      return (
        <SmsCodeScreen
          onLoggedIn={loggedIn}
          onCancel={() => {
            void run(commands.logout());
            setSession(null);
            setView({ name: "login" });
          }}
        />
      );
    case "reset":
      return (
        <ResetPasswordWizard
          login={view.login}
          drive={view.drive}
          onLoggedIn={loggedIn}
          onCancel={() => setView({ name: "login" })}
        />
      );
    case "first-login":
      return (
        <FirstLoginWizard
          remembered={remembered.login}
          onDone={() => void load().then(() => setView({ name: "login" }))}
          onCancel={() => setView({ name: "login" })}
        />
      );
    case "recovery":
      return (
        <RecoveryWizard
          login={view.login}
          drive={view.drive}
          onDone={() => void load().then(() => setView({ name: "login" }))}
          onCancel={() => setView({ name: "login" })}
        />
      );
    case "settings":
      return (
        <SettingsScreen
          start={start}
          remembered={remembered}
          onForgotten={() => setRemembered({ login: null, drive: null })}
          session={null}
          onSaved={() => void load()}
          onBack={() => setView({ name: "login" })}
          onPasswordChanged={() => {}}
        />
      );
    case "change-password":
      return (
        <main className="card narrow">
          <ScreenTitle>{t("change.title")}</ScreenTitle>
          <ChangePasswordForm
            login={session?.login ?? ""}
            forced
            onChanged={(s) => {
              if (s.stage === "key" || s.stage === "otp") loggedIn(s);
              else {
                void run(commands.logout());
                setSession(null);
                setView({ name: "login", notice: t("change.relogin") });
              }
            }}
          />
        </main>
      );
    case "ended":
      return (
        <main className="card narrow" data-test={ENDED_TEST[view.why]}>
          <ScreenTitle>{t(`${view.why}.title`)}</ScreenTitle>
          <p>{t(`${view.why}.text`, { minutes: view.minutes })}</p>
          {view.removeDrive && (
            <p className="warning" role="alert" data-test="pull-drive">
              {t("logout.pullDrive", { drive: view.removeDrive })}
            </p>
          )}
          <button type="button" className="primary" id="login-again" autoFocus onClick={() => setView({ name: "login" })}>
            {t("logout.again")}
          </button>
        </main>
      );
    case "admin":
      if (!session?.admin) return null;
      return (
        <AdminLayout session={session} page={view.page} go={(page) => setView({ name: "admin", page })} onLogout={() => void end("logout")}>
          <AdminArea admin={session.admin} page={view.page} go={(page) => setView({ name: "admin", page })} />
        </AdminLayout>
      );
    case "main":
      if (!session) return null;
      return (
        <MainLayout session={session} page={view.page} go={(page) => setView({ name: "main", page })} onLogout={() => void end("logout")}>
          {view.page === "accounts" && <AccountsScreen overview={overview} session={session} />}
          {view.page === "orders" && overview && <OrdersScreen overview={overview} session={session} onChanged={refreshOverview} />}
          {view.page === "queue" && <QueueScreen onChanged={refreshOverview} />}
          {view.page === "statements" && overview && <StatementsScreen overview={overview} />}
          {view.page === "key" && <KeyScreen session={session} />}
          {view.page === "security" && <TotpScreen enrolled={overview?.totp_enrolled ?? false} onEnrolled={refreshOverview} />}
          {view.page === "profile" && <ProfileScreen welcome={welcome} />}
          {view.page === "settings" && (
            <SettingsScreen
              start={start}
              remembered={remembered}
              onForgotten={() => setRemembered({ login: null, drive: null })}
              session={session}
              onSaved={() => void load()}
              onPasswordChanged={setSession}
            />
          )}
        </MainLayout>
      );
  }
  }
}

function MainLayout(props: {
  session: SessionView;
  page: Page;
  go: (p: Page) => void;
  onLogout: () => void;
  children: React.ReactNode;
}) {
  const { t } = useI18n();
  const pages: [Page, Parameters<typeof t>[0]][] = [
    ["accounts", "nav.accounts"],
    ["orders", "nav.orders"],
    ["queue", "nav.queue"],
    ["statements", "nav.statements"],
    ["key", "nav.key"],
    ["security", "nav.security"],
    ["profile", "nav.profile"],
    ["settings", "nav.settings"],
  ];
  return (
    <div className="layout">
      <header>
        <span className="brand">{t("app.title")}</span>
        <span className="who" data-test="who">
          {props.session.name} ({props.session.login})
        </span>
        <button type="button" id="logout" onClick={props.onLogout}>
          {t("nav.logout")}
        </button>
      </header>
      <nav aria-label={t("nav.main")} className="menu">
        {pages.map(([p, label]) => (
          <button key={p} type="button" id={`nav-${p}`} aria-current={props.page === p ? "page" : undefined} onClick={() => props.go(p)}>
            {t(label)}
          </button>
        ))}
      </nav>
      <main className="content">
        {props.page !== "key" && <ReminderBanner reminder={props.session.reminder} onRenew={() => props.go("key")} />}
        {props.children}
      </main>
    </div>
  );
}

function AdminLayout(props: {
  session: SessionView;
  page: AdminPage | null;
  go: (p: AdminPage) => void;
  onLogout: () => void;
  children: React.ReactNode;
}) {
  const { t } = useI18n();
  const admin = props.session.admin;
  const pages = admin ? adminPages(admin.roles) : [];
  const current = props.page ?? pages[0];
  return (
    <div className="layout" data-test="admin-area">
      <header>
        <span className="brand">{t("admin.title")}</span>
        <span className="who" data-test="who">
          {props.session.name} ({props.session.login}) · {admin?.roles.map((r) => t(`admin.role.${r}`)).join(", ")}
        </span>
        <button type="button" id="logout" onClick={props.onLogout}>
          {t("nav.logout")}
        </button>
      </header>
      <nav aria-label={t("nav.main")} className="menu">
        {pages.map((p) => (
          <button key={p} type="button" id={`admin-nav-${p}`} aria-current={current === p ? "page" : undefined} onClick={() => props.go(p)}>
            {t(`admin.nav.${p}`)}
          </button>
        ))}
      </nav>
      <main className="content">
        <ReminderBanner reminder={props.session.reminder} onRenew={() => {}} />
        {props.children}
      </main>
    </div>
  );
}

export { Notice };
