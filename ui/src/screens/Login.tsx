// Login with the key (password + drive + key password) or with a one-time code.
import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import type { AppError, Remembered, SessionView, StartInfo } from "../bindings";
import { asAppError, commands, run } from "../api";
import {
  BankFooter,
  DrivePicker,
  ErrorBox,
  Field,
  HelpdeskHint,
  Notice,
  ProgressPanel,
  ScreenTitle,
  useDrives,
  useProgress,
} from "../components";
import { useI18n } from "../context";
import { isToken } from "../logic/drives";
import { nextTab, required } from "../logic/forms";

export function LoginScreen(props: {
  start: StartInfo;
  /** The last login and drive, once the OS credential store answers. */
  remembered: Remembered;
  notice?: string;
  onLoggedIn: (s: SessionView) => void;
  onFirstLogin: () => void;
  onRecover: (login: string, drive: string) => void;
  onReset: (login: string, drive: string) => void;
  onSettings: () => void;
}) {
  const { t } = useI18n();
  const [mode, setMode] = useState<"key" | "otp">("key");
  const [login, setLoginState] = useState(props.remembered.login ?? "");
  // The remembered login arrives when the credential store answers: it fills the field
  // unless the user has typed there meanwhile.
  const typed = useRef(false);
  const setLogin = (l: string) => {
    typed.current = true;
    setLoginState(l);
  };
  useEffect(() => {
    if (typed.current || !props.remembered.login) return;
    setLoginState(props.remembered.login);
    // The password is next, unless the user is already in another field.
    const at = document.activeElement;
    if (!(at instanceof HTMLInputElement) || at.id === "login") document.getElementById("password")?.focus();
  }, [props.remembered.login]);
  const [password, setPassword] = useState("");
  const [keyPassword, setKeyPassword] = useState("");
  const [otp, setOtp] = useState("");
  const [error, setError] = useState<AppError | string | null>(null);
  const [busy, setBusy] = useState(false);
  const [blocking, setBlocking] = useState(false);
  // A drive or token plugged in with this login's key: chosen, and the key password next.
  const { drives, tokens, chosen, choose } = useDrives(login, props.remembered.drive, () =>
    document.getElementById("key-password")?.focus(),
  );
  const progress = useProgress();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const missing =
      mode === "key" ? required(login, password, chosen, keyPassword) : required(login, password, otp);
    if (missing) return setError(t("common.required"));
    setBusy(true);
    try {
      const session =
        mode === "key"
          ? await run(commands.loginWithKey(login, password, chosen, keyPassword, progress.start()))
          : await run(commands.loginWithOtp(login, password, otp));
      setPassword("");
      setKeyPassword("");
      setOtp("");
      props.onLoggedIn(session);
    } catch (err) {
      setError(asAppError(err));
      setKeyPassword("");
      setOtp("");
    } finally {
      setBusy(false);
      progress.clear();
    }
  };

  const tabKeys = (e: KeyboardEvent<HTMLDivElement>) => {
    const next = nextTab(mode, e.key);
    if (!next) return;
    e.preventDefault();
    setMode(next);
    document.getElementById(`tab-${next}`)?.focus();
  };

  if (!props.start.settings) {
    return (
      <main className="card narrow">
        <ScreenTitle>{t("login.title")}</ScreenTitle>
        <ErrorBox error={props.start.settings_error ?? t("login.notConfigured")} />
        <button type="button" onClick={props.onSettings}>
          {t("login.openSettings")}
        </button>
      </main>
    );
  }

  const recoverable = error && typeof error !== "string" && error.offers_recovery;
  return (
    <main className="card narrow" data-test="login-screen">
      <ScreenTitle>{t("login.title")}</ScreenTitle>
      {props.notice && <Notice>{props.notice}</Notice>}
      {/* The WAI-ARIA tabs pattern: one tab stop, the arrow keys (and Home, End) move
          between the tabs and select. */}
      <div role="tablist" aria-label={t("login.title")} className="tabs" onKeyDown={tabKeys}>
        {(["key", "otp"] as const).map((tab) => (
          <button
            key={tab}
            type="button"
            role="tab"
            id={`tab-${tab}`}
            aria-selected={mode === tab}
            tabIndex={mode === tab ? 0 : -1}
            onClick={() => setMode(tab)}
          >
            {tab === "key" ? t("login.withKey") : t("login.withOtp")}
          </button>
        ))}
      </div>
      <form onSubmit={submit} aria-busy={busy}>
        <Field id="login" label={t("login.login")} value={login} onChange={setLogin} autoComplete="username" autoFocus={!login} />
        <Field
          id="password"
          label={t("login.password")}
          type="password"
          value={password}
          onChange={setPassword}
          autoComplete="current-password"
          autoFocus={!!login}
        />
        {mode === "key" ? (
          <>
            <DrivePicker drives={drives} tokens={tokens} chosen={chosen} choose={choose} />
            <Field
              id="key-password"
              label={isToken(chosen) ? t("login.tokenPin") : t("login.keyPassword")}
              type="password"
              value={keyPassword}
              onChange={setKeyPassword}
            />
          </>
        ) : (
          <>
            <Field id="otp" label={t("login.otp")} value={otp} onChange={setOtp} inputMode="numeric" autoComplete="one-time-code" />
            <p className="hint">{t("login.otpNote")}</p>
          </>
        )}
        <ErrorBox error={error}>
          {recoverable && (
            <p>
              {t("recovery.offer")}{" "}
              <button type="button" id="offer-recovery" onClick={() => props.onRecover(login, chosen)}>
                {t("login.recover")}
              </button>
            </p>
          )}
        </ErrorBox>
        <ProgressPanel steps={progress.steps} busy={busy} />
        <button type="submit" className="primary" id="login-submit" disabled={busy}>
          {busy ? t("common.working") : t("login.submit")}
        </button>
      </form>
      <nav className="links" aria-label={t("login.title")}>
        <button type="button" className="link" id="go-first-login" onClick={props.onFirstLogin}>
          {t("login.firstLogin")}
        </button>
        <button type="button" className="link" id="go-reset" onClick={() => props.onReset(login, chosen)}>
          {t("reset.open")}
        </button>
        <button type="button" className="link" id="go-recovery" onClick={() => props.onRecover(login, chosen)}>
          {t("login.recover")}
        </button>
        <button type="button" className="link" id="go-block" onClick={() => setBlocking(!blocking)} aria-expanded={blocking}>
          {t("block.open")}
        </button>
        <button type="button" className="link" id="go-settings" onClick={props.onSettings}>
          {t("nav.settings")}
        </button>
      </nav>
      {blocking && <BlockKeyForm login={login} />}
      <BankFooter />
    </main>
  );
}

