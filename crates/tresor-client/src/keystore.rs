//! A login's key folder on a drive, and key rotation.
//!
//! Layout: `<drive>/Tresor/<login>/key-NNNN.pem` beside `cert-NNNN.pem`, one folder per
//! login so that one drive can carry several users' keys. `NNNN` is a generation number.
//!
//! * A generation with both files is complete; the highest complete one is **current**.
//! * A key with no certificate yet is **pending**: written at first login, renewal or
//!   recovery, before the bank has answered.
//! * Storing the certificate of a pending key is the single atomic step that makes it
//!   current. Until then the previous key stays current; afterwards it stays on the drive as
//!   a backup. No file is ever overwritten in place.
//!
//! So at every instant, whatever fails (a crash, a pulled drive, a full one), the drive
//! holds a key that opens with its password and matches a stored certificate.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tresor_core::keyfile::{KdfLimits, KeyFileError, PrivateKey};
use tresor_core::login::Login;
use tresor_core::pki::{self, CertError, PkiError};
use tresor_core::secret::Password;
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::Encode as _;

use crate::drive_io::{self, DriveFault, DriveIo, StdIo, TEMP_PREFIX};

/// Folder at the root of a drive that holds Tresor's per-login folders.
pub const TRESOR_DIR: &str = "Tresor";

/// How many complete generations stay on the drive: the current one and one backup.
const KEEP_COMPLETE: usize = 2;

/// Why a key could not be stored or loaded. Every variant names what the user can do
/// something about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The drive (or folder) is not there: not plugged in, or not mounted.
    #[error("the drive {0} is not available: plug it in, or choose another drive")]
    DriveMissing(PathBuf),
    /// No key for this login on the drive.
    #[error("no key for {login} on this drive (looked in {dir})")]
    KeyNotFound {
        /// The login.
        login: String,
        /// The folder searched.
        dir: PathBuf,
    },
    /// A key is there, but its certificate is not: the bank has not issued it yet.
    #[error("the key at {0} has no certificate yet")]
    CertificateMissing(PathBuf),
    /// The drive is mounted read-only or write-protected.
    #[error(
        "the drive at {0} is read-only: turn off its write protection, or choose another drive"
    )]
    ReadOnly(PathBuf),
    /// No space left on the drive.
    #[error("the drive at {0} is full: free some space, or choose another drive")]
    DriveFull(PathBuf),
    /// The drive went away or failed in the middle of an operation.
    #[error(
        "the drive at {0} was removed or failed during the operation; plug it back in and try again"
    )]
    DriveRemoved(PathBuf),
    /// The OS refused access.
    #[error("no permission to write to {0}")]
    PermissionDenied(PathBuf),
    /// Another IO failure.
    #[error("could not access {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS's error.
        #[source]
        source: io::Error,
    },
    /// The key file could not be opened (wrong password, not a key, …).
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// The stored certificate is unreadable.
    #[error("the certificate at {path} is unreadable: {source}")]
    Certificate {
        /// The certificate file.
        path: PathBuf,
        /// Why.
        #[source]
        source: CertError,
    },
    /// A certificate request could not be built.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The generation already has its certificate; certificates are never overwritten.
    #[error("{0} already exists; a stored certificate is never replaced")]
    AlreadyCertified(PathBuf),
    /// The certificate is for another key than the pending one.
    #[error("the certificate does not match the new key; the current key is unchanged")]
    CertificateForAnotherKey,
    /// A first key was asked for where a key exists: keys are renewed or recovered, never
    /// overwritten.
    #[error("a key already exists at {0}; keys are renewed or recovered, never overwritten")]
    KeyExists(PathBuf),
}

impl StoreError {
    fn io(path: &Path, source: io::Error) -> Self {
        let path = path.to_path_buf();
        match drive_io::classify(&source) {
            DriveFault::ReadOnly => Self::ReadOnly(path),
            DriveFault::Full => Self::DriveFull(path),
            DriveFault::Removed => Self::DriveRemoved(path),
            DriveFault::PermissionDenied => Self::PermissionDenied(path),
            DriveFault::Other => Self::Io { path, source },
        }
    }
}

