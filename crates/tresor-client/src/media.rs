//! Drives: USB sticks and fixed disks, as the key-folder picker shows them.
//!
//! Listing is behind [`MediaSource`] so that flows and tests can hand in a plain folder.
//! [`SystemMedia`] asks the OS through `sysinfo`, which has a code path for Linux (a disk is
//! removable when a `/dev/disk/by-id/usb-*` link points at it), Windows (`GetDriveType`) and
//! macOS (`DiskArbitration`); the volume label is read per OS below.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// One mounted file system the user could keep a key on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Drive {
    /// Volume label, or the device name when the volume has no label.
    pub label: String,
    /// Where it is mounted.
    pub mount_path: PathBuf,
    /// File system type, e.g. `vfat`, `ext4`.
    pub file_system: String,
    /// Bytes free for the user.
    pub free_bytes: u64,
    /// Size in bytes.
    pub total_bytes: u64,
    /// True for a USB stick or other removable medium; false for a fixed disk, which the
    /// app warns about.
    pub removable: bool,
    /// Mounted read-only.
    pub read_only: bool,
}

/// The OS would not say which drives are mounted.
#[derive(Debug, thiserror::Error)]
#[error("could not list drives: {0}")]
pub struct MediaError(String);

/// Something that can list drives.
pub trait MediaSource: Send + Sync {
    /// The drives now mounted, removable ones first.
    fn list(&self) -> Result<Vec<Drive>, MediaError>;
}

/// The operating system's drives.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemMedia;

impl MediaSource for SystemMedia {
    fn list(&self) -> Result<Vec<Drive>, MediaError> {
        let disks =
            sysinfo::Disks::new_with_refreshed_list().map_err(|e| MediaError(e.to_string()))?;
        let mut drives: Vec<Drive> = (&disks)
            .into_iter()
            .filter(|d| is_user_volume(d.mount_point(), &d.file_system().to_string_lossy()))
            .map(|d| {
                let device = d.name().to_string_lossy().into_owned();
                Drive {
                    label: volume_label(&device, d.mount_point()),
                    mount_path: d.mount_point().to_path_buf(),
                    file_system: d.file_system().to_string_lossy().into_owned(),
                    free_bytes: d.available_space(),
                    total_bytes: d.total_space(),
                    removable: d.is_removable(),
                    read_only: d.is_read_only(),
                }
            })
            .collect();
        if let Some(dir) = std::env::var_os(MEDIA_DIR_ENV) {
            drives.extend(folder_drives(Path::new(&dir)));
        }
        sort_drives(&mut drives);
        Ok(drives)
    }
}

/// Names a folder whose subfolders [`SystemMedia`] lists as removable drives besides the
/// mounted ones: a drive is "plugged in" by making a folder, which is how the desktop app's
/// end-to-end tests plug one in without root (and how a site whose sticks mount somewhere
/// the OS does not report could point the app at them).
pub const MEDIA_DIR_ENV: &str = "TRESOR_MEDIA_DIR";

/// Each folder in `dir`, as a removable drive.
fn folder_drives(dir: &Path) -> Vec<Drive> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| Drive {
            label: e.file_name().to_string_lossy().into_owned(),
            mount_path: e.path(),
            file_system: "folder".to_owned(),
            free_bytes: 0,
            total_bytes: 0,
            removable: true,
            read_only: false,
        })
        .collect()
}

/// The drive `path` is on: the one with the longest mount path that contains it.
pub fn drive_holding<'a>(drives: &'a [Drive], path: &Path) -> Option<&'a Drive> {
    drives
        .iter()
        .filter(|d| path.starts_with(&d.mount_path))
        .max_by_key(|d| d.mount_path.components().count())
}

/// The mount path of the removable drive holding `path`, if `path` exists and that drive is
/// removable: what the logout reminder names.
pub fn removable_drive_present(media: &dyn MediaSource, path: &Path) -> Option<PathBuf> {
    if !path.exists() {
        return None;
    }
    let drives = media.list().ok()?;
    drive_holding(&drives, path)
        .filter(|d| d.removable)
        .map(|d| d.mount_path.clone())
}

/// The fixed-disk warning the design asks for when a key is written off a removable drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedDiskWarning {
    /// The fixed disk holding the path, where the system lists one.
    pub disk: Option<PathBuf>,
}

/// Whether a key written to `path` gets the fixed-disk warning: it does unless a removable
/// drive the system lists holds `path` (a fixed disk, a place no listed drive holds, or a
/// drive list that cannot be read all get it). The CLI and the app both ask this.
pub fn fixed_disk_warning(media: &dyn MediaSource, path: &Path) -> Option<FixedDiskWarning> {
    let drives = media.list().unwrap_or_default();
    match drive_holding(&drives, path) {
        Some(d) if d.removable => None,
        holding => Some(FixedDiskWarning {
            disk: holding.map(|d| d.mount_path.clone()),
        }),
    }
}

/// Removable drives first, then by mount path, so the picker offers a USB stick before the
/// system disk.
pub fn sort_drives(drives: &mut [Drive]) {
    drives.sort_by(|a, b| {
        b.removable
            .cmp(&a.removable)
            .then_with(|| a.mount_path.cmp(&b.mount_path))
    });
}

/// Hides mounts no user would keep a key on: container overlays and pseudo file systems.
fn is_user_volume(mount: &Path, fs: &str) -> bool {
    !matches!(
        fs,
        "overlay" | "tmpfs" | "devtmpfs" | "squashfs" | "nsfs" | "efivarfs"
    ) && !mount.starts_with("/boot")
        && !mount.starts_with("/snap")
        && !mount.starts_with("/etc")
}