/** "Block my key": for a user who fears the key stolen, with the login and password alone. */
function BlockKeyForm(props: { login: string }) {
  const { t } = useI18n();
  const [login, setLogin] = useState(props.login);
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState(false);
  const [done, setDone] = useState(false);
  const [error, setError] = useState<AppError | string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    if (required(login, password)) return setError(t("common.required"));
    if (!confirm) return setError(t("block.confirmFirst"));
    setBusy(true);
    try {
      await run(commands.blockKey(login, password));
      setDone(true);
    } catch (err) {
      setError(asAppError(err));
    } finally {
      setPassword("");
      setBusy(false);
    }
  };
  if (done)
    return (
      <Notice>
        {t("block.done")}
        <HelpdeskHint />
      </Notice>
    );
  return (
    <form className="card" data-test="block-key" onSubmit={submit} aria-busy={busy}>
      <h2>{t("block.title")}</h2>
      <p>{t("block.text")}</p>
      <HelpdeskHint />
      <Field id="block-login" label={t("login.login")} value={login} onChange={setLogin} />
      <Field id="block-password" label={t("login.password")} type="password" value={password} onChange={setPassword} />
      <label className="check">
        <input type="checkbox" id="block-confirm" checked={confirm} onChange={(e) => setConfirm(e.target.checked)} /> {t("block.confirm")}
      </label>
      <ErrorBox error={error} />
      <button type="submit" className="danger" id="block-submit" disabled={busy}>
        {t("block.submit")}
      </button>
    </form>
  );
}

/** The second step of a key login where the bank asks for one: the code it sent by SMS. */
export function SmsCodeScreen(props: { onLoggedIn: (s: SessionView) => void; onCancel: () => void }) {
  const { t } = useI18n();
  const [code, setCode] = useState("");
  const [error, setError] = useState<AppError | string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    if (required(code)) return setError(t("common.required"));
    setBusy(true);
    try {
      props.onLoggedIn(await run(commands.confirmLogin(code.trim())));
    } catch (err) {
      setError(asAppError(err));
      setCode("");
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="card narrow" data-test="sms-code">
      <ScreenTitle>{t("sms.title")}</ScreenTitle>
      <p>{t("sms.text")}</p>
      <form onSubmit={submit} aria-busy={busy}>
        <Field id="sms-code" label={t("sms.code")} value={code} onChange={setCode} inputMode="numeric" autoComplete="one-time-code" autoFocus />
        <ErrorBox error={error} />
        <div className="buttons">
          <button type="button" onClick={props.onCancel} disabled={busy}>
            {t("common.cancel")}
          </button>
          <button type="submit" className="primary" id="sms-submit" disabled={busy}>
            {busy ? t("common.working") : t("login.submit")}
          </button>
        </div>
      </form>
      <HelpdeskHint />
    </main>
  );
}