/// What a generation on the drive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Generation {
    /// Its number, from 1.
    pub number: u32,
    /// `key-NNNN.pem` is there.
    pub has_key: bool,
    /// `cert-NNNN.pem` is there.
    pub has_cert: bool,
}

impl Generation {
    /// Both files are there.
    pub fn is_complete(&self) -> bool {
        self.has_key && self.has_cert
    }
}

/// Where a login's keys on a drive stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGenerations {
    /// The current generation: the newest with both its key and its certificate.
    pub current: u32,
    /// The newest complete generation before it, kept as a backup.
    pub backup: Option<u32>,
    /// A newer key still waiting for its certificate (a renewal or recovery not finished).
    pub pending: Option<u32>,
}

/// A key that was opened with its password.
pub struct Unlocked {
    /// Its generation.
    pub generation: u32,
    /// The key.
    pub key: PrivateKey,
    /// Its certificate, once issued; the key was checked against it.
    pub certificate: Option<Certificate>,
    /// The key file's path.
    pub key_path: PathBuf,
}

impl fmt::Debug for Unlocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unlocked")
            .field("generation", &self.generation)
            .field("key", &self.key)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// A new key written to the drive, waiting for its certificate.
pub struct PendingKey {
    /// Its generation.
    pub generation: u32,
    /// The new key, kept in memory to check the certificate against.
    pub key: PrivateKey,
    /// The PKCS#10 request, DER, signed by the new key.
    pub csr_der: Vec<u8>,
    /// Where the key file was written.
    pub key_path: PathBuf,
}

impl fmt::Debug for PendingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingKey")
            .field("generation", &self.generation)
            .field("key", &self.key)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// One login's key folder on one drive.
#[derive(Clone)]
pub struct KeyStore {
    drive: PathBuf,
    dir: PathBuf,
    login: Login,
    io: Arc<dyn DriveIo>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// The folder for `login` on the drive mounted at `drive`.
    pub fn new(drive: &Path, login: &Login) -> Self {
        Self::with_io(drive, login, Arc::new(StdIo))
    }

    /// The same, with another [`DriveIo`] (tests inject faults through it).
    pub fn with_io(drive: &Path, login: &Login, io: Arc<dyn DriveIo>) -> Self {
        Self {
            drive: drive.to_path_buf(),
            dir: drive.join(TRESOR_DIR).join(login.as_str()),
            login: login.clone(),
            io,
        }
    }

    /// The drive's mount path (or the folder standing in for it).
    pub fn drive(&self) -> &Path {
        &self.drive
    }

    /// Checks that a key can be written here, by writing and removing a small file: a flow
    /// that must not spend a one-time password on a full or read-only drive asks first.
    pub fn probe_writable(&self) -> Result<(), StoreError> {
        self.check_drive()?;
        self.ensure_dir()?;
        let name = format!("{TEMP_PREFIX}probe");
        let path = drive_io::write_atomic(self.io.as_ref(), &self.dir, &name, &[0u8; 4096])
            .map_err(|e| StoreError::io(&self.dir, e))?;
        self.remove(&path)
    }

    /// The login's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The login.
    pub fn login(&self) -> &Login {
        &self.login
    }

    /// Path of generation `n`'s key file.
    pub fn key_path(&self, n: u32) -> PathBuf {
        self.dir.join(key_name(n))
    }

    /// Path of generation `n`'s certificate.
    pub fn cert_path(&self, n: u32) -> PathBuf {
        self.dir.join(cert_name(n))
    }

