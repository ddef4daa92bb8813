// The first-login wizard and the recovery wizard. Each collects everything first, checks the
// policies through the app, and only then runs the one command that talks to the bank, so
// that a mistake on a later step never spends a one-time password.
import { useState, type FormEvent } from "react";
import type { AppError, KeyCertificate, SessionView } from "../bindings";
import { asAppError, commands, run } from "../api";
import { isToken } from "../logic/drives";
import {
  DrivePicker,
  ErrorBox,
  Field,
  HelpdeskHint,
  KeyLetterButton,
  ProgressPanel,
  ScreenTitle,
  useDrives,
  useProblemText,
  useProgress,
} from "../components";
import { formatDate, useI18n } from "../context";
import { confirmed, required } from "../logic/forms";

function Steps({ now, total }: { now: number; total: number }) {
  return (
    <p className="steps" aria-live="polite">
      {now} / {total}
    </p>
  );
}

export function FirstLoginWizard(props: { remembered: string | null; onDone: (login: string) => void; onCancel: () => void }) {
  const { t, lang } = useI18n();
  const [step, setStep] = useState(1);
  const [login, setLogin] = useState(props.remembered ?? "");
  const [initial, setInitial] = useState("");
  const [newPassword, setNewPassword] = useState("");
  const [newAgain, setNewAgain] = useState("");
  const [keyPassword, setKeyPassword] = useState("");
  const [keyAgain, setKeyAgain] = useState("");
  const [error, setError] = useState<AppError | string | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<KeyCertificate | null>(null);
  const { drives, tokens, chosen, choose } = useDrives(login);
  const onToken = isToken(chosen);
  const progress = useProgress();

  const problem = useProblemText();

  const next = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      if (step === 1) {
        const p = problem(required(login, initial));
        if (p) return setError(p);
      } else if (step === 2) {
        const p = problem(confirmed(newPassword, newAgain));
        if (p) return setError(p);
        await run(commands.checkNewPassword(login, newPassword));
      } else if (step === 3) {
        // A token's PIN is the token's own: typed once, no key-password policy.
        const p = problem(required(chosen)) ?? problem(onToken ? required(keyPassword) : confirmed(keyPassword, keyAgain));
        if (p) return setError(p);
        if (!onToken) await run(commands.checkNewKeyPassword(keyPassword));
      } else {
        setBusy(true);
        const cert = await run(commands.firstLogin(login, initial, newPassword, chosen, keyPassword, progress.start()));
        setInitial("");
        setNewPassword("");
        setNewAgain("");
        setKeyPassword("");
        setKeyAgain("");
        setDone(cert);
        return;
      }
      setStep(step + 1);
    } catch (err) {
      setError(asAppError(err));
    } finally {
      setBusy(false);
      progress.clear();
    }
  };

  if (done) {
    return (
      <main className="card narrow" data-test="first-login-done">
        <ScreenTitle>{t("first.done")}</ScreenTitle>
        <p>{t("first.doneText", { serial: done.serial, date: formatDate(done.not_after, lang) })}</p>
        <KeyLetterButton login={login} drive={chosen ?? ""} />
        <button type="button" className="primary" id="first-login-to-login" onClick={() => props.onDone(login)}>
          {t("first.toLogin")}
        </button>
      </main>
    );
  }

  return (
    <main className="card narrow" data-test="first-login">
      <ScreenTitle>{t("first.title")}</ScreenTitle>
      <Steps now={step} total={4} />
      <form onSubmit={next} aria-busy={busy}>
        {step === 1 && (
          <fieldset>
            <legend>{t("first.step1")}</legend>
            <Field id="fl-login" label={t("login.login")} value={login} onChange={setLogin} autoFocus />
            <Field id="fl-initial" label={t("first.initialPassword")} type="password" value={initial} onChange={setInitial} />
          </fieldset>
        )}
        {step === 2 && (
          <fieldset>
            <legend>{t("first.step2")}</legend>
            <Field id="fl-new" label={t("first.newPassword")} type="password" value={newPassword} onChange={setNewPassword} autoFocus autoComplete="new-password" />
            <Field id="fl-new-again" label={t("first.newPasswordAgain")} type="password" value={newAgain} onChange={setNewAgain} autoComplete="new-password" />
          </fieldset>
        )}
        {step === 3 && (
          <fieldset>
            <legend>{t("first.step3")}</legend>
            <DrivePicker drives={drives} tokens={tokens} chosen={chosen} choose={choose} warnFixed={!onToken} />
            {onToken ? (
              <Field id="fl-key" label={t("login.tokenPin")} type="password" value={keyPassword} onChange={setKeyPassword} />
            ) : (
              <>
                <Field id="fl-key" label={t("login.keyPassword")} type="password" value={keyPassword} onChange={setKeyPassword} hint={t("first.keyPasswordHint")} />
                <Field id="fl-key-again" label={t("first.keyPasswordAgain")} type="password" value={keyAgain} onChange={setKeyAgain} />
              </>
            )}
          </fieldset>
        )}
        {step === 4 && (
          <fieldset>
            <legend>{t("first.step4")}</legend>
            <p>{t("first.review", { drive: chosen })}</p>
          </fieldset>
        )}
        <ErrorBox error={error} />
        <ProgressPanel steps={progress.steps} busy={busy} />
        <div className="buttons">
          <button type="button" onClick={() => (step === 1 ? props.onCancel() : setStep(step - 1))} disabled={busy}>
            {step === 1 ? t("common.cancel") : t("common.back")}
          </button>
          <button type="submit" className="primary" id="wizard-next" disabled={busy}>
            {step === 4 ? t("first.create") : t("common.next")}
          </button>
        </div>
      </form>
    </main>
  );
}

