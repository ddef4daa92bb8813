//! File modes: what the bank keeps in its data folder is its owner's alone.

use std::path::Path;

/// Takes group and other permissions off `path`, leaving `mode` (0700 for a folder, 0600 for
/// a file), if it has any: what an older version left open is tightened. A missing path is
/// left alone; without Unix modes, nothing to do.
pub(crate) fn owner_only(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        match std::fs::metadata(path) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}
