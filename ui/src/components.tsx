// Building blocks every screen uses: labelled fields, the error box, the progress panel,
// the drive picker and the renewal banner. Plain HTML controls, so that the keyboard and
// screen readers work as the platform does.
import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import { Channel } from "@tauri-apps/api/core";
import type { AppError, DriveView, LetterView, Reminder, Step, TokenView } from "./bindings";
import { asAppError, commands, run } from "./api";
import { useBank, useI18n } from "./context";
import type { Key } from "./i18n";
import type { FormProblem } from "./logic/forms";
import { formatBytes, keyedMedia, newlyKeyed, preselect, sameDrives } from "./logic/drives";
import { dismissible, reminderLevel } from "./logic/reminder";
import { sendsToBank } from "./logic/bank";

export function Field(props: {
  id: string;
  label: string;
  value: string;
  onChange: (v: string) => void;
  type?: "text" | "password";
  autoComplete?: string;
  autoFocus?: boolean;
  hint?: string;
  inputMode?: "numeric" | "decimal" | "text";
}) {
  const hintId = `${props.id}-hint`;
  return (
    <div className="field">
      <label htmlFor={props.id}>{props.label}</label>
      <input
        id={props.id}
        type={props.type ?? "text"}
        value={props.value}
        autoComplete={props.autoComplete ?? "off"}
        autoFocus={props.autoFocus}
        spellCheck={false}
        inputMode={props.inputMode}
        aria-describedby={props.hint ? hintId : undefined}
        onChange={(e) => props.onChange(e.target.value)}
      />
      {props.hint && (
        <p id={hintId} className="hint">
          {props.hint}
        </p>
      )}
    </div>
  );
}

export function ErrorBox({ error, children }: { error: AppError | string | null; children?: ReactNode }) {
  const { t, lang } = useI18n();
  if (!error) return null;
  if (typeof error === "string") {
    return (
      <div className="error" role="alert" data-test="error">
        {error}
      </div>
    );
  }
  // The login refusal is generic by design: no detail that could say which factor was wrong.
  const generic = error.code === "credentials" || error.code === "locked";
  return (
    <div className="error" role="alert" data-test="error" data-code={error.code}>
      <strong>{t(`error.${error.code}` as Key)}</strong>
      {!generic && error.message && lang === "en" && <span className="detail"> {error.message}</span>}
      {/* The bank and the library speak English: in another language the detail is there
          for the helpdesk, folded, marked as English, never mixed into the sentence. */}
      {!generic && error.message && lang !== "en" && (
        <details className="detail" data-test="error-detail">
          <summary>{t("error.detail")}</summary>
          <span lang="en">{error.message}</span>
        </details>
      )}
      {children}
      {sendsToBank(error) && <HelpdeskHint />}
    </div>
  );
}

/** "Call the helpdesk of {bank}: {phone}", wherever a message sends the user to the bank;
 * nothing when the bank has not said how to reach it. */
export function HelpdeskHint() {
  const { t } = useI18n();
  const bank = useBank();
  if (!bank || (!bank.phone && !bank.email)) return null;
  return (
    <p className="helpdesk-hint" data-test="helpdesk-hint">
      {bank.phone
        ? t("bank.call", { bank: bank.name, phone: bank.phone })
        : t("bank.write", { bank: bank.name, email: bank.email ?? "" })}
      {bank.hours && ` (${bank.hours})`}
    </p>
  );
}

/** The bank and its helpdesk, at the lower left of the login screen. */
export function BankFooter() {
  const { t } = useI18n();
  const bank = useBank();
  if (!bank) return null;
  const rows: [Key, string | undefined][] = [
    ["bank.helpdesk", bank.phone],
    ["bank.hours", bank.hours],
    ["bank.email", bank.email],
    ["bank.website", bank.website],
  ];
  return (
    <footer className="bank-footer" data-test="bank-info" aria-label={t("bank.about")}>
      <strong data-test="bank-name">{bank.name}</strong>
      {rows
        .filter(([, value]) => value)
        .map(([label, value]) => (
          <span key={label} data-test={label}>
            {t(label)}: {value}
          </span>
        ))}
    </footer>
  );
}

/** A form problem's text, or null when there is none. */
export function useProblemText() {
  const { t } = useI18n();
  return (p: FormProblem) => (p ? t(p === "required" ? "common.required" : "common.mismatch") : null);
}

export function Notice({ children }: { children: ReactNode }) {
  return (
    <div className="notice" role="status" data-test="notice">
      {children}
    </div>
  );
}

