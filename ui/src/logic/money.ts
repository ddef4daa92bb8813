// Amounts travel as minor units (kopiykas); shown with a thin grouping and two decimals.

export function formatMinor(minor: number, currency?: string): string {
  const negative = minor < 0;
  const abs = Math.abs(Math.trunc(minor));
  const units = Math.floor(abs / 100).toString();
  const cents = (abs % 100).toString().padStart(2, "0");
  const grouped = units.replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f");
  const text = `${negative ? "-" : ""}${grouped}.${cents}`;
  return currency ? `${text} ${currency}` : text;
}

/** An IBAN as people read it: groups of four. */
export function groupIban(iban: string): string {
  return iban.replace(/\s+/g, "").replace(/(.{4})/g, "$1 ").trim();
}
