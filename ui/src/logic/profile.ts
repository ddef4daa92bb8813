// The notices a user may turn off, as the bank's rules have them (rules/voice.rs): security
// notices always go.
import type { NoticeKind } from "../bindings";

export const NOTICE_KINDS: NoticeKind[] = [
  "new_address",
  "lockout",
  "credentials",
  "certificate_expiry",
  "order_rejected",
  "incoming_payment",
];

const SECURITY: ReadonlySet<NoticeKind> = new Set(["new_address", "lockout", "credentials"]);

export function isSecurityNotice(kind: NoticeKind): boolean {
  return SECURITY.has(kind);
}
