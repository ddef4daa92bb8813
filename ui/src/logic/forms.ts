// Checks a form can make before asking the app: filled in, and typed twice the same. The
// policies themselves are checked by the app (check_new_password, check_new_key_password),
// so that the UI and the CLI apply one rule.

export type FormProblem = "required" | "mismatch" | null;

export function required(...values: string[]): FormProblem {
  return values.some((v) => v.trim() === "") ? "required" : null;
}

export function confirmed(value: string, again: string): FormProblem {
  if (value === "") return "required";
  return value === again ? null : "mismatch";
}

export interface OrderForm {
  payer_iban: string;
  payee_name: string;
  payee_tax_code: string;
  payee_iban: string;
  amount: string;
  currency: string;
  purpose: string;
}

export const emptyOrder = (payer: string, currency: string): OrderForm => ({
  payer_iban: payer,
  payee_name: "",
  payee_tax_code: "",
  payee_iban: "",
  amount: "",
  currency,
  purpose: "",
});

/** The first empty field of an order, in the form's order, or null. */
export function missingOrderField(o: OrderForm): keyof OrderForm | null {
  const order: (keyof OrderForm)[] = [
    "payer_iban",
    "payee_name",
    "payee_tax_code",
    "payee_iban",
    "amount",
    "currency",
    "purpose",
  ];
  return order.find((k) => o[k].trim() === "") ?? null;
}

/** The login tab a key moves to from `current` (the WAI-ARIA tabs pattern: arrows wrap
 * around, Home and End go to the ends), or null for a key tabs do not take. */
export function nextTab(current: "key" | "otp", key: string): "key" | "otp" | null {
  const tabs = ["key", "otp"] as const;
  const i = tabs.indexOf(current);
  switch (key) {
    case "ArrowRight":
    case "ArrowDown":
      return tabs[(i + 1) % tabs.length];
    case "ArrowLeft":
    case "ArrowUp":
      return tabs[(i + tabs.length - 1) % tabs.length];
    case "Home":
      return tabs[0];
    case "End":
      return tabs[tabs.length - 1];
    default:
      return null;
  }
}