/** The steps a long command reports, shown as they come. */
export function useProgress() {
  const [steps, setSteps] = useState<Step[]>([]);
  const start = () => {
    setSteps([]);
    const channel = new Channel<Step>();
    channel.onmessage = (step) => setSteps((s) => [...s, step]);
    return channel;
  };
  return { steps, start, clear: () => setSteps([]) };
}

export function ProgressPanel({ steps, busy }: { steps: Step[]; busy: boolean }) {
  const { t } = useI18n();
  if (!busy) return null;
  return (
    <div className="progress" aria-live="polite" data-test="progress">
      <progress aria-label={t("progress.title")} />
      <ol>
        {steps.map((s, i) => (
          <li key={s} className={i === steps.length - 1 ? "current" : "done"}>
            {t(`step.${s}` as Key)}
          </li>
        ))}
      </ol>
    </div>
  );
}

/** The drives, polled every 2 s so that a USB drive appears and disappears as it is plugged in and pulled out. */
export function useDrives(login: string, remembered?: string | null, onArrived?: (medium: string) => void) {
  const [drives, setDrives] = useState<DriveView[]>([]);
  const [tokens, setTokens] = useState<TokenView[]>([]);
  const [chosen, setChosen] = useState<string>("");
  const touched = useRef(false);
  const arrivedRef = useRef(onArrived);
  arrivedRef.current = onArrived;
  useEffect(() => {
    let live = true;
    // The media holding a key for this login at the last poll; null before the first.
    let keyed: Set<string> | null = null;
    const poll = async () => {
      try {
        const next = await run(commands.listDrives(login || null));
        // Tokens are listed where a PKCS#11 module is installed; a failing module hides them.
        let nextTokens: TokenView[] = [];
        try {
          nextTokens = await run(commands.listTokens(login || null));
        } catch {
          // no token list this time
        }
        if (!live) return;
        setDrives((prev) => (sameDrives(prev, next) ? prev : next));
        setTokens((prev) => (JSON.stringify(prev) === JSON.stringify(nextTokens) ? prev : nextTokens));
        // A drive or token plugged in with a key for this login is what the user means:
        // chosen, whatever was chosen before.
        const arrived = newlyKeyed(keyed, next, nextTokens);
        keyed = keyedMedia(next, nextTokens);
        if (arrived) {
          touched.current = true;
          setChosen(arrived);
          arrivedRef.current?.(arrived);
        } else if (!touched.current) {
          const pick = preselect(next, remembered, nextTokens);
          if (pick) setChosen(pick);
        }
      } catch {
        // A failed listing keeps the previous list; the next poll tries again.
      }
    };
    void poll();
    const timer = setInterval(poll, 2000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [login, remembered]);
  const choose = (path: string) => {
    touched.current = true;
    setChosen(path);
  };
  return { drives, tokens, chosen, choose };
}

/** Whether a key written to `path` gets the fixed-disk warning: the library decides (the CLI
 * asks the same function). The answer for an older path is dropped when a newer one is asked. */
function useFixedDiskWarning(path: string): boolean {
  const [warn, setWarn] = useState(false);
  useEffect(() => {
    let current = true;
    if (!path) {
      setWarn(false);
      return;
    }
    run(commands.fixedDiskWarning(path))
      .then((w) => current && setWarn(w))
      .catch(() => current && setWarn(false));
    return () => {
      current = false;
    };
  }, [path]);
  return warn;
}

export function DrivePicker(props: {
  drives: DriveView[];
  tokens?: TokenView[];
  chosen: string;
  choose: (path: string) => void;
  warnFixed?: boolean;
}) {
  const { t } = useI18n();
  const groupId = useId();
  // What is typed in the folder field is the user's own text: it is not replaced when it
  // happens to match a listed drive (typing "/" on the way to "/media/…").
  const [typed, setTyped] = useState<string | null>(null);
  // Chosen from elsewhere (a drive just plugged in with the key): the typed text gives way.
  useEffect(() => {
    if (typed !== null && typed !== props.chosen) setTyped(null);
  }, [props.chosen, typed]);
  const listed =
    props.drives.some((d) => d.drive.mount_path === props.chosen) || (props.tokens ?? []).some((k) => k.medium === props.chosen);
  const folderText = typed ?? (listed ? "" : props.chosen);
  const pickRadio = (path: string) => {
    setTyped(null);
    props.choose(path);
  };
  const type = (text: string) => {
    setTyped(text);
    props.choose(text);
  };
  const browse = async () => {
    const folder = await run(commands.pickFolder());
    if (folder) type(folder);
  };
  const warnFixed = useFixedDiskWarning(props.warnFixed ? props.chosen : "");
  return (
    <fieldset className="drives" data-test="drives">
      <legend id={groupId}>{t("drive.label")}</legend>
      {props.drives.length === 0 && <p className="hint">{t("drive.none")}</p>}
      {props.drives.map((d) => (
        <label key={d.drive.mount_path} className="drive">
          <input
            type="radio"
            name={groupId}
            value={d.drive.mount_path}
            checked={typed === null && props.chosen === d.drive.mount_path}
            onChange={() => pickRadio(d.drive.mount_path)}
          />
          <span className="drive-name">{d.drive.label || d.drive.mount_path}</span>
          <span className="drive-meta">
            {d.drive.removable ? t("drive.removable") : t("drive.fixed")} · {d.drive.mount_path} ·{" "}
            {t("drive.free", { free: formatBytes(d.drive.free_bytes) })}
            {d.drive.read_only && ` · ${t("drive.readOnly")}`}
            {d.has_key && <span className="badge ok"> {t("drive.hasKey")}</span>}
          </span>
        </label>
      ))}
      {(props.tokens ?? []).map((k) => (
        <label key={k.medium} className="drive" data-test="token">
          <input
            type="radio"
            name={groupId}
            value={k.medium}
            checked={typed === null && props.chosen === k.medium}
            onChange={() => pickRadio(k.medium)}
          />
          <span className="drive-name">{k.token.label}</span>
          <span className="drive-meta">
            {t("drive.token")} · {k.token.model} · {t("drive.serial", { serial: k.token.serial })}
            {k.has_key && <span className="badge ok"> {t("drive.hasKey")}</span>}
          </span>
        </label>
      ))}
      <div className="field inline">
        <label htmlFor="drive-path">{t("drive.other")}</label>
        <input id="drive-path" type="text" spellCheck={false} value={folderText} onChange={(e) => type(e.target.value)} />
        <button type="button" onClick={browse}>
          {t("drive.browse")}
        </button>
      </div>
      {warnFixed && (
        <p className="warning" role="note" data-test="fixed-disk-warning">
          {t("drive.fixedWarning")}
        </p>
      )}
    </fieldset>
  );
}

export function ReminderBanner({ reminder, onRenew }: { reminder: Reminder | null; onRenew: () => void }) {
  const { t } = useI18n();
  const [hidden, setHidden] = useState(false);
  if (!reminder) return null;
  const level = reminderLevel(reminder);
  if (hidden && dismissible(level)) return null;
  const loud = level === "urgent" || level === "expired" || level === "warning";
  return (
    <div className={`banner ${level}`} role={loud ? "alert" : "status"} data-test="reminder" data-level={level}>
      <span>{t(`reminder.${level}` as Key, { days: reminder.days_left })}</span>
      {level !== "expired" && (
        <button type="button" onClick={onRenew}>
          {t("reminder.renew")}
        </button>
      )}
      {dismissible(level) && (
        <button type="button" className="quiet" onClick={() => setHidden(true)}>
          {t("reminder.dismiss")}
        </button>
      )}
    </div>
  );
}

/** Moves focus to a screen's heading when the screen changes, for keyboard and screen-reader users. */
export function ScreenTitle({ children }: { children: ReactNode }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  return (
    <h1 tabIndex={-1} ref={ref}>
      {children}
    </h1>
  );
}

/** "Save the key letter": the PDF to print, sign and bring to the bank, which activates a new
 * key from it (where the bank asks for letters). */
export function KeyLetterButton({ login, drive }: { login: string; drive: string }) {
  const { t } = useI18n();
  const [saved, setSaved] = useState<LetterView | null>(null);
  const [error, setError] = useState<AppError | null>(null);
  const save = async () => {
    setError(null);
    try {
      setSaved(await run(commands.saveKeyLetter(login, drive)));
    } catch (err) {
      setError(asAppError(err));
    }
  };
  return (
    <div className="letter" data-test="key-letter">
      <p className="hint">{t("letter.text")}</p>
      <button type="button" id="key-letter" onClick={() => void save()}>
        {t("letter.save")}
      </button>
      {saved && (
        <Notice>
          <span data-test="key-letter-saved">{t("letter.saved", { path: saved.path })}</span>
          <br />
          <span className="mono" data-test="key-letter-fingerprint">
            {saved.fingerprint}
          </span>
        </Notice>
      )}
      <ErrorBox error={error} />
    </div>
  );
}