    /// The generations on the drive, oldest first.
    pub fn generations(&self) -> Result<Vec<Generation>, StoreError> {
        self.check_drive()?;
        let names = match self.io.list_dir(&self.dir) {
            Ok(names) => names,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(&self.dir, e)),
        };
        let mut gens: Vec<Generation> = Vec::new();
        for (n, is_key) in names.iter().filter_map(|name| parse_name(name)) {
            note_generation(&mut gens, n, is_key);
        }
        gens.sort();
        Ok(gens)
    }

    /// The current generation: the highest with both a key and a certificate.
    pub fn current(&self) -> Result<Option<Generation>, StoreError> {
        Ok(self
            .generations()?
            .into_iter()
            .rev()
            .find(Generation::is_complete))
    }

    /// The current, backup and pending generations; an error naming what is missing when
    /// there is no current key (no key at all, or a key without its certificate).
    pub fn key_generations(&self) -> Result<KeyGenerations, StoreError> {
        let gens = self.generations()?;
        let Some(current) = gens.iter().rev().find(|g| g.is_complete()) else {
            return Err(match gens.iter().rev().find(|g| g.has_key) {
                Some(g) => StoreError::CertificateMissing(self.key_path(g.number)),
                None => StoreError::KeyNotFound {
                    login: self.login.to_string(),
                    dir: self.dir.clone(),
                },
            });
        };
        Ok(KeyGenerations {
            current: current.number,
            backup: gens
                .iter()
                .rev()
                .find(|g| g.is_complete() && g.number < current.number)
                .map(|g| g.number),
            pending: gens
                .iter()
                .rev()
                .find(|g| g.has_key && !g.has_cert && g.number > current.number)
                .map(|g| g.number),
        })
    }

    /// The newest key, pending or current.
    pub fn latest_key(&self) -> Result<Option<Generation>, StoreError> {
        Ok(self.generations()?.into_iter().rev().find(|g| g.has_key))
    }

    /// Opens the current key and its certificate, checking that they belong together.
    pub fn unlock_current(
        &self,
        password: &Password,
        limits: &KdfLimits,
    ) -> Result<Unlocked, StoreError> {
        match self.current()? {
            Some(g) => self.unlock(g.number, password, limits),
            None => match self.latest_key()? {
                Some(g) => Err(StoreError::CertificateMissing(self.key_path(g.number))),
                None => Err(self.not_found()),
            },
        }
    }

    /// Opens the newest key, current or pending (for `tresor key check` before the bank has
    /// issued the certificate).
    pub fn unlock_latest(
        &self,
        password: &Password,
        limits: &KdfLimits,
    ) -> Result<Unlocked, StoreError> {
        match self.latest_key()? {
            Some(g) => self.unlock(g.number, password, limits),
            None => Err(self.not_found()),
        }
    }

    /// Opens generation `n`.
    pub fn unlock(
        &self,
        n: u32,
        password: &Password,
        limits: &KdfLimits,
    ) -> Result<Unlocked, StoreError> {
        let key_path = self.key_path(n);
        let pem = zeroize::Zeroizing::new(self.read(&key_path)?);
        let key = PrivateKey::from_encrypted_pem(&pem, password, limits)?;
        let cert_path = self.cert_path(n);
        let certificate = match self.io.read(&cert_path) {
            Ok(bytes) => {
                let cert = pki::certificate_from_pem(&bytes).map_err(|source| {
                    StoreError::Certificate {
                        path: cert_path.clone(),
                        source,
                    }
                })?;
                key.check_matches(&cert)?;
                Some(cert)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(StoreError::io(&cert_path, e)),
        };
        Ok(Unlocked {
            generation: n,
            key,
            certificate,
            key_path,
        })
    }

    /// Reads generation `n`'s certificate.
    pub fn certificate(&self, n: u32) -> Result<Certificate, StoreError> {
        let path = self.cert_path(n);
        let bytes = self.read(&path)?;
        pki::certificate_from_pem(&bytes).map_err(|source| StoreError::Certificate { path, source })
    }

    /// Generates a key, writes it encrypted with `password` as a new pending generation, and
    /// builds its certificate request. The current key, if any, is untouched.
    pub fn create_pending_key(&self, password: &Password) -> Result<PendingKey, StoreError> {
        password
            .check_new_key_password()
            .map_err(KeyFileError::from)?;
        let key = PrivateKey::generate();
        let pem = key.to_encrypted_pem(password)?;
        self.write_pending(key, &pem)
    }

    /// The first key for this login on the drive, refused where any key is there already:
    /// keys are renewed or recovered, never overwritten.
    pub fn create_first_key(&self, password: &Password) -> Result<PendingKey, StoreError> {
        if let Some(g) = self.latest_key()? {
            return Err(StoreError::KeyExists(self.key_path(g.number)));
        }
        self.create_pending_key(password)
    }

    /// [`Self::create_pending_key`] with an already encrypted key (tests use cheap KDFs).
    pub fn write_pending(
        &self,
        key: PrivateKey,
        encrypted_pem: &str,
    ) -> Result<PendingKey, StoreError> {
        let csr = pki::build_csr(&key, &self.login)?;
        let csr_der = csr.to_der().map_err(|e| PkiError::Build(e.to_string()))?;
        // `generations` checks that the drive is there, and is empty before the folder exists.
        let next = self
            .generations()?
            .last()
            .map_or(1, |g| g.number.saturating_add(1));
        self.ensure_dir()?;
        let key_path = drive_io::write_atomic(
            self.io.as_ref(),
            &self.dir,
            &key_name(next),
            encrypted_pem.as_bytes(),
        )
        .map_err(|e| StoreError::io(&self.dir, e))?;
        Ok(PendingKey {
            generation: next,
            key,
            csr_der,
            key_path,
        })
    }

    /// Stores the certificate the bank issued for a pending key: the commit point that makes
    /// it current. Then removes generations older than the backup, and stale pending keys.
    pub fn commit_certificate(
        &self,
        pending: &PendingKey,
        cert: &Certificate,
    ) -> Result<(), StoreError> {
        pending
            .key
            .check_matches(cert)
            .map_err(|_| StoreError::CertificateForAnotherKey)?;
        if self
            .generations()?
            .iter()
            .any(|g| g.number == pending.generation && g.has_cert)
        {
            return Err(StoreError::AlreadyCertified(
                self.cert_path(pending.generation),
            ));
        }
        let pem = pki::certificate_to_pem(cert)?;
        drive_io::write_atomic(
            self.io.as_ref(),
            &self.dir,
            &cert_name(pending.generation),
            pem.as_bytes(),
        )
        .map_err(|e| StoreError::io(&self.dir, e))?;
        // Best effort: a failure here leaves extra files, never a missing one.
        let _ = self.prune();
        Ok(())
    }

    /// Removes complete generations beyond the current one and its backup, pending keys
    /// older than the current one, and temporary files left by a crash.
    pub fn prune(&self) -> Result<(), StoreError> {
        let gens = self.generations()?;
        for g in stale_generations(&gens, KEEP_COMPLETE) {
            // Certificate first: a key without a certificate is never taken as current.
            if g.has_cert {
                self.remove(&self.cert_path(g.number))?;
            }
            if g.has_key {
                self.remove(&self.key_path(g.number))?;
            }
        }
        let names = self
            .io
            .list_dir(&self.dir)
            .map_err(|e| StoreError::io(&self.dir, e))?;
        for name in names.iter().filter(|n| n.starts_with(TEMP_PREFIX)) {
            self.remove(&self.dir.join(name))?;
        }
        self.io
            .sync_dir(&self.dir)
            .map_err(|e| StoreError::io(&self.dir, e))
    }

    /// Creates the login's folder, and makes its entries in `Tresor/` and the drive's root
    /// durable: a folder that vanishes on power loss would take the key with it.
    fn ensure_dir(&self) -> Result<(), StoreError> {
        if self.io.list_dir(&self.dir).is_ok() {
            return Ok(());
        }
        self.io
            .create_dir_all(&self.dir)
            .map_err(|e| StoreError::io(&self.dir, e))?;
        let tresor = self.drive.join(TRESOR_DIR);
        for dir in [&tresor, &self.drive] {
            self.io.sync_dir(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        Ok(())
    }

    fn remove(&self, path: &Path) -> Result<(), StoreError> {
        self.io
            .remove_file(path)
            .map_err(|e| StoreError::io(path, e))
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>, StoreError> {
        match self.io.read(path) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.check_drive()?;
                Err(self.not_found())
            }
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    fn check_drive(&self) -> Result<(), StoreError> {
        if self.drive.is_dir() {
            Ok(())
        } else {
            Err(StoreError::DriveMissing(self.drive.clone()))
        }
    }

    fn not_found(&self) -> StoreError {
        StoreError::KeyNotFound {
            login: self.login.to_string(),
            dir: self.dir.clone(),
        }
    }
}

/// Records that generation `n` has its key (`is_key`) or its certificate.
pub(crate) fn note_generation(gens: &mut Vec<Generation>, n: u32, is_key: bool) {
    let idx = match gens.iter().position(|g| g.number == n) {
        Some(i) => i,
        None => {
            gens.push(Generation {
                number: n,
                has_key: false,
                has_cert: false,
            });
            gens.len() - 1
        }
    };
    if is_key {
        gens[idx].has_key = true;
    } else {
        gens[idx].has_cert = true;
    }
}

/// The generations to remove, wherever keys live: complete ones beyond the newest `keep`,
/// and incomplete ones older than the current key (a renewal or recovery that never
/// finished). Nothing when there is no current key.
pub(crate) fn stale_generations(gens: &[Generation], keep: usize) -> Vec<Generation> {
    let complete: Vec<u32> = gens
        .iter()
        .filter(|g| g.is_complete())
        .map(|g| g.number)
        .collect();
    let Some(&current) = complete.iter().max() else {
        return Vec::new();
    };
    let mut newest = complete.clone();
    newest.sort_unstable_by(|a, b| b.cmp(a));
    newest.truncate(keep);
    gens.iter()
        .filter(|g| {
            if g.is_complete() {
                !newest.contains(&g.number)
            } else {
                g.number < current
            }
        })
        .copied()
        .collect()
}

fn key_name(n: u32) -> String {
    format!("key-{n:04}.pem")
}

fn cert_name(n: u32) -> String {
    format!("cert-{n:04}.pem")
}

/// `key-0001.pem` → `(1, true)`, `cert-0001.pem` → `(1, false)`.
fn parse_name(name: &str) -> Option<(u32, bool)> {
    let (digits, is_key) = if let Some(rest) = name.strip_prefix("key-") {
        (rest.strip_suffix(".pem")?, true)
    } else if let Some(rest) = name.strip_prefix("cert-") {
        (rest.strip_suffix(".pem")?, false)
    } else {
        return None;
    };
    if digits.len() < 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = digits.parse().ok()?;
    (n > 0).then_some((n, is_key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;
    use tresor_core::pki::{BankCa, DEFAULT_CA_VALIDITY, DEFAULT_CLIENT_VALIDITY};

    const PW: &str = "key password 1";

    #[test]
    fn stale_generations_keep_the_current_its_backup_and_newer_pending_keys() {
        let g = |number, has_key, has_cert| Generation {
            number,
            has_key,
            has_cert,
        };
        let numbers = |gens: &[Generation]| {
            stale_generations(gens, KEEP_COMPLETE)
                .iter()
                .map(|g| g.number)
                .collect::<Vec<_>>()
        };
        let cases: [(&[Generation], &[u32]); 5] = [
            (&[], &[]),
            // Only a pending key: nothing is current, nothing goes.
            (&[g(1, true, false)], &[]),
            (&[g(1, true, true), g(2, true, true)], &[]),
            // A third complete generation retires the first.
            (
                &[g(1, true, true), g(2, true, true), g(3, true, true)],
                &[1],
            ),
            // A pending key older than the current one is an abandoned renewal; a newer one
            // is a renewal under way, and an orphan certificate goes too.
            (
                &[
                    g(1, true, false),
                    g(2, false, true),
                    g(3, true, true),
                    g(4, true, false),
                ],
                &[1, 2],
            ),
        ];
        for (gens, stale) in cases {
            assert_eq!(numbers(gens), stale, "{gens:?}");
        }
    }

    fn cheap(store: &KeyStore) -> PendingKey {
        let key = PrivateKey::generate();
        let pem = key
            .to_encrypted_pem_with(&Password::from(PW), 10, 8, 1)
            .unwrap();
        store.write_pending(key, &pem).unwrap()
    }

    fn issue(ca: &BankCa, store: &KeyStore, pending: &PendingKey) -> Certificate {
        let csr = pki::verify_csr(&pending.csr_der).unwrap();
        ca.issue_client_certificate(
            &csr,
            store.login(),
            SystemTime::now(),
            DEFAULT_CLIENT_VALIDITY,
        )
        .unwrap()
    }

    /// A drive (a temporary folder), a bank CA, and ivan's key store on the drive.
    fn fixture() -> (tempfile::TempDir, BankCa, KeyStore) {
        let drive = tempfile::tempdir().unwrap();
        let ca =
            BankCa::generate("CA", "Bank", "UA", SystemTime::now(), DEFAULT_CA_VALIDITY).unwrap();
        let store = KeyStore::new(drive.path(), &Login::new("ivan").unwrap());
        (drive, ca, store)
    }

    #[test]
    fn generations_name_current_backup_and_pending() {
        let (_drive, ca, store) = fixture();
        assert!(matches!(
            store.key_generations(),
            Err(StoreError::KeyNotFound { .. })
        ));
        let first = cheap(&store);
        assert!(matches!(
            store.key_generations(),
            Err(StoreError::CertificateMissing(p)) if p == first.key_path
        ));
        store
            .commit_certificate(&first, &issue(&ca, &store, &first))
            .unwrap();
        let one = KeyGenerations {
            current: 1,
            backup: None,
            pending: None,
        };
        assert_eq!(store.key_generations().unwrap(), one);
        let second = cheap(&store);
        assert_eq!(
            store.key_generations().unwrap(),
            KeyGenerations {
                pending: Some(2),
                ..one
            }
        );
        store
            .commit_certificate(&second, &issue(&ca, &store, &second))
            .unwrap();
        assert_eq!(
            store.key_generations().unwrap(),
            KeyGenerations {
                current: 2,
                backup: Some(1),
                pending: None,
            }
        );
    }

    #[test]
    fn a_first_key_never_overwrites_one() {
        let (_drive, _ca, store) = fixture();
        let first = cheap(&store);
        let before = std::fs::read(&first.key_path).unwrap();
        assert!(matches!(
            store.create_first_key(&Password::from("another key password 2")),
            Err(StoreError::KeyExists(p)) if p == first.key_path
        ));
        assert_eq!(std::fs::read(&first.key_path).unwrap(), before);
        assert_eq!(store.generations().unwrap().len(), 1);
    }

    #[test]
    fn names() {
        assert_eq!(parse_name("key-0001.pem"), Some((1, true)));
        assert_eq!(parse_name("cert-0042.pem"), Some((42, false)));
        assert_eq!(parse_name("cert-10000.pem"), Some((10000, false)));
        for bad in [
            "key-1.pem",
            "key-0000.pem",
            "key-00a1.pem",
            "key-0001.pem.bak",
            "x-0001.pem",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn first_key_then_rotation_keeps_one_backup() {
        let (_drive, ca, store) = fixture(); // the folder lives as long as `_drive`
        let pw = Password::from(PW);
        assert!(matches!(
            store.unlock_current(&pw, &KdfLimits::DEFAULT),
            Err(StoreError::KeyNotFound { .. })
        ));

        let first = cheap(&store);
        assert_eq!(first.generation, 1);
        assert!(matches!(
            store.unlock_current(&pw, &KdfLimits::DEFAULT),
            Err(StoreError::CertificateMissing(_))
        ));
        store
            .commit_certificate(&first, &issue(&ca, &store, &first))
            .unwrap();
        assert_eq!(
            store
                .unlock_current(&pw, &KdfLimits::DEFAULT)
                .unwrap()
                .generation,
            1
        );

        for expected in 2..=4 {
            let next = cheap(&store);
            assert_eq!(next.generation, expected);
            // Until the certificate is stored, the previous key stays current.
            assert_eq!(store.current().unwrap().unwrap().number, expected - 1);
            store
                .commit_certificate(&next, &issue(&ca, &store, &next))
                .unwrap();
            let now = store.unlock_current(&pw, &KdfLimits::DEFAULT).unwrap();
            assert_eq!(now.generation, expected);
            assert_eq!(now.key.public_key(), next.key.public_key());
        }
        let left: Vec<u32> = store
            .generations()
            .unwrap()
            .iter()
            .map(|g| g.number)
            .collect();
        assert_eq!(left, [3, 4], "current and one backup");
        assert!(
            store
                .unlock(3, &pw, &KdfLimits::DEFAULT)
                .unwrap()
                .certificate
                .is_some()
        );
    }

    #[test]
    fn a_certificate_for_another_key_is_refused() {
        let (_drive, ca, store) = fixture(); // the folder lives as long as `_drive`
        let a = cheap(&store);
        let b = cheap(&store);
        let cert_b = issue(&ca, &store, &b);
        assert!(matches!(
            store.commit_certificate(&a, &cert_b),
            Err(StoreError::CertificateForAnotherKey)
        ));
        assert!(store.current().unwrap().is_none());
    }

    #[test]
    fn a_stored_certificate_is_never_replaced() {
        let (_drive, ca, store) = fixture(); // the folder lives as long as `_drive`
        let first = cheap(&store);
        let cert = issue(&ca, &store, &first);
        store.commit_certificate(&first, &cert).unwrap();
        let before = std::fs::read(store.cert_path(1)).unwrap();
        let again = issue(&ca, &store, &first);
        assert!(matches!(
            store.commit_certificate(&first, &again),
            Err(StoreError::AlreadyCertified(_))
        ));
        assert_eq!(std::fs::read(store.cert_path(1)).unwrap(), before);
    }

    #[test]
    fn tampered_key_file_is_caught_by_its_certificate() {
        let (_drive, ca, store) = fixture(); // the folder lives as long as `_drive`
        let first = cheap(&store);
        store
            .commit_certificate(&first, &issue(&ca, &store, &first))
            .unwrap();
        // Replace the key with another key under the same password.
        let other = PrivateKey::generate();
        let pem = other
            .to_encrypted_pem_with(&Password::from(PW), 10, 8, 1)
            .unwrap();
        std::fs::write(store.key_path(1), pem.as_bytes()).unwrap();
        assert!(matches!(
            store.unlock_current(&Password::from(PW), &KdfLimits::DEFAULT),
            Err(StoreError::KeyFile(KeyFileError::KeyCertificateMismatch))
        ));
    }

    #[test]
    fn missing_drive() {
        let store = KeyStore::new(
            Path::new("/nonexistent/drive"),
            &Login::new("ivan").unwrap(),
        );
        assert!(matches!(
            store.unlock_current(&Password::from(PW), &KdfLimits::DEFAULT),
            Err(StoreError::DriveMissing(_))
        ));
    }
}
