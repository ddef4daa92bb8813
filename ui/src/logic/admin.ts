// Which administration pages and buttons an admin's roles show. The bank decides again on
// every request (its rules::admin); this only keeps out of sight what would be refused.
import type { Role } from "../bindings";

export type AdminPage = "users" | "requests" | "audit";

export type AdminDoing = "unlock" | "temp_password" | "emergency_password" | "suspend" | "revoke" | "activate";

const any = (roles: Role[], of: Role[]) => roles.some((r) => of.includes(r));

/** The pages an admin sees, in menu order. */
export function adminPages(roles: Role[]): AdminPage[] {
  const pages: AdminPage[] = [];
  if (any(roles, ["helpdesk", "security_officer", "account_manager"])) pages.push("users");
  if (roles.length > 0) pages.push("requests");
  if (any(roles, ["auditor"])) pages.push("audit");
  return pages;
}

/** Whether the admin may do `what` to a user (`onAdmin`: the user is an admin too). */
export function canDo(roles: Role[], what: AdminDoing, onAdmin: boolean): boolean {
  switch (what) {
    case "unlock":
    case "temp_password":
    case "suspend":
      return any(roles, onAdmin ? ["security_officer"] : ["helpdesk", "security_officer"]);
    case "emergency_password":
    case "revoke":
    case "activate":
      return any(roles, ["security_officer"]);
  }
}

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

/** The first second (UTC) of a typed day `YYYY-MM-DD`, or null. */
export function dayStart(text: string): number | null {
  const m = DAY.exec(text.trim());
  if (!m) return null;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  const d = new Date(t);
  if (d.getUTCMonth() !== Number(m[2]) - 1 || d.getUTCDate() !== Number(m[3])) return null;
  return t / 1000;
}

/** The last second (UTC) of a typed day, or null. */
export function dayEnd(text: string): number | null {
  const start = dayStart(text);
  return start === null ? null : start + 86_399;
}
