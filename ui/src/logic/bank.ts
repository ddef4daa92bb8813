// Which failures send the user to the bank, so that its helpdesk is named beside them.
import type { AppError } from "../bindings";

/** Error codes whose way out goes through the bank: a locked account or address, and a key
 * that cannot be used (wrong key password, broken, expired, revoked, not yet activated). */
const BANK_CODES: ReadonlySet<AppError["code"]> = new Set([
  "locked",
  "wrong_key_password",
  "broken_key",
  "certificate_expired",
  "certificate_revoked",
  "certificate_not_activated",
]);

/** Whether `error` asks the user to contact the bank. */
export function sendsToBank(error: AppError): boolean {
  return error.offers_recovery || BANK_CODES.has(error.code);
}
