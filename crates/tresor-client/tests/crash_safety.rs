//! Crash safety of key rotation: the k-th file operation fails, and every one after it (the
//! process died, or the drive was pulled), for every k. After each, the drive must still
//! hold a key that opens with its password and matches a stored certificate of the bank,
//! and a retry must succeed.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use tresor_client::drive_io::{DriveIo, StdIo};
use tresor_client::keystore::{KeyStore, PendingKey, StoreError};
use tresor_core::keyfile::{KdfLimits, PrivateKey};
use tresor_core::login::Login;
use tresor_core::pki::{
    self, BankCa, DEFAULT_CA_VALIDITY, DEFAULT_CLIENT_VALIDITY, NoRevocationList,
};
use tresor_core::secret::Password;

const PW: &str = "the key password";

/// Lets `budget` writes through, then fails every write, as a dead process or a pulled drive
/// would. A failing file write leaves half its bytes behind, as a torn write does.
struct FailAfter {
    budget: usize,
    done: AtomicUsize,
}

impl FailAfter {
    fn new(budget: usize) -> Self {
        Self {
            budget,
            done: AtomicUsize::new(0),
        }
    }

    fn step(&self) -> io::Result<()> {
        if self.done.fetch_add(1, Ordering::SeqCst) < self.budget {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(5)) // EIO: the drive went away
        }
    }

    fn writes(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }
}

impl DriveIo for FailAfter {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.step()?;
        StdIo.create_dir_all(path)
    }

    fn write_new_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        if let Err(e) = self.step() {
            // Torn: the file exists with part of its content.
            let _ = std::fs::write(path, &bytes[..bytes.len() / 2]);
            return Err(e);
        }
        StdIo.write_new_synced(path, bytes)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.step()?;
        StdIo.rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.step()?;
        StdIo.sync_dir(dir)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.step()?;
        StdIo.remove_file(path)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        StdIo.read(path)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        StdIo.list_dir(dir)
    }
}

fn cheap_key(store: &KeyStore) -> Result<PendingKey, StoreError> {
    let key = PrivateKey::generate();
    let pem = key
        .to_encrypted_pem_with(&Password::from(PW), 10, 8, 1)
        .unwrap();
    store.write_pending(key, &pem)
}

/// One rotation: new key on the drive, the bank issues its certificate, the certificate is
/// stored.
fn rotate(store: &KeyStore, ca: &BankCa) -> Result<u32, StoreError> {
    let pending = cheap_key(store)?;
    let csr = pki::verify_csr(&pending.csr_der).unwrap();
    let cert = ca
        .issue_client_certificate(
            &csr,
            store.login(),
            SystemTime::now(),
            DEFAULT_CLIENT_VALIDITY,
        )
        .unwrap();
    store.commit_certificate(&pending, &cert)?;
    Ok(pending.generation)
}

/// The drive holds a key that opens and matches a certificate the bank CA issued for it.
fn assert_working_key(drive: &Path, login: &Login, ca: &BankCa) -> u32 {
    let store = KeyStore::new(drive, login);
    let unlocked = store
        .unlock_current(&Password::from(PW), &KdfLimits::DEFAULT)
        .expect("a current key that opens");
    let cert = unlocked.certificate.expect("with its certificate");
    unlocked.key.check_matches(&cert).unwrap();
    pki::validate_client_certificate(
        &cert,
        ca.certificate(),
        login,
        SystemTime::now(),
        &NoRevocationList,
    )
    .unwrap();
    unlocked.generation
}

#[test]
fn rotation_interrupted_at_every_write_leaves_a_working_key() {
    let ca = BankCa::generate("CA", "Bank", "UA", SystemTime::now(), DEFAULT_CA_VALIDITY).unwrap();
    let login = Login::new("ivan").unwrap();
    let mut interrupted = 0;
    for k in 0.. {
        let drive = tempfile::tempdir().unwrap();
        let store = KeyStore::new(drive.path(), &login);
        assert_eq!(rotate(&store, &ca).unwrap(), 1);
        // Two rotations in, so that pruning of an old backup is among the interrupted steps.
        assert_eq!(rotate(&store, &ca).unwrap(), 2);

        let faulty = Arc::new(FailAfter::new(k));
        let flaky = KeyStore::with_io(drive.path(), &login, faulty.clone());
        let outcome = rotate(&flaky, &ca);
        let current = assert_working_key(drive.path(), &login, &ca);
        match outcome {
            Ok(g) => {
                assert_eq!(g, 3);
                assert_eq!(current, 3);
                if faulty.writes() <= k {
                    break; // nothing failed: every step has been interrupted once
                }
                // Clean-up after the commit failed; it is best effort, and the new key works.
                interrupted += 1;
            }
            Err(e) => {
                interrupted += 1;
                assert!(matches!(e, StoreError::DriveRemoved(_)), "k={k}: {e}");
                // Either the old key, or, if only clean-up after the commit failed, the new.
                assert!(current == 2 || current == 3, "k={k}: current {current}");
                // The previous key is kept as a backup until the new one is confirmed.
                if current == 2 {
                    assert!(
                        store
                            .unlock(2, &Password::from(PW), &KdfLimits::DEFAULT)
                            .is_ok()
                    );
                }
            }
        }
        // Once the drive is back, renewal succeeds and the new key works.
        let after = rotate(&store, &ca).unwrap();
        assert_eq!(assert_working_key(drive.path(), &login, &ca), after);
        assert!(k < 100, "rotation never finished");
    }
    // Writing the key (create, write, rename, sync) and its certificate, plus clean-up.
    assert!(interrupted >= 8, "only {interrupted} interruption points");
}

#[test]
fn first_key_interrupted_never_leaves_a_broken_current_key() {
    let ca = BankCa::generate("CA", "Bank", "UA", SystemTime::now(), DEFAULT_CA_VALIDITY).unwrap();
    let login = Login::new("olena").unwrap();
    for k in 0.. {
        let drive = tempfile::tempdir().unwrap();
        let faulty = Arc::new(FailAfter::new(k));
        let flaky = KeyStore::with_io(drive.path(), &login, faulty);
        match rotate(&flaky, &ca) {
            Ok(_) => {
                assert_working_key(drive.path(), &login, &ca);
                break;
            }
            Err(_) => {
                let store = KeyStore::new(drive.path(), &login);
                match store.unlock_current(&Password::from(PW), &KdfLimits::DEFAULT) {
                    // Committed, and only clean-up failed.
                    Ok(_) => {
                        assert_working_key(drive.path(), &login, &ca);
                    }
                    Err(StoreError::KeyNotFound { .. } | StoreError::CertificateMissing(_)) => {}
                    Err(other) => panic!("k={k}: {other}"),
                }
                rotate(&store, &ca).unwrap();
                assert_working_key(drive.path(), &login, &ca);
            }
        }
        assert!(k < 100);
    }
}
