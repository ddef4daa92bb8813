import { describe, expect, it } from "vitest";
import { en, initialLang, placeholders, translate, uk, type Key } from "./i18n";

describe("translations", () => {
  it("Ukrainian has every English text, none empty or left in English", () => {
    const keys = Object.keys(en) as Key[];
    expect(Object.keys(uk).sort()).toEqual([...keys].sort());
    const untranslated = keys.filter((k) => uk[k].trim() === "" || (uk[k] === en[k] && !["app.title", "accounts.iban"].includes(k)));
    expect(untranslated).toEqual([]);
  });

  it("both languages use the same placeholders in each text", () => {
    const differ = (Object.keys(en) as Key[]).filter(
      (k) => placeholders(en[k]).join() !== placeholders(uk[k]).join(),
    );
    expect(differ).toEqual([]);
  });

  it("fills placeholders and leaves unknown ones visible", () => {
    expect(translate("en", "orders.prepared", { id: 7 })).toBe("Order 7 is prepared.");
    expect(translate("uk", "orders.prepared", { id: 7 })).toBe("Доручення 7 підготовлено.");
    expect(translate("en", "orders.prepared")).toBe("Order {id} is prepared.");
  });

  it("every error code the app sends has a text", async () => {
    const codes = [
      "settings", "credentials", "locked", "wrong_key_password", "key_not_found", "broken_key",
      "certificate_expired", "certificate_revoked", "certificate_not_activated", "drive", "network", "session_expired", "refused",
      "password_policy", "key_password_policy", "invalid_order", "invalid_input", "other",
    ];
    // The same list as the generated ErrorCode type: a code added in Rust fails this until it has a text.
    const source = await import("./bindings?raw").then((m) => m.default as string);
    const generated = /export type ErrorCode\s*=([^;]*);/.exec(source)?.[1] ?? "";
    const fromRust = [...generated.matchAll(/"(\w+)"/g)].map((m) => m[1]).sort();
    expect(fromRust).toEqual([...codes].sort());
    for (const c of codes) expect(Object.keys(en)).toContain(`error.${c}`);
  });

  it("picks the stored language, else the system's", () => {
    expect(initialLang("uk", "en-US")).toBe("uk");
    expect(initialLang(null, "uk-UA")).toBe("uk");
    expect(initialLang(null, "de-DE")).toBe("en");
    expect(initialLang("xx", undefined)).toBe("en");
  });
});
