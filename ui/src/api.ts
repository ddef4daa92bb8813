// The one way the UI reaches the app: the generated, typed commands. A failed command throws
// a CommandError carrying the app's { code, message }, so screens branch on codes only.
import { commands, type AppError } from "./bindings";

export { commands };

/** What every generated command returns (tauri-specta's result mode). */
export type Result<T, E> = { status: "ok"; data: T } | { status: "error"; error: E };

export class CommandError extends Error {
  constructor(public readonly error: AppError) {
    super(error.message);
    this.name = "CommandError";
  }
}

/** Who hears that the session has ended (the shell, which returns to the login): set once,
 * so that every screen's command is handled alike, whichever screen made it. */
let sessionEnded: (() => void) | null = null;

/** Registers the one handler of an ended session; returns its removal. */
export function onSessionEnded(handler: () => void): () => void {
  sessionEnded = handler;
  return () => {
    if (sessionEnded === handler) sessionEnded = null;
  };
}

export async function run<T>(call: Promise<Result<T, AppError>>): Promise<T> {
  const result = await call;
  if (result.status === "ok") return result.data;
  if (result.error.code === "session_expired") sessionEnded?.();
  throw new CommandError(result.error);
}

export function asAppError(e: unknown): AppError {
  if (e instanceof CommandError) return e.error;
  return { code: "other", message: e instanceof Error ? e.message : String(e), offers_recovery: false };
}
