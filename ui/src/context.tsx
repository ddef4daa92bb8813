import { createContext, useContext } from "react";
import type { BankInfo } from "./bindings";
import { translate, type Key, type Lang } from "./i18n";

export interface I18n {
  lang: Lang;
  setLang: (lang: Lang) => void;
  t: (key: Key, vars?: Record<string, string | number>) => string;
}

export const I18nContext = createContext<I18n>({
  lang: "en",
  setLang: () => {},
  t: (key, vars) => translate("en", key, vars),
});

export const useI18n = () => useContext(I18nContext);

/** The bank's name and helpdesk: cached at start, refreshed from the bank when it answers. */
export const BankContext = createContext<BankInfo | null>(null);

export const useBank = () => useContext(BankContext);

export function formatDate(unixSeconds: number, lang: Lang): string {
  return new Date(unixSeconds * 1000).toLocaleDateString(lang === "uk" ? "uk-UA" : "en-GB", {
    year: "numeric",
    month: "long",
    day: "numeric",
  });
}
