// How loudly the renewal reminder speaks: it grows with each threshold the bank's brief
// names (30, 14, 7, 3, 1 days), and cannot be dismissed in the last week.
import type { Reminder } from "../bindings";

export type ReminderLevel = "info" | "notice" | "warning" | "urgent" | "expired";

export function reminderLevel(r: Reminder): ReminderLevel {
  if (r.expired) return "expired";
  if (r.threshold <= 3) return "urgent";
  if (r.threshold <= 7) return "warning";
  if (r.threshold <= 14) return "notice";
  return "info";
}

/** Whether the user may hide the banner for this session. */
export function dismissible(level: ReminderLevel): boolean {
  return level === "info" || level === "notice";
}

/** Whether the app opens on the key screen after login, rather than the accounts. */
export function opensKeyScreen(r: Reminder | null | undefined): boolean {
  return !!r && (r.expired || r.threshold <= 7);
}
