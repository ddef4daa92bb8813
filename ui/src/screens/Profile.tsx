// The address the bank writes to (changed only by a code sent to the new one), the language
// of its mail, and the notices the user does not want (security notices always go).
import { useEffect, useState, type FormEvent } from "react";
import type { AppError, Language, NoticeKind, Profile } from "../bindings";
import { asAppError, commands, run } from "../api";
import { ErrorBox, Field, Notice, ScreenTitle } from "../components";
import { useI18n } from "../context";
import { required } from "../logic/forms";
import { NOTICE_KINDS, isSecurityNotice } from "../logic/profile";

export function ProfileScreen(props: { welcome?: boolean }) {
  const { t } = useI18n();
  const [profile, setProfile] = useState<Profile | null>(null);
  const [error, setError] = useState<AppError | string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [email, setEmail] = useState("");
  const [sentTo, setSentTo] = useState<string | null>(null);
  const [code, setCode] = useState("");
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    run(commands.profile()).then(setProfile, (e) => setError(asAppError(e)));
  }, []);

  const act = async (what: () => Promise<void>) => {
    setError(null);
    setNote(null);
    setBusy(true);
    try {
      await what();
    } catch (err) {
      setError(asAppError(err));
    } finally {
      setBusy(false);
    }
  };

  const sendCode = (e: FormEvent) => {
    e.preventDefault();
    if (required(email)) return setError(t("common.required"));
    void act(async () => {
      setSentTo(await run(commands.setEmail(email.trim())));
      setCode("");
    });
  };
  const confirm = (e: FormEvent) => {
    e.preventDefault();
    if (required(code)) return setError(t("common.required"));
    void act(async () => {
      const p = await run(commands.confirmEmail(code.trim()));
      setProfile(p);
      setSentTo(null);
      setEmail("");
      setCode("");
      setNote(t("profile.confirmed", { email: p.email ?? "" }));
    });
  };
  const save = (language: Language | null, quiet: NoticeKind[]) =>
    void act(async () => {
      setProfile(await run(commands.setPreferences(language, quiet)));
      setNote(t("profile.saved"));
    });

  return (
    <section data-test="profile">
      <ScreenTitle>{t("profile.title")}</ScreenTitle>
      {props.welcome && !profile?.email && <Notice>{t("profile.welcome")}</Notice>}
      {note && (
        <p className="notice" role="status" data-test="profile-note">
          {note}
        </p>
      )}
      <ErrorBox error={error} />
      {profile && (
        <>
          {!profile.bank_sends_mail && <Notice>{t("profile.noMail")}</Notice>}
          <p data-test="profile-email">
            {profile.email ? t("profile.current", { email: profile.email }) : t("profile.noEmail")}
          </p>
          {profile.pending_email && !sentTo && <p className="hint">{t("profile.pending", { to: profile.pending_email })}</p>}
          <form onSubmit={sendCode} aria-busy={busy}>
            <Field id="profile-new-email" label={t("profile.newEmail")} value={email} onChange={setEmail} autoComplete="email" />
            <button type="submit" id="profile-send-code" disabled={busy}>
              {t("profile.sendCode")}
            </button>
          </form>
          {(sentTo || profile.pending_email) && (
            <form onSubmit={confirm} aria-busy={busy}>
              {sentTo && (
                <p className="notice" role="status" data-test="profile-code-sent">
                  {t("profile.codeSent", { to: sentTo })}
                </p>
              )}
              <Field id="profile-code" label={t("profile.code")} value={code} onChange={setCode} inputMode="numeric" autoComplete="one-time-code" />
              <button type="submit" className="primary" id="profile-confirm" disabled={busy}>
                {t("profile.confirm")}
              </button>
            </form>
          )}
          <fieldset>
            <legend>{t("profile.language")}</legend>
            <select
              id="profile-language"
              value={profile.language ?? "both"}
              disabled={busy}
              onChange={(e) => save(e.target.value === "both" ? null : (e.target.value as Language), profile.quiet)}
            >
              <option value="both">{t("profile.both")}</option>
              <option value="uk">Українська</option>
              <option value="en">English</option>
            </select>
          </fieldset>
          <fieldset>
            <legend>{t("profile.notices")}</legend>
            {NOTICE_KINDS.map((k) => (
              <label className="check" key={k}>
                <input
                  type="checkbox"
                  id={`notice-${k}`}
                  checked={isSecurityNotice(k) || !profile.quiet.includes(k)}
                  disabled={busy || isSecurityNotice(k)}
                  onChange={(e) =>
                    save(profile.language, e.target.checked ? profile.quiet.filter((q) => q !== k) : [...profile.quiet, k])
                  }
                />{" "}
                {t(`notice.${k}`)}
                {isSecurityNotice(k) && <span className="hint"> — {t("profile.security")}</span>}
              </label>
            ))}
          </fieldset>
        </>
      )}
    </section>
  );
}
