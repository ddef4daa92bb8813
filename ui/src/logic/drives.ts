// The drive list: USB drives first (the app sorts them so). Whether a path gets the fixed-disk
// warning is the library's to say (the fixed_disk_warning command).
import type { DriveView, TokenView } from "../bindings";

/** Whether a chosen medium is a token (`pkcs11:serial=…`, as the app lists tokens) rather than a drive's path. */
export function isToken(medium: string): boolean {
  return medium.startsWith("pkcs11:");
}

export function sameDrives(a: DriveView[], b: DriveView[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The medium to preselect: the remembered one (a drive, a folder or a token), else the first token or drive with a key, else the first removable drive. */
export function preselect(drives: DriveView[], remembered: string | null | undefined, tokens: TokenView[] = []): string | null {
  if (remembered) return remembered;
  const tokenWithKey = tokens.find((t) => t.has_key);
  if (tokenWithKey) return tokenWithKey.medium;
  const withKey = drives.find((d) => d.has_key);
  if (withKey) return withKey.drive.mount_path;
  const removable = drives.find((d) => d.drive.removable);
  return removable ? removable.drive.mount_path : null;
}

export function formatBytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

/** The drives' mount paths and the tokens' media that hold a key for the typed login. */
export function keyedMedia(drives: DriveView[], tokens: TokenView[]): Set<string> {
  return new Set([...drives.filter((d) => d.has_key).map((d) => d.drive.mount_path), ...tokens.filter((t) => t.has_key).map((t) => t.medium)]);
}

/** A medium that holds a key now and did not at the last poll (`before`, null at the first
 * poll, when nothing has "arrived"): a drive or token just plugged in. */
export function newlyKeyed(before: Set<string> | null, drives: DriveView[], tokens: TokenView[]): string | null {
  if (!before) return null;
  for (const m of keyedMedia(drives, tokens)) if (!before.has(m)) return m;
  return null;
}