export function RecoveryWizard(props: { login: string; drive: string; onDone: (login: string) => void; onCancel: () => void }) {
  const { t, lang } = useI18n();
  const [step, setStep] = useState(1);
  const [login, setLogin] = useState(props.login);
  const [password, setPassword] = useState("");
  const [emergency, setEmergency] = useState("");
  const [keyPassword, setKeyPassword] = useState("");
  const [keyAgain, setKeyAgain] = useState("");
  const [error, setError] = useState<AppError | string | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<KeyCertificate | null>(null);
  const { drives, tokens, chosen, choose } = useDrives(login, props.drive || null);
  const onToken = isToken(chosen);
  const progress = useProgress();
  const problem = useProblemText();

  const next = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      if (step === 1) {
        if (required(login, password, emergency)) return setError(t("common.required"));
        setStep(2);
        return;
      }
      const p = problem(required(chosen) ?? (onToken ? required(keyPassword) : confirmed(keyPassword, keyAgain)));
      if (p) return setError(p);
      if (!onToken) await run(commands.checkNewKeyPassword(keyPassword));
      setBusy(true);
      const cert = await run(commands.recoverKey(login, password, emergency, chosen, keyPassword, progress.start()));
      setPassword("");
      setEmergency("");
      setKeyPassword("");
      setKeyAgain("");
      setDone(cert);
    } catch (err) {
      setError(asAppError(err));
    } finally {
      setBusy(false);
      progress.clear();
    }
  };

  if (done) {
    return (
      <main className="card narrow" data-test="recovery-done">
        <ScreenTitle>{t("recovery.title")}</ScreenTitle>
        <p>{t("recovery.done", { serial: done.serial, date: formatDate(done.not_after, lang) })}</p>
        <KeyLetterButton login={login} drive={chosen ?? ""} />
        <button type="button" className="primary" id="recovery-to-login" onClick={() => props.onDone(login)}>
          {t("first.toLogin")}
        </button>
      </main>
    );
  }

  return (
    <main className="card narrow" data-test="recovery">
      <ScreenTitle>{t("recovery.title")}</ScreenTitle>
      <Steps now={step} total={2} />
      <p>{t("recovery.intro")}</p>
      <HelpdeskHint />
      <form onSubmit={next} aria-busy={busy}>
        {step === 1 ? (
          <fieldset>
            <legend>{t("recovery.title")}</legend>
            <Field id="rc-login" label={t("login.login")} value={login} onChange={setLogin} autoFocus={!login} />
            <Field id="rc-password" label={t("login.password")} type="password" value={password} onChange={setPassword} autoFocus={!!login} />
            <Field id="rc-emergency" label={t("recovery.emergency")} type="password" value={emergency} onChange={setEmergency} />
          </fieldset>
        ) : (
          <fieldset>
            <legend>{t("first.step3")}</legend>
            <DrivePicker drives={drives} tokens={tokens} chosen={chosen} choose={choose} warnFixed={!onToken} />
            {onToken ? (
              <Field id="rc-key" label={t("login.tokenPin")} type="password" value={keyPassword} onChange={setKeyPassword} />
            ) : (
              <>
                <Field id="rc-key" label={t("recovery.newKeyPassword")} type="password" value={keyPassword} onChange={setKeyPassword} hint={t("first.keyPasswordHint")} />
                <Field id="rc-key-again" label={t("recovery.newKeyPasswordAgain")} type="password" value={keyAgain} onChange={setKeyAgain} />
              </>
            )}
          </fieldset>
        )}
        <ErrorBox error={error} />
        <ProgressPanel steps={progress.steps} busy={busy} />
        <div className="buttons">
          <button type="button" onClick={() => (step === 1 ? props.onCancel() : setStep(1))} disabled={busy}>
            {step === 1 ? t("common.cancel") : t("common.back")}
          </button>
          <button type="submit" className="primary" id="recovery-next" disabled={busy}>
            {step === 2 ? t("recovery.start") : t("common.next")}
          </button>
        </div>
      </form>
    </main>
  );
}

