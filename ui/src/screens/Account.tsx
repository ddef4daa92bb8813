// The signed-in user's own things: key and certificate with renewal, one-time codes, the
// password, settings.
import { useState, type FormEvent } from "react";
import type { AppError, KeyCertificate, SessionView, StartInfo, TotpEnrollmentView, Remembered } from "../bindings";
import { asAppError, commands, run } from "../api";
import { ErrorBox, Field, KeyLetterButton, Notice, ProgressPanel, ReminderBanner, ScreenTitle, useProblemText, useProgress } from "../components";
import { formatDate, useI18n } from "../context";
import { confirmed, required } from "../logic/forms";
import type { Lang } from "../i18n";

export function KeyScreen({ session }: { session: SessionView }) {
  const { t, lang } = useI18n();
  const [keyPassword, setKeyPassword] = useState("");
  const [error, setError] = useState<AppError | string | null>(null);
  const [busy, setBusy] = useState(false);
  const [renewed, setRenewed] = useState<KeyCertificate | null>(null);
  const progress = useProgress();
  const cert = session.certificate;

  const renew = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    if (required(keyPassword)) return setError(t("common.required"));
    setBusy(true);
    try {
      setRenewed(await run(commands.renewKey(keyPassword, progress.start())));
    } catch (err) {
      setError(asAppError(err));
    } finally {
      setKeyPassword("");
      setBusy(false);
      progress.clear();
    }
  };

  return (
    <section data-test="key">
      <ScreenTitle>{t("key.title")}</ScreenTitle>
      <ReminderBanner reminder={session.reminder} onRenew={() => document.getElementById("renew-password")?.focus()} />
      {!session.key_session || !cert ? (
        <p>{t("key.noKey")}</p>
      ) : (
        <>
          <dl className="summary">
            <dt>{t("key.drive")}</dt>
            <dd className="mono">{session.drive}</dd>
            <dt>{t("key.serial")}</dt>
            <dd className="mono">{cert.serial}</dd>
            <dt>{t("key.expires")}</dt>
            <dd data-test="not-after">
              {formatDate(cert.not_after, lang)}
              {session.reminder && ` (${t("key.daysLeft", { days: session.reminder.days_left })})`}
            </dd>
          </dl>
          <h2>{t("key.renewTitle")}</h2>
          <p>{t("key.renewText")}</p>
          {renewed ? (
            <>
              <Notice>{t("key.renewed", { serial: renewed.serial, date: formatDate(renewed.not_after, lang) })}</Notice>
              <KeyLetterButton login={session.login} drive={session.drive ?? ""} />
            </>
          ) : !cert.renewal_open ? (
            <p className="hint">{t("key.renewClosed")}</p>
          ) : (
            <form onSubmit={renew} aria-busy={busy}>
              <Field
                id="renew-password"
                label={session.on_token ? t("login.tokenPin") : t("login.keyPassword")}
                type="password"
                value={keyPassword}
                onChange={setKeyPassword}
              />
              <ErrorBox error={error} />
              <ProgressPanel steps={progress.steps} busy={busy} />
              <button type="submit" className="primary" id="renew-submit" disabled={busy}>
                {t("key.renew")}
              </button>
            </form>
          )}
        </>
      )}
    </section>
  );
}

export function TotpScreen({ enrolled, onEnrolled }: { enrolled: boolean; onEnrolled: () => void }) {
  const { t } = useI18n();
  const [enrollment, setEnrollment] = useState<TotpEnrollmentView | null>(null);
  const [code, setCode] = useState("");
  const [error, setError] = useState<AppError | string | null>(null);
  const [done, setDone] = useState(false);

  const start = async () => {
    setError(null);
    try {
      setEnrollment(await run(commands.totpEnroll()));
    } catch (err) {
      setError(asAppError(err));
    }
  };
  const confirm = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      await run(commands.totpConfirm(code));
      setEnrollment(null);
      setDone(true);
      onEnrolled();
    } catch (err) {
      setError(asAppError(err));
    }
  };
  // The QR code is shown as an image (a data: URL), never inserted as markup.
  const qr = enrollment ? `data:image/svg+xml;base64,${btoa(enrollment.qr_svg)}` : null;
  return (
    <section data-test="totp">
      <ScreenTitle>{t("totp.title")}</ScreenTitle>
      <p>{t("totp.intro")}</p>
      {(enrolled || done) && <Notice>{done ? t("totp.done") : t("totp.enrolled")}</Notice>}
      {!enrollment ? (
        <button type="button" onClick={start} id="totp-start">
          {t("totp.start")}
        </button>
      ) : (
        <form onSubmit={confirm}>
          <p>{t("totp.scan")}</p>
          {qr && <img className="qr" src={qr} alt={t("totp.qrAlt")} width={240} height={240} />}
          <details>
            <summary>{t("totp.manual")}</summary>
            <code className="mono small" data-test="totp-uri">
              {enrollment.uri}
            </code>
          </details>
          <Field id="totp-code" label={t("totp.code")} value={code} onChange={setCode} inputMode="numeric" autoComplete="one-time-code" />
          <button type="submit" className="primary">
            {t("totp.confirm")}
          </button>
        </form>
      )}
      <ErrorBox error={error} />
    </section>
  );
}

