// The drive list: USB drives first (the app sorts them so). Whether a path gets the fixed-disk
// warning is the library's to say (the fixed_disk_warning command).
import type { DriveView } from "../bindings";

export function sameDrives(a: DriveView[], b: DriveView[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The drive to preselect: the remembered one (a drive or a folder), else the first with a key, else the first removable. */
export function preselect(drives: DriveView[], remembered: string | null | undefined): string | null {
  if (remembered) return remembered;
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