/** "Forgot the password?": with the key, a code by mail; with the code, a new password. The
 * new password is checked against the policy before the code is spent. */
export function ResetPasswordWizard(props: {
  login: string;
  drive: string;
  onLoggedIn: (s: SessionView) => void;
  onCancel: () => void;
}) {
  const { t } = useI18n();
  const [login, setLogin] = useState(props.login);
  const [keyPassword, setKeyPassword] = useState("");
  const [sentTo, setSentTo] = useState<string | null>(null);
  const [code, setCode] = useState("");
  const [newPassword, setNewPassword] = useState("");
  const [newAgain, setNewAgain] = useState("");
  const [error, setError] = useState<AppError | string | null>(null);
  const [busy, setBusy] = useState(false);
  const { drives, tokens, chosen, choose } = useDrives(login, props.drive || null, () =>
    document.getElementById("rs-key")?.focus(),
  );
  const problem = useProblemText();

  const next = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      if (sentTo === null) {
        if (required(login, chosen, keyPassword)) return setError(t("common.required"));
        setBusy(true);
        setSentTo(await run(commands.forgotPassword(login, chosen, keyPassword)));
        return;
      }
      const p = problem(required(code) ?? confirmed(newPassword, newAgain));
      if (p) return setError(p);
      await run(commands.checkNewPassword(login, newPassword));
      setBusy(true);
      const session = await run(commands.resetPassword(login, chosen, keyPassword, code.trim(), newPassword));
      setKeyPassword("");
      setCode("");
      setNewPassword("");
      setNewAgain("");
      props.onLoggedIn(session);
    } catch (err) {
      setError(asAppError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="card narrow" data-test="reset-password">
      <ScreenTitle>{t("reset.title")}</ScreenTitle>
      <Steps now={sentTo === null ? 1 : 2} total={2} />
      <p>{t("reset.intro")}</p>
      <HelpdeskHint />
      <form onSubmit={next} aria-busy={busy}>
        {sentTo === null ? (
          <fieldset>
            <legend>{t("reset.title")}</legend>
            <Field id="rs-login" label={t("login.login")} value={login} onChange={setLogin} autoFocus={!login} />
            <DrivePicker drives={drives} tokens={tokens} chosen={chosen} choose={choose} />
            <Field
              id="rs-key"
              label={isToken(chosen) ? t("login.tokenPin") : t("login.keyPassword")}
              type="password"
              value={keyPassword}
              onChange={setKeyPassword}
              autoFocus={!!login}
            />
          </fieldset>
        ) : (
          <fieldset>
            <legend>{t("reset.title")}</legend>
            <p className="notice" role="status" data-test="reset-sent">
              {t("reset.sent", { to: sentTo })}
            </p>
            <Field id="rs-code" label={t("reset.code")} value={code} onChange={setCode} inputMode="numeric" autoComplete="one-time-code" autoFocus />
            <Field id="rs-new" label={t("reset.newPassword")} type="password" value={newPassword} onChange={setNewPassword} autoComplete="new-password" />
            <Field id="rs-new-again" label={t("reset.newPasswordAgain")} type="password" value={newAgain} onChange={setNewAgain} autoComplete="new-password" />
          </fieldset>
        )}
        <ErrorBox error={error} />
        <div className="buttons">
          <button type="button" onClick={props.onCancel} disabled={busy}>
            {t("common.cancel")}
          </button>
          <button type="submit" className="primary" id="reset-next" disabled={busy}>
            {busy ? t("common.working") : sentTo === null ? t("reset.send") : t("reset.submit")}
          </button>
        </div>
      </form>
    </main>
  );
}