#[cfg(target_os = "linux")]
fn volume_label(device: &str, mount: &Path) -> String {
    // udev publishes labels as links in /dev/disk/by-label, escaping spaces as \x20.
    let device = std::fs::canonicalize(device).unwrap_or_else(|_| PathBuf::from(device));
    if let Ok(entries) = std::fs::read_dir("/dev/disk/by-label") {
        for entry in entries.flatten() {
            if std::fs::canonicalize(entry.path()).ok().as_deref() == Some(device.as_path()) {
                return entry.file_name().to_string_lossy().replace("\\x20", " ");
            }
        }
    }
    fallback_label(&device.to_string_lossy(), mount)
}

#[cfg(any(target_os = "windows", target_os = "macos"))]
fn volume_label(device: &str, mount: &Path) -> String {
    // On Windows sysinfo's name is the volume label; on macOS it is the volume name.
    fallback_label(device, mount)
}

#[cfg(not(any(target_os = "linux", target_os = "windows", target_os = "macos")))]
fn volume_label(device: &str, mount: &Path) -> String {
    fallback_label(device, mount)
}

fn fallback_label(device: &str, mount: &Path) -> String {
    if !device.is_empty() {
        return device.to_owned();
    }
    mount
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| mount.display().to_string())
}

/// A fixed list, for tests and for a folder the user picked by hand.
#[derive(Debug, Clone, Default)]
pub struct FixedMedia(pub Vec<Drive>);

impl MediaSource for FixedMedia {
    fn list(&self) -> Result<Vec<Drive>, MediaError> {
        let mut d = self.0.clone();
        sort_drives(&mut d);
        Ok(d)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn each_folder_of_the_media_folder_is_a_removable_drive() {
        let dir = tempfile::tempdir().unwrap();
        assert!(folder_drives(&dir.path().join("missing")).is_empty());
        std::fs::create_dir(dir.path().join("STICK")).unwrap();
        std::fs::write(dir.path().join("not-a-drive.txt"), b"x").unwrap();
        let drives = folder_drives(dir.path());
        assert_eq!(drives.len(), 1);
        assert_eq!(drives[0].label, "STICK");
        assert_eq!(drives[0].mount_path, dir.path().join("STICK"));
        assert!(drives[0].removable);
    }

    use super::*;

    fn drive(path: &str, removable: bool) -> Drive {
        Drive {
            label: path.into(),
            mount_path: path.into(),
            file_system: "vfat".into(),
            free_bytes: 1,
            total_bytes: 2,
            removable,
            read_only: false,
        }
    }

    #[test]
    fn removable_drives_come_first() {
        let media = FixedMedia(vec![
            drive("/", false),
            drive("/media/b", true),
            drive("/media/a", true),
        ]);
        let order: Vec<_> = media
            .list()
            .unwrap()
            .into_iter()
            .map(|d| d.mount_path)
            .collect();
        assert_eq!(
            order,
            [PathBuf::from("/media/a"), "/media/b".into(), "/".into()]
        );
    }

    #[test]
    fn the_fixed_disk_warning_spares_only_listed_removable_drives() {
        let media = FixedMedia(vec![
            drive("/", false),
            drive("/media/stick", true),
            drive("/data", false),
        ]);
        let warning = |p: &str| fixed_disk_warning(&media, Path::new(p)).map(|w| w.disk);
        let cases = [
            ("/media/stick", None),
            ("/media/stick/keys/ivan", None),
            ("/home/ivan/keys", Some(Some(PathBuf::from("/")))),
            ("/data/keys", Some(Some(PathBuf::from("/data")))),
            ("/media/other", Some(Some(PathBuf::from("/")))),
        ];
        for (path, want) in cases {
            assert_eq!(warning(path), want, "{path}");
        }
        // No listed drive holds it (the system disk may be a hidden overlay): warned.
        let only_stick = FixedMedia(vec![drive("/media/stick", true)]);
        assert_eq!(
            fixed_disk_warning(&only_stick, Path::new("/tmp/keys")),
            Some(FixedDiskWarning { disk: None })
        );
    }

    #[test]
    fn the_reminder_names_a_plugged_in_removable_drive_only() {
        let root = tempfile::tempdir().expect("tempdir");
        let stick = root.path().join("stick");
        std::fs::create_dir(&stick).expect("mkdir");
        let path = |p: &Path| p.to_str().expect("utf-8").to_string();
        let media = FixedMedia(vec![
            drive(&path(root.path()), false),
            drive(&path(&stick), true),
        ]);
        assert_eq!(
            removable_drive_present(&media, &stick.join("Tresor")),
            None,
            "a path that does not exist is not a plugged-in drive"
        );
        assert_eq!(removable_drive_present(&media, &stick), Some(stick.clone()));
        assert_eq!(
            removable_drive_present(&media, root.path()),
            None,
            "a fixed disk"
        );
        std::fs::remove_dir(&stick).expect("rmdir");
        assert_eq!(removable_drive_present(&media, &stick), None, "pulled out");
    }

    #[test]
    fn pseudo_file_systems_are_hidden() {
        assert!(!is_user_volume(Path::new("/"), "overlay"));
        assert!(!is_user_volume(Path::new("/dev/shm"), "tmpfs"));
        assert!(!is_user_volume(Path::new("/etc/hosts"), "ext4"));
        assert!(is_user_volume(Path::new("/media/stick"), "vfat"));
        assert!(is_user_volume(Path::new("/"), "ext4"));
    }

    #[test]
    fn system_listing_keeps_removable_drives_first() {
        let drives = SystemMedia.list().unwrap();
        let first_fixed = drives
            .iter()
            .position(|d| !d.removable)
            .unwrap_or(drives.len());
        assert!(drives[first_fixed..].iter().all(|d| !d.removable));
    }
}