export function ChangePasswordForm({ login, forced, onChanged }: { login: string; forced: boolean; onChanged: (s: SessionView) => void }) {
  const { t } = useI18n();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [again, setAgain] = useState("");
  const [error, setError] = useState<AppError | string | null>(null);
  const [done, setDone] = useState(false);
  const problem = useProblemText();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setDone(false);
    const p = problem(required(current) ?? confirmed(next, again));
    if (p) return setError(p);
    try {
      await run(commands.checkNewPassword(login, next));
      const s = await run(commands.changePassword(current, next));
      setCurrent("");
      setNext("");
      setAgain("");
      setDone(true);
      onChanged(s);
    } catch (err) {
      setError(asAppError(err));
    }
  };
  return (
    <form onSubmit={submit} data-test="change-password">
      {forced && <Notice>{t("change.forced")}</Notice>}
      <Field id="cp-current" label={t("change.current")} type="password" value={current} onChange={setCurrent} autoComplete="current-password" autoFocus={forced} />
      <Field id="cp-new" label={t("first.newPassword")} type="password" value={next} onChange={setNext} autoComplete="new-password" />
      <Field id="cp-again" label={t("first.newPasswordAgain")} type="password" value={again} onChange={setAgain} autoComplete="new-password" />
      <ErrorBox error={error} />
      {done && <Notice>{t("change.done")}</Notice>}
      <button type="submit" className="primary" id="cp-submit">
        {t("change.title")}
      </button>
    </form>
  );
}

export function LanguagePicker() {
  const { t, lang, setLang } = useI18n();
  return (
    <div className="field inline">
      <label htmlFor="lang">{t("lang.label")}</label>
      <select id="lang" value={lang} onChange={(e) => setLang(e.target.value as Lang)}>
        <option value="en">English</option>
        <option value="uk">Українська</option>
      </select>
    </div>
  );
}

export function SettingsScreen(props: {
  start: StartInfo;
  remembered: Remembered;
  onForgotten: () => void;
  session: SessionView | null;
  onSaved: () => void;
  onBack?: () => void;
  onPasswordChanged: (s: SessionView) => void;
}) {
  const { t } = useI18n();
  const [server, setServer] = useState(props.start.settings?.server ?? "");
  const [bankCa, setBankCa] = useState(props.start.settings?.bank_ca ?? "");
  const remembered = props.remembered;
  const [error, setError] = useState<AppError | string | null>(props.start.settings_error ?? null);
  const [saved, setSaved] = useState(false);
  const save = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setSaved(false);
    try {
      await run(commands.saveSettings(server, bankCa));
      setSaved(true);
      props.onSaved();
    } catch (err) {
      setError(asAppError(err));
    }
  };
  const forget = async () => {
    try {
      await run(commands.forgetRemembered());
      props.onForgotten();
    } catch (err) {
      setError(asAppError(err));
    }
  };
  return (
    <section className={props.session ? "" : "card narrow"} data-test="settings">
      <ScreenTitle>{t("settings.title")}</ScreenTitle>
      <LanguagePicker />
      {props.session && (
        <>
          <h2>{t("change.title")}</h2>
          <ChangePasswordForm login={props.session.login} forced={false} onChanged={props.onPasswordChanged} />
        </>
      )}
      <h2>{t("settings.bank")}</h2>
      <form onSubmit={save}>
        <Field id="set-server" label={t("settings.server")} value={server} onChange={setServer} />
        <Field id="set-ca" label={t("settings.bankCa")} value={bankCa} onChange={setBankCa} />
        <ErrorBox error={error} />
        {saved && <Notice>{t("settings.saved")}</Notice>}
        <div className="buttons">
          {props.onBack && (
            <button type="button" id="settings-back" onClick={props.onBack}>
              {t("common.back")}
            </button>
          )}
          <button type="submit" className="primary">
            {t("common.save")}
          </button>
        </div>
      </form>
      <h2>{t("settings.remembered")}</h2>
      <p className="hint">{t("settings.rememberedText")}</p>
      {remembered.login || remembered.drive ? (
        <p data-test="remembered">
          {remembered.login} {remembered.drive && `· ${remembered.drive}`}{" "}
          <button type="button" onClick={forget}>
            {t("settings.forget")}
          </button>
        </p>
      ) : (
        <p>{t("settings.nothingRemembered")}</p>
      )}
      <p className="hint">{t("settings.version", { version: props.start.version })}</p>
    </section>
  );
}
