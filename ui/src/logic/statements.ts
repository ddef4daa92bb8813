// Statements: the period presets and which rows of a long table are on screen.

/** A calendar day as `YYYY-MM-DD`, in the local calendar. */
export function isoDay(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export type Preset = "today" | "yesterday" | "thisMonth" | "lastMonth";
export const PRESETS: Preset[] = ["today", "yesterday", "thisMonth", "lastMonth"];

/** The first and last day of a preset period, as of `now`. */
export function presetPeriod(preset: Preset, now: Date): { from: string; to: string } {
  const y = now.getFullYear();
  const m = now.getMonth();
  const d = now.getDate();
  switch (preset) {
    case "today":
      return { from: isoDay(now), to: isoDay(now) };
    case "yesterday": {
      const day = new Date(y, m, d - 1);
      return { from: isoDay(day), to: isoDay(day) };
    }
    case "thisMonth":
      return { from: isoDay(new Date(y, m, 1)), to: isoDay(now) };
    case "lastMonth":
      return { from: isoDay(new Date(y, m - 1, 1)), to: isoDay(new Date(y, m, 0)) };
  }
}

/** The rows to render of `total` rows `rowHeight` pixels high in a viewport scrolled to `scrollTop`: only those visible, and `overscan` more on each side. */
export function visibleRows(
  scrollTop: number,
  viewport: number,
  rowHeight: number,
  total: number,
  overscan = 10,
): { first: number; last: number } {
  if (total === 0) return { first: 0, last: 0 };
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(total, Math.ceil((scrollTop + viewport) / rowHeight) + overscan);
  return { first, last };
}
