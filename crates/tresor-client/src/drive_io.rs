//! File operations on a drive, and the atomic write built from them.
//!
//! Every write Tresor makes to a drive goes through [`write_atomic`]: a temporary file in the
//! same folder, written and fsynced, renamed over the final name, and the folder fsynced.
//! A crash or a pulled drive at any point leaves either the old state or the new one, never
//! a half-written file under the final name.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// The operations key storage performs on a drive. [`StdIo`] does them for real; tests wrap
/// it to fail the k-th one.
pub trait DriveIo: Send + Sync {
    /// `mkdir -p`.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates `path`, which must not exist, writes `bytes` and fsyncs the file.
    fn write_new_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Renames `from` to `to` within one folder.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the folder's entries (a rename, a new file) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Deletes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Reads a whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Names of the entries in a folder.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdIo;

impl DriveIo for StdIo {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn write_new_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        // Key files, certificates and settings are the owner's alone, where the file system
        // has modes (FAT sticks have none: their files take the mount's).
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    #[cfg(unix)]
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        fs::File::open(dir)?.sync_all()
    }

    /// Windows cannot open a folder as a file without platform calls; NTFS and FAT journal or
    /// flush directory entries on rename when the volume is set for quick removal, which is
    /// Windows' default for USB drives.
    #[cfg(not(unix))]
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }
}

/// Prefix of temporary files, so that leftovers from a crash are recognised and removed.
pub const TEMP_PREFIX: &str = ".tresor-tmp-";

/// Writes `bytes` to `dir/name` atomically and durably. `name` is replaced if it exists; key
/// storage only ever writes names that do not exist yet.
pub fn write_atomic(io: &dyn DriveIo, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let mut suffix = [0u8; 8];
    getrandom_fill(&mut suffix);
    let tmp_name: String = format!(
        "{TEMP_PREFIX}{name}-{}",
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let tmp = dir.join(tmp_name);
    let target = dir.join(name);
    io.write_new_synced(&tmp, bytes)?;
    io.rename(&tmp, &target)?;
    io.sync_dir(dir)?;
    Ok(target)
}

fn getrandom_fill(buf: &mut [u8]) {
    // A failed CSPRNG leaves zeros: a name collision then only makes `create_new` fail,
    // it never overwrites anything.
    let _ = getrandom::fill(buf);
}

/// What went wrong with a drive, in the words a user needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveFault {
    /// The file system is mounted read-only, or the stick's write-protect switch is on.
    ReadOnly,
    /// No space left.
    Full,
    /// The device went away or failed: pulled out mid-write.
    Removed,
    /// No permission to write there.
    PermissionDenied,
    /// Anything else.
    Other,
}

/// Classifies an IO error from a drive.
pub fn classify(err: &io::Error) -> DriveFault {
    match err.kind() {
        io::ErrorKind::ReadOnlyFilesystem => return DriveFault::ReadOnly,
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => return DriveFault::Full,
        io::ErrorKind::PermissionDenied => return DriveFault::PermissionDenied,
        _ => {}
    }
    match err.raw_os_error() {
        // EIO, ENXIO, ENODEV, ESHUTDOWN, ENOMEDIUM on Unix.
        #[cfg(unix)]
        Some(5 | 6 | 19 | 108 | 123) => DriveFault::Removed,
        // ERROR_NOT_READY, ERROR_DEV_NOT_EXIST, ERROR_DEVICE_NOT_CONNECTED on Windows.
        #[cfg(windows)]
        Some(21 | 55 | 1167) => DriveFault::Removed,
        _ => DriveFault::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn files_written_are_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = write_atomic(&StdIo, dir.path(), "key.tkey", b"secret").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    #[test]
    fn atomic_write_creates_and_replaces_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_atomic(&StdIo, dir.path(), "a.pem", b"one").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        write_atomic(&StdIo, dir.path(), "a.pem", b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names = StdIo.list_dir(dir.path()).unwrap();
        assert_eq!(names, ["a.pem"]);
    }

    #[test]
    fn classifies_drive_errors() {
        let cases = [
            (
                io::Error::from(io::ErrorKind::ReadOnlyFilesystem),
                DriveFault::ReadOnly,
            ),
            (
                io::Error::from(io::ErrorKind::StorageFull),
                DriveFault::Full,
            ),
            (
                io::Error::from(io::ErrorKind::PermissionDenied),
                DriveFault::PermissionDenied,
            ),
            (io::Error::other("x"), DriveFault::Other),
        ];
        for (err, fault) in cases {
            assert_eq!(classify(&err), fault, "{err}");
        }
        #[cfg(unix)]
        for errno in [5, 6, 19, 123] {
            assert_eq!(
                classify(&io::Error::from_raw_os_error(errno)),
                DriveFault::Removed
            );
        }
        #[cfg(target_os = "linux")]
        {
            assert_eq!(
                classify(&io::Error::from_raw_os_error(30)),
                DriveFault::ReadOnly
            );
            assert_eq!(
                classify(&io::Error::from_raw_os_error(28)),
                DriveFault::Full
            );
        }
    }
}
